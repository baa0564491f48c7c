"""The real OpenStack clients, unchanged, against a live `usermessages serve`:
python-cinderclient, python-openstackclient (through openstacksdk) and tempest.lib."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tempest.lib import exceptions as lib_exc
from tempest.lib.api_schema.response.volume import messages as schema
from tempest.lib.services.volume import base_client
from tempest.lib.services.volume.v3 import messages_client

from tests import servers
from tests.noauth import NoAuthProvider
from usermessages import Action, Detail, Level, Messenger, RequestContext, Resource

P, Q = "aaaa1111", "bbbb2222"
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    db_url = f"sqlite:///{tmp_path_factory.mktemp('peers')}/usermessages.sqlite"
    with servers.api_server(db_url) as base:
        messenger = Messenger.from_url(db_url)
        ids = {}
        for i in range(6):
            ids[f"vol-{i}"] = messenger.create(
                RequestContext(project_id=P, user_id="alice", request_id=f"req-{i:04d}"),
                Action.SCHEDULE_ALLOCATE_VOLUME, resource_uuid=f"0e0e0e0e-0000-4000-8000-00000000000{i}",
                detail=Detail.NO_BACKEND_AVAILABLE)
        ids["backup"] = messenger.create(
            RequestContext(project_id=P, user_id="alice", request_id="req-backup"),
            Action.BACKUP_CREATE, resource_type=Resource.VOLUME_BACKUP,
            resource_uuid="bbbbbbbb-0000-4000-8000-000000000001",
            detail=Detail.INCREMENTAL_BACKUP_FORCES_FULL_BACKUP, level=Level.WARNING)
        ids["other"] = messenger.create(RequestContext(project_id=Q, user_id="bob"),
                                        Action.ATTACH_VOLUME, detail=Detail.ATTACH_ERROR)
        yield base, ids


def _run(tool: str, args: list[str], home: Path) -> subprocess.CompletedProcess:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home)}
    return subprocess.run([str(BIN / tool), *args], capture_output=True, text=True, env=env,
                          timeout=120)


def cinder(base: str, *args: str, project: str = P, user: str = "alice", home: Path,
           endpoint_project: bool = True) -> subprocess.CompletedProcess:
    endpoint = f"{base}/v3/{project}" if endpoint_project else f"{base}/v3"
    return _run("cinder", ["--os-auth-type", "noauth", "--os-user-id", user, "--os-project-id",
                           project, "--os-endpoint", endpoint, "--os-volume-api-version", "3.5",
                           *args], home)


def openstack(base: str, *args: str, token: str = f"alice:{P}", version: str = "3.5",
              home: Path) -> subprocess.CompletedProcess:
    return _run("openstack", ["--os-auth-type", "admin_token", "--os-token", token,
                              "--os-endpoint", f"{base}/v3", "--os-volume-api-version", version,
                              *args], home)


# --- python-cinderclient ------------------------------------------------------------------


def test_cinder_message_list_with_filters_sort_and_paging(live, tmp_path):
    base, ids = live
    result = cinder(base, "message-list", home=tmp_path)
    assert result.returncode == 0, result.stderr
    for key in ("vol-0", "vol-5", "backup"):
        assert ids[key] in result.stdout
    assert ids["other"] not in result.stdout
    assert "schedule allocate volume:Could not find any available weighted backend." in result.stdout

    result = cinder(base, "message-list", "--level", "warning", "--resource_type",
                    "volume_backup", home=tmp_path)
    assert ids["backup"] in result.stdout and ids["vol-0"] not in result.stdout
    result = cinder(base, "message-list", "--request_id", "req-0003", "--event_id",
                    "VOLUME_VOLUME_001_003", home=tmp_path)
    assert ids["vol-3"] in result.stdout and ids["vol-2"] not in result.stdout
    result = cinder(base, "message-list", "--resource_uuid",
                    "0e0e0e0e-0000-4000-8000-000000000004", home=tmp_path)
    assert ids["vol-4"] in result.stdout and ids["vol-3"] not in result.stdout

    # --limit with marker paging, sorted: cinderclient follows the next links.
    result = cinder(base, "message-list", "--sort", "created_at:asc", "--limit", "3",
                    home=tmp_path)
    shown = [line.split("|")[1].strip() for line in result.stdout.splitlines()
             if line.startswith("| ") and "ID" not in line]
    assert shown == [ids["vol-0"], ids["vol-1"], ids["vol-2"]]
    result = cinder(base, "message-list", "--sort", "created_at:asc", "--marker", ids["vol-2"],
                    "--limit", "2", home=tmp_path)
    shown = [line.split("|")[1].strip() for line in result.stdout.splitlines()
             if line.startswith("| ") and "ID" not in line]
    assert shown == [ids["vol-3"], ids["vol-4"]]


def test_cinder_message_show_and_delete(live, tmp_path):
    base, ids = live
    result = cinder(base, "message-show", ids["vol-1"], home=tmp_path, endpoint_project=False)
    assert result.returncode == 0, result.stderr
    assert "req-0001" in result.stdout and "VOLUME_VOLUME_001_003" in result.stdout
    assert "guaranteed_until" in result.stdout
    result = cinder(base, "message-delete", ids["vol-1"], home=tmp_path)
    assert result.returncode == 0, result.stderr
    result = cinder(base, "message-show", ids["vol-1"], home=tmp_path)
    assert result.returncode == 1
    assert f"No message with a name or ID of '{ids['vol-1']}' exists." in result.stderr


def test_cinder_cannot_reach_another_projects_message(live, tmp_path):
    base, ids = live
    assert cinder(base, "message-show", ids["other"], home=tmp_path).returncode == 1
    result = cinder(base, "message-delete", ids["other"], home=tmp_path)
    assert result.returncode == 1
    assert "Unable to delete any of the specified messages." in result.stderr
    owner = cinder(base, "message-show", ids["other"], project=Q, user="bob", home=tmp_path)
    assert owner.returncode == 0


# --- python-openstackclient (openstacksdk) -------------------------------------------------------


def test_openstack_volume_message_list_show_delete(live, tmp_path):
    base, ids = live
    result = openstack(base, "volume", "message", "list", "-f", "json", home=tmp_path)
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)
    assert {m["ID"] for m in listed} >= {ids["vol-0"], ids["backup"]}
    assert ids["other"] not in result.stdout
    row = next(m for m in listed if m["ID"] == ids["vol-2"])
    assert row["Event ID"] == "VOLUME_VOLUME_001_003" and row["Request ID"] == "req-0002"

    # Paging with --limit at 3.5 and at 3.3 (where Cinder ignores the marker and the SDK
    # gives up with "Endless pagination loop detected"; we honour it).
    for version in ("3.5", "3.3"):
        result = openstack(base, "volume", "message", "list", "--limit", "2", "-f", "json",
                           version=version, home=tmp_path)
        assert result.returncode == 0, result.stderr
        assert "Endless pagination" not in result.stderr
        paged = [m["ID"] for m in json.loads(result.stdout)]
        assert len(paged) == len(set(paged)) == len(listed)

    # openstacksdk 4.22's Message.resource_key is "messages" (plural), so it does not unwrap
    # Cinder's {"message": {...}} show body: every field but the ID prints as None, against
    # real Cinder too. We answer Cinder's shape (cinderclient and tempest need it).
    result = openstack(base, "volume", "message", "show", ids["vol-2"], "-f", "json",
                       home=tmp_path)
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["ID"] == ids["vol-2"] and shown["Event ID"] is None

    result = openstack(base, "volume", "message", "delete", ids["vol-2"], home=tmp_path)
    assert result.returncode == 0, result.stderr
    result = openstack(base, "volume", "message", "delete", ids["vol-2"], home=tmp_path)
    assert result.returncode == 1
    assert "Failed to delete 1 of 1 messages." in result.stderr


# --- tempest.lib -------------------------------------------------------------------------------


def test_tempest_messages_client_and_schemas(live, monkeypatch):
    base, ids = live
    monkeypatch.setattr(base_client, "VOLUME_MICROVERSION", "3.3")
    client = messages_client.MessagesClient(NoAuthProvider(f"{base}/v3/{P}", f"alice:{P}"),
                                            "volumev3", "RegionOne", build_interval=0.1,
                                            build_timeout=10)
    listed = client.list_messages()["messages"]  # schema-checked, incl. no messages_links
    assert ids["vol-3"] in {m["id"] for m in listed}
    shown = client.show_message(ids["vol-3"])["message"]
    assert shown["resource_uuid"] == "0e0e0e0e-0000-4000-8000-000000000003"
    client.delete_message(ids["vol-3"])
    client.wait_for_resource_deletion(ids["vol-3"])
    with pytest.raises(lib_exc.NotFound):
        client.show_message("00000000-0000-0000-0000-00000000dead")
    with pytest.raises(lib_exc.NotFound):
        client.show_message(ids["other"])
    # A 3.5 query through the generic client, checked against tempest's list schema.
    monkeypatch.setattr(base_client, "VOLUME_MICROVERSION", "3.5")
    resp, raw = client.get("messages?sort=created_at:desc&limit=100")
    client.validate_response(schema.list_messages, resp, json.loads(raw))
