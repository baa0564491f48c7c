"""One live cloud for the Horizon tests: Keystone, the block-storage service with the
messages API in keystone mode, and Horizon with the Event Viewer plugin."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.blockstorage.conftest import FAST, blockstorage_server
from tests.harness.cloud import Cloud
from tests.harness.horizon import Horizon, horizon_server

ENDPOINT_TYPES = ("block-storage", "volumev3")


@dataclass
class Deployment:
    cloud: Cloud
    base: str  # block storage + messages API
    horizon: Horizon
    root: Path


def unregister(cloud: Cloud) -> None:
    """No block storage in the catalog (a service's endpoints go with it)."""
    assert cloud.admin is not None
    for service in list(cloud.admin.identity.services()):
        if service.type in ENDPOINT_TYPES:
            cloud.admin.identity.delete_service(service)


def register_only(cloud: Cloud, base: str) -> None:
    """This server as the cloud's only block storage (other modules register their own)."""
    unregister(cloud)
    cloud.register_endpoint(base)


# Module scope: one Horizon for the (single) module, and the catalog left without this
# server's endpoint before the keystone tests register theirs on the shared Keystone.
@pytest.fixture(scope="module")
def deployment(cloud: Cloud, tmp_path_factory) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp("horizon-live")
    options = "\n".join(f"{k} = {v}" for k, v in cloud.authtoken_options().items())
    config = f"{FAST}\n[api]\nauth_strategy = keystone\n\n[keystone_authtoken]\n{options}\n"
    with blockstorage_server(config, workdir=root) as base:
        register_only(cloud, base)
        try:
            with horizon_server(cloud.auth_url) as horizon:
                yield Deployment(cloud, base, horizon, root)
        finally:
            unregister(cloud)
