"""The released clients with password authentication only, the endpoint from Keystone's catalog.

A live `usermessages serve` in keystone mode (config from one INI file, with its
[keystone_authtoken] section), registered in the catalog as block-storage and
volumev3: openstackclient 10.5.0, cinderclient 9.10.0 and tempest.lib 47's
KeystoneV3AuthProvider with its MessagesClient.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from tempest.lib import auth as tempest_auth
from tempest.lib import exceptions as lib_exc
from tempest.lib.services.volume import base_client
from tempest.lib.services.volume.v3 import messages_client

from tests.harness import servers
from tests.harness.cloud import PASSWORD, Cloud
from tests.harness.peers import BIN, TIMEOUT, parse_table, run
from usermessages import Action, Detail, Messenger, RequestContext, Resource


@dataclass
class Deployed:
    base: str
    ids: dict[str, str]


@pytest.fixture(scope="module")
def deployed(cloud: Cloud, tmp_path_factory) -> Iterator[Deployed]:
    root = tmp_path_factory.mktemp("keystone-live")
    db_url = f"sqlite:///{root}/usermessages.sqlite"
    options = "\n".join(f"{k} = {v}" for k, v in cloud.authtoken_options().items())
    config = root / "usermessages.ini"
    config.write_text(f"[api]\nauth_strategy = keystone\n\n[keystone_authtoken]\n{options}\n")
    with servers.api_server(db_url, config_file=str(config)) as base:
        cloud.register_endpoint(base)
        messenger = Messenger.from_url(db_url)
        try:
            ids: dict[str, str] = {}
            for name in ("alpha", "beta"):
                created = messenger.create(
                    RequestContext(project_id=cloud.projects[name], user_id="u",
                                   request_id=f"req-{'a' * 8}-0000-4000-8000-00000000000"
                                              f"{len(ids)}"),
                    Action.SCHEDULE_ALLOCATE_VOLUME, resource_type=Resource.VOLUME,
                    resource_uuid="0e0e0e0e-0000-4000-8000-000000000001",
                    detail=Detail.NO_BACKEND_AVAILABLE)
                assert created, "the messenger could not store the message"
                ids[name] = created
            yield Deployed(base, ids)
        finally:
            messenger.close()


def _password_options(cloud: Cloud, user: str, project: str | None) -> list[str]:
    scope = ["--os-project-name", project, "--os-project-domain-id", "default"] if project \
        else ["--os-system-scope", "all"]
    return ["--os-auth-url", cloud.auth_url, "--os-username", user, "--os-password", PASSWORD,
            "--os-user-domain-id", "default", *scope]


def openstack(cloud: Cloud, home: Path, user: str, project: str | None, *args: str,
              stdin: str | None = None):
    options = [*_password_options(cloud, user, project), "--os-region-name", "RegionOne",
               "--os-volume-api-version", "3.5"]
    if stdin is not None:
        # Interactive mode takes no options on its command line: the same ones, as OS_*.
        pairs = dict(zip(options[::2], options[1::2], strict=True))
        env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "LANG": "C.UTF-8",
               **{flag[2:].upper().replace("-", "_"): value for flag, value in pairs.items()}}
        return subprocess.run([str(BIN / "openstack")], input=stdin, env=env,
                              capture_output=True, text=True, timeout=TIMEOUT, cwd=home)
    return run("openstack", [*options, "volume", "message", *args], home)


def test_openstackclient_list_show_delete(cloud, deployed, tmp_path):
    # One process reads several commands from stdin (each `openstack` run costs ~1 s).
    alpha, beta = deployed.ids["alpha"], deployed.ids["beta"]
    batch = openstack(cloud, tmp_path, "member", "alpha", stdin=(
        f"volume message list -f json\nvolume message show {alpha} -f json\n"
        f"volume message show {beta}\n"))
    listed, shown = _json_documents(batch.stdout)
    assert [row["ID"] for row in listed] == [alpha]
    assert shown["ID"] == alpha
    # Another project's message: not found, and nothing of it printed.
    assert f"No Message found for {beta}" in batch.stderr
    assert "could not be found" in batch.stderr and beta not in batch.stdout
    refused = openstack(cloud, tmp_path, "reader", "alpha", "delete", alpha)
    assert refused.returncode != 0 and "Failed to delete 1 of 1" in refused.stderr
    still = httpx.get(f"{deployed.base}/v3/messages/{alpha}", headers={
        "X-Auth-Token": cloud.token("reader", "alpha"), "OpenStack-API-Version": "volume 3.5"})
    assert still.status_code == 200
    deleted = openstack(cloud, tmp_path, "other", "beta", "delete", beta)
    assert deleted.returncode == 0, deleted.stderr
    gone = httpx.get(f"{deployed.base}/v3/messages", headers={
        "X-Auth-Token": cloud.token("other", "beta"), "OpenStack-API-Version": "volume 3.5"})
    assert gone.json()["messages"] == []


def _json_documents(text: str) -> list:
    decoder, documents, index = json.JSONDecoder(), [], 0
    while index < len(text):
        if text[index].isspace():
            index += 1
            continue
        document, index = decoder.raw_decode(text, index)
        documents.append(document)
    return documents


def test_cinderclient_with_keystone(cloud, deployed, tmp_path):
    def cinder(user: str, project: str, *args: str):
        return run("cinder", [*_password_options(cloud, user, project),
                              "--os-volume-api-version", "3.5", *args], tmp_path)

    listed = cinder("reader", "alpha", "message-list")
    assert listed.returncode == 0, listed.stderr
    assert [row["ID"] for row in parse_table(listed.stdout)] == [deployed.ids["alpha"]]
    shown = cinder("reader", "alpha", "message-show", deployed.ids["alpha"])
    assert shown.returncode == 0 and "Could not find any available weighted backend" in shown.stdout
    refused = cinder("norole", "alpha", "message-list")
    assert refused.returncode != 0 and "403" in refused.stderr


@pytest.fixture
def microversion():
    saved = base_client.VOLUME_MICROVERSION
    base_client.VOLUME_MICROVERSION = "3.3"
    yield
    base_client.VOLUME_MICROVERSION = saved


def _tempest_client(cloud: Cloud, user: str, project: str) -> messages_client.MessagesClient:
    credentials = tempest_auth.KeystoneV3Credentials(
        username=user, password=PASSWORD, user_domain_name="Default",
        project_name=project, project_domain_name="Default")
    provider = tempest_auth.KeystoneV3AuthProvider(credentials, cloud.auth_url)
    return messages_client.MessagesClient(provider, "block-storage", "RegionOne",
                                          endpoint_type="publicURL")


def test_tempest_keystone_v3_auth_provider(cloud, deployed, microversion):
    client = _tempest_client(cloud, "project_admin", "alpha")
    ids = [m["id"] for m in client.list_messages()["messages"]]
    assert deployed.ids["alpha"] in ids and deployed.ids["beta"] not in ids
    assert client.show_message(deployed.ids["alpha"])["message"]["id"] == deployed.ids["alpha"]
    with pytest.raises(lib_exc.NotFound):
        client.show_message(deployed.ids["beta"])
    reader = _tempest_client(cloud, "reader", "alpha")
    with pytest.raises(lib_exc.Forbidden):
        reader.delete_message(deployed.ids["alpha"])
