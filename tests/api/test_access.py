"""Who sees and deletes what (§6, §12.1, §13 items 13, 14, 16), on SQLite and PostgreSQL.

Cinder lets any project user list every project's messages (§12.1); this
service scopes lists to the caller's project, and the tests assert the fix.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import headers, row
from usermessages.catalog import Action, Detail
from usermessages.context import RequestContext
from usermessages.messenger import Messenger
from usermessages.service import create_app

P, Q = "aaaa1111", "bbbb2222"


def _not_found(message_id: str) -> dict:
    return {"itemNotFound": {"code": 404, "message": f"Message {message_id} could not be found."}}


def _forbidden(rule: str) -> dict:
    return {"forbidden": {"code": 403, "message": f"Policy doesn't allow {rule} to be performed."}}


@pytest.fixture
def created(db_url: str) -> dict[str, str]:
    """Messages made the way services make them: two projects, a service and the system."""
    messenger = Messenger.from_url(db_url, host="volume-node-7")
    try:
        ids = {
            "mine": messenger.create(RequestContext(project_id=P, user_id="u"),
                                     Action.ATTACH_VOLUME, resource_uuid="vol-1"),
            "theirs": messenger.create(RequestContext(project_id=Q, user_id="v"),
                                       Action.ATTACH_VOLUME, resource_uuid="vol-1"),
            "service": messenger.create_service_message(
                Action.SERVICE_STATUS, Detail.SERVICE_DOWN, host="volume-node-7"),
            "system": messenger.create_system_message(
                Action.MESSAGE_BUS, Detail.BROKER_UNREACHABLE),
        }
    finally:
        messenger.close()
    assert all(ids.values())
    return ids  # type: ignore[return-value]


def _ids(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [m["id"] for m in response.json()["messages"]]


def test_project_users_list_only_their_project(client, created):
    for version in ("3.3", "3.5", "3.31", "3.34", "3.71"):
        for prefix in (f"/v3/{P}", "/v3"):
            listed = client.get(f"{prefix}/messages", headers=headers("u", P, version))
            assert _ids(listed) == [created["mine"]]
            assert "volume-node-7" not in listed.text
        assert _ids(client.get("/v3/messages", headers=headers("v", Q, version))) == [
            created["theirs"]]
        assert _ids(client.get("/v3/messages", headers=headers("w", "cccc3333", version))) == []


def test_project_users_cannot_reach_other_messages_by_filter_or_marker(client, created):
    mine = headers("u", P)
    assert _ids(client.get(f"/v3/{P}/messages?resource_uuid=vol-1", headers=mine)) == [
        created["mine"]]
    assert _ids(client.get(f"/v3/{P}/messages?all_tenants=1", headers=mine)) == [
        created["mine"]]
    for query in (f"project_id={Q}", "kind=SERVICE", "host=volume-node-7"):
        assert client.get(f"/v3/{P}/messages?{query}", headers=mine).status_code == 400
    for other in ("theirs", "service", "system"):
        response = client.get(f"/v3/{P}/messages?marker={created[other]}", headers=mine)
        assert response.status_code == 404
        assert response.json() == _not_found(created[other])


def test_show_and_delete_of_anything_not_yours_is_404(client, created):
    for prefix in (f"/v3/{P}", "/v3"):
        for other in ("theirs", "service", "system"):
            for method in ("GET", "DELETE"):
                response = client.request(method, f"{prefix}/messages/{created[other]}",
                                          headers=headers("u", P))
                assert response.status_code == 404
                assert response.json() == _not_found(created[other])
    # Nothing was deleted.
    everything = client.get(f"/v3/{P}/messages", headers=headers("admin", P))
    assert set(_ids(everything)) == set(created.values())


def test_admins_see_and_act_on_every_project_and_kind(client, created):
    admin = headers("admin", P)
    assert set(_ids(client.get("/v3/messages", headers=admin))) == set(created.values())
    assert set(_ids(client.get(f"/v3/{P}/messages", headers=admin))) == set(created.values())
    system = client.get(f"/v3/{P}/messages/{created['system']}", headers=admin).json()
    assert system["message"]["event_id"] == "VOLUME_SYSTEM_102_103"
    assert system["message"]["user_message"] == (
        "reach the message bus:The message broker is unreachable.")
    service = client.get(f"/v3/messages/{created['service']}", headers=admin).json()
    assert service["message"]["event_id"] == "VOLUME_SERVICE_101_101"
    assert _ids(client.get("/v3/messages?kind=SYSTEM", headers=admin)) == [created["system"]]
    assert _ids(client.get("/v3/messages?host=volume-node-7&kind=SERVICE", headers=admin)) == [
        created["service"]]
    # An admin of another project deletes project Q's message; its owner no longer sees it.
    admin_elsewhere = headers("admin", "dddd4444")
    assert client.delete(f"/v3/messages/{created['theirs']}",
                         headers=admin_elsewhere).status_code == 204
    response = client.get(f"/v3/messages/{created['theirs']}", headers=headers("v", Q))
    assert response.status_code == 404 and response.json() == _not_found(created["theirs"])
    assert client.delete(f"/v3/messages/{created['system']}", headers=admin).status_code == 204


# Policy ---------------------------------------------------------------------------------------


@pytest.fixture
def roles_client(settings, engine) -> Iterator[TestClient]:
    """The API as deployed behind a proxy that sets X-Roles."""
    with TestClient(create_app(settings.replace(trust_roles_header=True), engine=engine)) as c:
        yield c


def test_a_reader_may_list_and_show_but_not_delete(roles_client, seed):
    [message] = seed(row(P))
    reader = headers("r", P, **{"X-Roles": "reader"})
    url = f"/v3/{P}/messages/{message['id']}"
    assert _ids(roles_client.get(f"/v3/{P}/messages", headers=reader)) == [message["id"]]
    assert roles_client.get(url, headers=reader).status_code == 200
    response = roles_client.delete(url, headers=reader)
    assert response.status_code == 403
    assert response.json() == _forbidden("message:delete")
    assert response.headers["openstack-api-version"] == "volume 3.5"
    assert roles_client.get(url, headers=reader).status_code == 200  # still there
    member = headers("m", P, **{"X-Roles": "Member, reader"})  # roles compare lower-case
    assert roles_client.delete(url, headers=member).status_code == 204


def test_a_reader_of_another_project_gets_404_not_403(roles_client, seed):
    [message] = seed(row(Q))
    reader = headers("r", P, **{"X-Roles": "reader"})
    for method in ("GET", "DELETE"):
        response = roles_client.request(method, f"/v3/messages/{message['id']}", headers=reader)
        assert response.status_code == 404 and response.json() == _not_found(message["id"])


def test_no_roles_is_403_on_everything(roles_client, seed):
    [message] = seed(row(P))
    nobody = headers("n", P, **{"X-Roles": ""})
    response = roles_client.get(f"/v3/{P}/messages", headers=nobody)
    assert response.status_code == 403 and response.json() == _forbidden("message:get_all")
    response = roles_client.get(f"/v3/{P}/messages/{message['id']}", headers=nobody)
    assert response.status_code == 403 and response.json() == _forbidden("message:get")
    response = roles_client.delete(f"/v3/{P}/messages/{message['id']}", headers=nobody)
    assert response.status_code == 403 and response.json() == _forbidden("message:delete")
    # A member-only caller (no reader role) may delete but not read, as Cinder's defaults say.
    member = headers("m", P, **{"X-Roles": "member"})
    assert roles_client.get(f"/v3/{P}/messages", headers=member).status_code == 403


def test_the_admin_role_makes_an_admin(roles_client, seed):
    [message] = seed(row(Q))
    admin_role = headers("someone", P, **{"X-Roles": "admin"})
    assert _ids(roles_client.get(f"/v3/{P}/messages", headers=admin_role)) == [message["id"]]
    assert roles_client.delete(f"/v3/messages/{message['id']}",
                               headers=admin_role).status_code == 204


def test_the_roles_header_is_ignored_unless_trusted(client, seed):
    [mine, theirs] = seed(row(P), row(Q))
    forged = headers("u", P, **{"X-Roles": "admin"})
    assert client.get(f"/v3/{P}/messages/{theirs['id']}", headers=forged).status_code == 404
    assert _ids(client.get(f"/v3/{P}/messages", headers=forged)) == [mine["id"]]
    demoted = headers("u", P, **{"X-Roles": ""})
    assert client.delete(f"/v3/{P}/messages/{mine['id']}", headers=demoted).status_code == 204


def test_a_policy_file_overrides_a_rule(settings, engine, seed, tmp_path):
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text('"message:delete": "role:admin"\n'
                           '"message:get_all": "role:admin or user_id:lister"\n')
    [message] = seed(row(P))
    app = create_app(settings.replace(policy_file=str(policy_file)), engine=engine)
    url = f"/v3/{P}/messages/{message['id']}"
    with TestClient(app) as client:
        response = client.delete(url, headers=headers("u", P))
        assert response.status_code == 403 and response.json() == _forbidden("message:delete")
        assert client.get(url, headers=headers("u", P)).status_code == 200  # default rule
        response = client.get(f"/v3/{P}/messages", headers=headers("u", P))
        assert response.status_code == 403 and response.json() == _forbidden("message:get_all")
        assert _ids(client.get(f"/v3/{P}/messages", headers=headers("lister", P))) == [
            message["id"]]
        assert client.delete(url, headers=headers("admin", P)).status_code == 204


# Soft delete ----------------------------------------------------------------------------------


def test_delete_is_soft_and_final(client, seed, engine):
    [gone, kept] = seed(row(P, minutes=1), row(P))
    url = f"/v3/{P}/messages/{gone['id']}"
    assert client.delete(url, headers=headers("u", P)).status_code == 204
    for method in ("GET", "DELETE"):  # gone from show; a second delete is 404
        response = client.request(method, url, headers=headers("u", P))
        assert response.status_code == 404 and response.json() == _not_found(gone["id"])
    for who in ("u", "admin"):  # gone from lists, for admins too, and as a marker
        assert _ids(client.get(f"/v3/{P}/messages", headers=headers(who, P))) == [kept["id"]]
        response = client.get(f"/v3/{P}/messages?marker={gone['id']}", headers=headers(who, P))
        assert response.status_code == 404 and response.json() == _not_found(gone["id"])
    admin = client.get(f"/v3/messages/{gone['id']}", headers=headers("admin", P))
    assert admin.status_code == 404
    with engine.connect() as conn:  # still stored, marked deleted, until the reaper
        deleted = dict(conn.exec_driver_sql(
            "SELECT id, deleted FROM messages").all())
    assert deleted == {gone["id"]: True, kept["id"]: False}
