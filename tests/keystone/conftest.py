"""One real Keystone 30 for the whole session, a cloud in it, and usermessages behind it."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.harness.cloud import Cloud
from usermessages.config import Settings
from usermessages.service import create_app


@pytest.fixture
def db_url(tmp_path) -> str:
    """SQLite only here: the store's engines are covered elsewhere; this is about identity."""
    return f"sqlite:///{tmp_path}/usermessages.sqlite"


@pytest.fixture
def keystone_settings(cloud: Cloud, settings: Settings) -> Settings:
    return settings.replace(auth_strategy="keystone",
                            keystone_authtoken=tuple(cloud.authtoken_options().items()))


@pytest.fixture
def make_client(keystone_settings: Settings, engine: Engine
                ) -> Iterator[Callable[..., TestClient]]:
    """The real app in keystone mode over the real store, with settings changes."""
    opened: list[TestClient] = []

    def make(**changes: object) -> TestClient:
        client = TestClient(create_app(keystone_settings.replace(**changes), engine=engine))
        opened.append(client.__enter__())
        return client

    yield make
    for client in opened:
        client.__exit__(None, None, None)


@pytest.fixture
def ks_client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()
