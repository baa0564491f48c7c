"""Cinder's wire contract (§13 of the reference notes), point by point, on SQLite and
PostgreSQL, through the real app."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import BASE_TIME, headers, row
from usermessages.api.app import create_app
from usermessages.catalog import Action, Detail, Kind, Resource
from usermessages.config import Settings

P, Q = "aaaa1111", "bbbb2222"
REQ_ID = re.compile(r"^req-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
KEYS = ["id", "event_id", "user_message", "message_level", "created_at", "guaranteed_until",
        "request_id", "links", "resource_type", "resource_uuid"]


# 1. both URL forms, project checks ---------------------------------------------------


def test_both_url_forms(client, seed):
    [message] = seed(row(P, resource_uuid="vol-1"))
    for prefix in (f"/v3/{P}", "/v3"):
        listed = client.get(f"{prefix}/messages", headers=headers("u", P))
        assert listed.status_code == 200
        assert [m["id"] for m in listed.json()["messages"]] == [message["id"]]
        shown = client.get(f"{prefix}/messages/{message['id']}", headers=headers("u", P, "3.3"))
        assert shown.status_code == 200 and shown.json()["message"]["id"] == message["id"]


def test_url_project_must_match_the_token(client):
    response = client.get(f"/v3/{Q}/messages", headers=headers("u", P))
    assert response.status_code == 400
    assert response.json() == {"badRequest": {"code": 400, "message": "Malformed request url"}}


def test_project_segment_must_look_like_a_project_id(client):
    response = client.get("/v3/Not_Hex/messages", headers=headers("u", "Not_Hex"))
    assert response.status_code == 404 and "itemNotFound" in response.json()


# 2-3. microversions -------------------------------------------------------------------------


@pytest.mark.parametrize(("sent", "echoed"), [
    ("volume 3.5", "volume 3.5"), ("volume latest", "volume 3.71"),
    ("compute 2.1, volume 3.7", "volume 3.7"), ("volume 3.71", "volume 3.71"),
])
def test_negotiation_and_echo(client, sent, echoed):
    response = client.get(f"/v3/{P}/messages",
                          headers={"X-Auth-Token": f"u:{P}", "OpenStack-API-Version": sent})
    assert response.status_code == 200
    assert response.headers["openstack-api-version"] == echoed
    assert response.headers["vary"] == "OpenStack-API-Version"


@pytest.mark.parametrize("version", [None, "3.0", "3.2"])
def test_below_3_3_messages_do_not_exist(client, seed, version):
    [message] = seed(row(P))
    for method, path in (("GET", "messages"), ("GET", f"messages/{message['id']}"),
                         ("DELETE", f"messages/{message['id']}")):
        response = client.request(method, f"/v3/{P}/{path}", headers=headers("u", P, version))
        assert response.status_code == 404
        assert response.json() == {"itemNotFound": {
            "code": 404, "message": "The resource could not be found."}}
        assert response.headers["openstack-api-version"] == f"volume {version or '3.0'}"


def test_version_errors_are_cinders(client):
    response = client.get(f"/v3/{P}/messages", headers=headers("u", P, "3.99"))
    assert response.status_code == 406
    assert response.json() == {"computeFault": {"code": 406, "message": (
        "Version 3.99 is not supported by the API. Minimum is 3.0 and maximum is 3.71.")}}
    response = client.get(f"/v3/{P}/messages", headers=headers("u", P, "3.x"))
    assert response.status_code == 400
    assert response.json()["badRequest"]["message"] == (
        "API Version String 3.x is of invalid format. Must be of format MajorNum.MinorNum.")
    response = client.get(f"/v3/{P}/messages", headers={"X-Auth-Token": f"u:{P}",
                                                        "OpenStack-API-Version": "compute 2.1"})
    assert response.status_code == 400 and "badRequest" in response.json()


def test_legacy_version_header_is_ignored(client):
    response = client.get(f"/v3/{P}/messages", headers={
        "X-Auth-Token": f"u:{P}", "X-OpenStack-Volume-API-Version": "3.5"})
    assert response.status_code == 404


# 4. versions document ----------------------------------------------------------------------


def test_versions_document(client):
    root = client.get("/")
    assert root.status_code == 300
    [version] = root.json()["versions"]
    assert list(version) == ["id", "status", "version", "min_version", "updated", "links",
                             "media-types"]
    assert (version["id"], version["status"], version["version"], version["min_version"]) == (
        "v3.0", "CURRENT", "3.71", "3.0")
    assert version["links"][1] == {"rel": "self", "href": "http://testserver/v3/"}
    for path in ("/v3", "/v3/"):
        response = client.get(path)  # no token: openstack CLI discovers like this
        assert response.status_code == 200 and response.json()["versions"] == [version]


# 5. request ids ----------------------------------------------------------------------------


def test_request_ids_are_fresh_on_every_response(client, seed):
    [message] = seed(row(P))
    seen = set()
    for response in (client.get("/"), client.get(f"/v3/{P}/messages", headers=headers("u", P)),
                     client.get(f"/v3/{P}/messages/nope", headers=headers("u", P)),
                     client.delete(f"/v3/{P}/messages/{message['id']}", headers={
                         **headers("u", P), "X-OpenStack-Request-ID": "req-mine"})):
        request_id = response.headers["x-openstack-request-id"]
        assert REQ_ID.match(request_id) and request_id != "req-mine"
        seen.add(request_id)
        if response.content:
            assert response.headers["x-compute-request-id"] == request_id
        else:
            assert "x-compute-request-id" not in response.headers
    assert len(seen) == 4


# 6-9. bodies -----------------------------------------------------------------------------------


def test_show_body_is_exactly_cinders(client, seed):
    [message] = seed(row(P, resource_uuid="0e0e0e0e-0000-4000-8000-000000000001",
                         action=Action.SCHEDULE_ALLOCATE_VOLUME,
                         detail=Detail.NO_BACKEND_AVAILABLE, request_id="req-abc"))
    response = client.get(f"/v3/{P}/messages/{message['id']}", headers=headers("u", P, "3.3"))
    body = response.json()["message"]
    assert list(body) == KEYS
    assert body == {
        "id": message["id"],
        "event_id": "VOLUME_VOLUME_001_003",
        "user_message": "schedule allocate volume:Could not find any available weighted backend.",
        "message_level": "ERROR",
        "created_at": "2026-11-01T12:00:00.123456",
        "guaranteed_until": "2026-12-01T12:00:00.123456",
        "request_id": "req-abc",
        "links": [
            {"rel": "self", "href": f"http://testserver/v3/{P}/messages/{message['id']}"},
            {"rel": "bookmark", "href": f"http://testserver/{P}/messages/{message['id']}"},
        ],
        "resource_type": "VOLUME",
        "resource_uuid": "0e0e0e0e-0000-4000-8000-000000000001",
    }
    # Internals never leak: no project, host or exception in any body.
    assert "node-1" not in response.text and "secret.module" not in response.text


def test_links_follow_the_url_form_and_the_forwarded_host(client, seed):
    [message] = seed(row(P))
    body = client.get(f"/v3/messages/{message['id']}", headers={
        **headers("u", P), "X-Forwarded-Host": "a.example, cloud.example:8776"}).json()
    assert body["message"]["links"] == [
        {"rel": "self", "href": f"http://cloud.example:8776/v3/messages/{message['id']}"},
        {"rel": "bookmark", "href": f"http://cloud.example:8776/messages/{message['id']}"}]


def test_empty_resource_keys_are_omitted(client, seed):
    [message] = seed(row(P, resource_uuid=""))
    body = client.get(f"/v3/{P}/messages/{message['id']}", headers=headers("u", P)).json()
    assert "resource_uuid" not in body["message"] and body["message"]["resource_type"] == "VOLUME"


def test_delete_is_204_empty_and_soft(client, seed, engine):
    [message, marker_row] = seed(row(P, minutes=1), row(P))
    response = client.delete(f"/v3/{P}/messages/{message['id']}", headers=headers("u", P))
    assert response.status_code == 204 and response.content == b""
    assert response.headers["openstack-api-version"] == "volume 3.5"
    assert client.get(f"/v3/{P}/messages/{message['id']}", headers=headers("u", P)).status_code == 404
    assert client.delete(f"/v3/{P}/messages/{message['id']}",
                         headers=headers("u", P)).status_code == 404
    listed = client.get(f"/v3/{P}/messages", headers=headers("u", P)).json()["messages"]
    assert [m["id"] for m in listed] == [marker_row["id"]]
    assert client.get(f"/v3/{P}/messages?marker={message['id']}",
                      headers=headers("u", P)).status_code == 404
    with engine.connect() as conn:  # still stored, marked deleted, until it expires
        assert conn.exec_driver_sql("SELECT count(*) FROM messages").scalar_one() == 2


# 10-11. pagination and sorting --------------------------------------------------------------------


def _walk(client, url: str) -> list[str]:
    ids: list[str] = []
    while url:
        body = client.get(url, headers=headers("admin", P)).json()
        ids += [m["id"] for m in body["messages"]]
        links = body.get("messages_links", [])
        url = links[0]["href"].replace("http://testserver", "") if links else None
        assert len(ids) < 1000
    return ids


def _reference(rows: list[dict], sort: list[tuple[str, str]]) -> list[str]:
    keys = sort + [(k, sort[0][1]) for k in ("created_at", "id") if k not in dict(sort)]
    ordered = list(rows)
    for key, direction in reversed(keys):
        ordered.sort(key=lambda r: r[key], reverse=direction == "desc")
    return [r["id"] for r in ordered]


@pytest.mark.parametrize("sort", [
    [("created_at", "desc")], [("created_at", "asc")], [("event_id", "asc")],
    [("message_level", "desc")], [("resource_uuid", "asc")], [("request_id", "desc")],
    [("expires_at", "asc")], [("id", "asc")],
    [("event_id", "asc"), ("created_at", "desc")], [("resource_type", "desc"), ("id", "asc")],
])
def test_marker_paging_walks_every_message_once_in_every_order(client, seed, sort):
    rows = [row(P if i % 3 else Q, minutes=i // 4, resource_uuid=f"vol-{i % 5}",
                action=[Action.ATTACH_VOLUME, Action.EXTEND_VOLUME][i % 2],
                resource=[Resource.VOLUME, Resource.VOLUME_SNAPSHOT][i % 2 if i % 7 else 0],
                level=["ERROR", "WARNING"][i % 3 == 0], request_id=f"req-{i % 6}")
            for i in range(23)]
    seed(*rows)
    query = ",".join(f"{k}:{d}" for k, d in sort)
    assert _walk(client, f"/v3/{P}/messages?limit=4&sort={query}") == _reference(rows, sort)


def test_next_link_rules(client, seed):
    rows = seed(*[row(P, minutes=i) for i in range(4)])
    newest_first = [r["id"] for r in reversed(rows)]

    def get(query: str):
        return client.get(f"/v3/{P}/messages{query}", headers=headers("u", P)).json()

    body = get("?limit=2&message_level=ERROR")
    assert [m["id"] for m in body["messages"]] == newest_first[:2]
    assert body["messages_links"] == [{"rel": "next", "href": (
        f"http://testserver/v3/{P}/messages?limit=2&message_level=ERROR"
        f"&marker={newest_first[1]}")}]
    assert "messages_links" in get("?limit=4")  # exactly full: Cinder still links
    assert get(f"?limit=4&marker={newest_first[3]}") == {"messages": []}
    assert "messages_links" not in get("?limit=5")
    assert "messages_links" not in get("")  # tempest: no links on an unpaginated list
    assert get("?limit=0") == {"messages": []}
    assert [m["id"] for m in get("?offset=1&limit=2")["messages"]] == newest_first[1:3]
    assert [m["id"] for m in get(f"?marker={newest_first[0]}&offset=1")["messages"]] == (
        newest_first[2:])


def test_limit_is_capped_by_osapi_max_limit(engine, seed):
    settings = Settings(database_connection=str(engine.url.render_as_string(False)),
                        osapi_max_limit=3)
    seed(*[row(P, minutes=i) for i in range(5)])
    with TestClient(create_app(settings, engine=engine)) as client:
        body = client.get(f"/v3/{P}/messages?limit=100", headers=headers("u", P)).json()
        assert len(body["messages"]) == 3 and "limit=100" in body["messages_links"][0]["href"]
        assert len(client.get(f"/v3/{P}/messages", headers=headers("u", P)).json()["messages"]) == 3


def test_sort_forms_and_default(client, seed):
    rows = seed(row(P, minutes=0, action=Action.EXTEND_VOLUME), row(P, minutes=1))
    def ids(query):
        return [m["id"] for m in client.get(f"/v3/{P}/messages{query}",
                                            headers=headers("u", P)).json()["messages"]]
    assert ids("") == [rows[1]["id"], rows[0]["id"]]
    assert ids("?sort=created_at:asc") == [rows[0]["id"], rows[1]["id"]]
    assert ids("?sort_key=event_id&sort_dir=asc") == [rows[1]["id"], rows[0]["id"]]
    assert ids("?sort=event_id") == [rows[0]["id"], rows[1]["id"]]  # desc by default


def test_at_3_3_filters_and_sort_are_ignored_but_paging_is_honoured(client, seed):
    rows = seed(*[row(P, minutes=i, level="WARNING" if i else "ERROR") for i in range(3)])
    body = client.get(f"/v3/{P}/messages?message_level=ERROR&sort=created_at:asc&limit=2",
                      headers=headers("u", P, "3.3")).json()
    assert [m["id"] for m in body["messages"]] == [rows[2]["id"], rows[1]["id"]]
    follow = body["messages_links"][0]["href"].replace("http://testserver", "")
    rest = client.get(follow, headers=headers("u", P, "3.3")).json()
    assert [m["id"] for m in rest["messages"]] == [rows[0]["id"]]


# 12. filters ---------------------------------------------------------------------------------------


def test_user_filters_are_exact(client, seed):
    rows = seed(row(P, resource_uuid="vol-1", request_id="req-a"),
                row(P, resource_uuid="vol-2", request_id="req-b", level="WARNING",
                    resource=Resource.VOLUME_BACKUP, action=Action.BACKUP_CREATE,
                    detail=Detail.BACKUP_SERVICE_DOWN))
    def ids(query):
        response = client.get(f"/v3/{P}/messages?{query}", headers=headers("u", P))
        assert response.status_code == 200, response.text
        return [m["id"] for m in response.json()["messages"]]
    assert ids("resource_uuid=vol-1") == [rows[0]["id"]]
    assert ids("request_id=req-b") == [rows[1]["id"]]
    assert ids("message_level=WARNING") == [rows[1]["id"]]
    assert ids("message_level=warning") == []  # exact, as Cinder on SQLite
    assert ids("resource_type=VOLUME_BACKUP") == [rows[1]["id"]]
    assert ids("event_id=VOLUME_VOLUME_BACKUP_013_018") == [rows[1]["id"]]
    assert ids("resource_uuid=vol") == []
    assert len(ids("all_tenants=1")) == 2  # cinderclient's lookup; silently ignored


def test_unknown_filters_are_rejected_with_cinders_text(client):
    response = client.get(f"/v3/{P}/messages?bogus=1&project_id=x",
                          headers=headers("u", P, "3.31"))
    assert response.status_code == 400
    assert response.json()["badRequest"]["message"] == (
        "Invalid filters bogus,project_id are found in query options.")
    response = client.get(f"/v3/{P}/messages?event_id~=VOL", headers=headers("u", P, "3.34"))
    assert response.status_code == 400


def test_admins_filter_on_more_and_may_use_like(client, seed):
    rows = seed(row(P, action=Action.BACKUP_CREATE, resource=Resource.VOLUME_BACKUP,
                    detail=Detail.BACKUP_SERVICE_DOWN), row(Q, host="node-2"))
    def ids(query):
        response = client.get(f"/v3/{P}/messages?{query}", headers=headers("admin", P))
        assert response.status_code == 200, response.text
        return [m["id"] for m in response.json()["messages"]]
    assert ids(f"project_id={Q}") == [rows[1]["id"]]
    assert ids("action_id=013") == [rows[0]["id"]]
    assert ids("host=node-2") == [rows[1]["id"]]
    assert ids("event_id~=BACKUP") == [rows[0]["id"]]
    assert ids("event_id~=%25") == []  # LIKE wildcards are escaped


def test_time_range_filters(client, seed):
    rows = seed(row(P, minutes=0), row(P, minutes=10), row(P, minutes=20))
    since = (BASE_TIME.replace(minute=5)).isoformat()
    before = (BASE_TIME.replace(minute=15)).isoformat() + "Z"
    response = client.get(f"/v3/{P}/messages", params={"created_since": since,
                                                       "created_before": before},
                          headers=headers("u", P))
    assert [m["id"] for m in response.json()["messages"]] == [rows[1]["id"]]


def test_resource_filters_endpoint(client):
    response = client.get(f"/v3/{P}/resource_filters?resource=message",
                          headers=headers("u", P, "3.33"))
    assert response.json() == {"resource_filters": [{"resource": "message", "filters": [
        "resource_uuid", "resource_type", "event_id", "request_id", "message_level"]}]}
    assert client.get(f"/v3/{P}/resource_filters", headers=headers("u", P, "3.32")
                      ).status_code == 404


# 13-14. isolation and policy ----------------------------------------------------------------------


def test_users_list_only_their_project_and_never_admin_kinds(client, seed):
    mine, theirs, service, system = seed(
        row(P), row(Q), row(None, kind=Kind.SERVICE, resource=Resource.SERVICE,
                            action=Action.SERVICE_STATUS, detail=Detail.SERVICE_DOWN),
        row(None, kind=Kind.SYSTEM, resource=Resource.SYSTEM, action=Action.MESSAGE_BUS,
            detail=Detail.BROKER_UNREACHABLE))
    for version in ("3.3", "3.5", "3.31", "3.71"):
        listed = client.get(f"/v3/{P}/messages", headers=headers("u", P, version)).json()
        assert [m["id"] for m in listed["messages"]] == [mine["id"]]
    for other in (theirs, service, system):
        for method in ("GET", "DELETE"):
            response = client.request(method, f"/v3/{P}/messages/{other['id']}",
                                      headers=headers("u", P))
            assert response.status_code == 404
            assert response.json()["itemNotFound"]["message"] == (
                f"Message {other['id']} could not be found.")
    admin = client.get(f"/v3/{P}/messages", headers=headers("admin", P)).json()["messages"]
    assert {m["id"] for m in admin} == {mine["id"], theirs["id"], service["id"], system["id"]}
    assert client.get(f"/v3/{P}/messages/{system['id']}", headers=headers("admin", P)
                      ).json()["message"]["event_id"] == "VOLUME_SYSTEM_102_103"
    assert client.delete(f"/v3/{P}/messages/{theirs['id']}",
                         headers=headers("admin", P)).status_code == 204


@pytest.fixture
def roles_client(settings, engine):
    with TestClient(create_app(settings.replace(trust_roles_header=True), engine=engine)) as c:
        yield c


def test_reader_may_read_but_not_delete(roles_client, seed):
    [message] = seed(row(P))
    reader = headers("r", P, **{"X-Roles": "reader"})
    assert roles_client.get(f"/v3/{P}/messages", headers=reader).status_code == 200
    assert roles_client.get(f"/v3/{P}/messages/{message['id']}", headers=reader).status_code == 200
    response = roles_client.delete(f"/v3/{P}/messages/{message['id']}", headers=reader)
    assert response.status_code == 403
    assert response.json() == {"forbidden": {"code": 403, "message": (
        "Policy doesn't allow message:delete to be performed.")}}
    nobody = headers("n", P, **{"X-Roles": ""})
    assert roles_client.get(f"/v3/{P}/messages", headers=nobody).json()["forbidden"]["message"] == (
        "Policy doesn't allow message:get_all to be performed.")
    admin_role = headers("someone", P, **{"X-Roles": "admin"})
    assert roles_client.get(f"/v3/{P}/messages", headers=admin_role).status_code == 200


def test_roles_header_is_ignored_unless_trusted(client, seed):
    [message] = seed(row(Q))
    forged = headers("u", P, **{"X-Roles": "admin"})
    assert client.get(f"/v3/{P}/messages/{message['id']}", headers=forged).status_code == 404


def test_a_policy_file_overrides_a_rule(settings, engine, seed, tmp_path):
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text('"message:delete": "role:admin"\n')
    [message] = seed(row(P))
    app = create_app(settings.replace(policy_file=str(policy_file)), engine=engine)
    with TestClient(app) as client:
        assert client.delete(f"/v3/{P}/messages/{message['id']}",
                             headers=headers("u", P)).status_code == 403
        assert client.get(f"/v3/{P}/messages/{message['id']}",
                          headers=headers("u", P)).status_code == 200


def test_legacy_rows_render_their_text(client, seed):
    legacy = row(P)
    legacy.update(action_id=None, detail_id=None, event_id="VOLUME_000002")
    unknown = row(P, minutes=1)
    unknown.update(action_id=None, detail_id=None, event_id="VOLUME_999999")
    seed(legacy, unknown)
    texts = {m["event_id"]: m["user_message"] for m in client.get(
        f"/v3/{P}/messages", headers=headers("u", P)).json()["messages"]}
    assert texts["VOLUME_000002"].startswith("No storage could be allocated")
    assert texts["VOLUME_999999"] == "An unknown error occurred."


def test_openapi_document_lists_the_routes(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert "/v3/{project_id}/messages/{message_id}" in paths
