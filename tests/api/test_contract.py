"""Cinder's wire contract (§13 of the reference notes), point by point, on SQLite and
PostgreSQL, through the real app. Paging and sorting: test_paging.py; isolation and
policy: test_access.py; malformed requests: test_bad_input.py."""

from __future__ import annotations

import datetime as dt
import re
import uuid

from fastapi.testclient import TestClient

from tests.api.conftest import BASE_TIME, headers, row
from usermessages.catalog import Action, Detail, Resource
from usermessages.context import RequestContext
from usermessages.messenger import Messenger
from usermessages.service import create_app

P, Q = "aaaa1111", "bbbb2222"
UUID4 = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
REQ_ID = re.compile(rf"^req-{UUID4}$")
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$")
KEYS = ["id", "event_id", "user_message", "message_level", "created_at", "guaranteed_until",
        "request_id", "links", "resource_type", "resource_uuid"]
NOT_FOUND = {"itemNotFound": {"code": 404, "message": "The resource could not be found."}}


def version_object(base: str = "http://testserver") -> dict:
    return {
        "id": "v3.0", "status": "CURRENT", "version": "3.71", "min_version": "3.0",
        "updated": "2023-08-31T00:00:00Z",
        "links": [{"rel": "describedby", "type": "text/html",
                   "href": "https://docs.openstack.org/"},
                  {"rel": "self", "href": f"{base}/v3/"}],
        "media-types": [{"base": "application/json",
                         "type": "application/vnd.openstack.volume+json;version=3"}],
    }


# 1. both URL forms, project checks ---------------------------------------------------


def test_both_url_forms_serve_list_show_and_delete(client, seed):
    first, second = seed(row(P, resource_uuid="vol-1"), row(P, minutes=1))
    for prefix, victim in ((f"/v3/{P}", first), ("/v3", second)):
        listed = client.get(f"{prefix}/messages", headers=headers("u", P))
        assert listed.status_code == 200
        assert victim["id"] in [m["id"] for m in listed.json()["messages"]]
        shown = client.get(f"{prefix}/messages/{victim['id']}", headers=headers("u", P, "3.3"))
        assert shown.status_code == 200 and shown.json()["message"]["id"] == victim["id"]
        assert shown.json()["message"]["links"][0]["href"] == (
            f"http://testserver{prefix}/messages/{victim['id']}")
        deleted = client.delete(f"{prefix}/messages/{victim['id']}", headers=headers("u", P))
        assert deleted.status_code == 204
    assert client.get(f"/v3/{P}/messages", headers=headers("u", P)).json() == {"messages": []}


def test_url_project_must_match_the_token(client, seed):
    [message] = seed(row(Q))
    for method, path in (("GET", "messages"), ("GET", f"messages/{message['id']}"),
                         ("DELETE", f"messages/{message['id']}")):
        for who in ("u", "admin"):
            response = client.request(method, f"/v3/{Q}/{path}", headers=headers(who, P))
            assert response.status_code == 400
            # Cinder's text first, then why: the body keeps Cinder's shape.
            assert response.json() == {"badRequest": {"code": 400, "message": (
                f"Malformed request url: the project in the URL ({Q}) is not the token's ({P})"
            )}}


def test_project_segment_must_look_like_a_project_id(client, seed):
    for project in ("admin", "Not_Hex", "AAAA1111", "aaaa%20"):
        [message] = seed(row(project))
        for method, path in (("GET", "messages"), ("GET", f"messages/{message['id']}"),
                             ("DELETE", f"messages/{message['id']}")):
            response = client.request(method, f"/v3/{project}/{path}",
                                      headers=headers("u", project))
            assert response.status_code == 404, response.text
            # JSON, where Cinder gives webob's HTML; Cinder's text, then the reason.
            shown = "aaaa " if project == "aaaa%20" else project
            assert response.json() == {"itemNotFound": {"code": 404, "message": (
                "The resource could not be found. A project id must match [0-9a-f\\-]+ "
                f"([api] project_id_regex, as Cinder's); {shown!r} does not.")}}


# 2-3. microversions -------------------------------------------------------------------------


def test_negotiation_and_echo(client):
    for sent, echoed in (
        ("volume 3.5", "volume 3.5"), ("volume 3.3", "volume 3.3"),
        ("volume latest", "volume 3.71"), ("volume 3.71", "volume 3.71"),
        ("compute 2.1, volume 3.5", "volume 3.5"), ("compute 2.1,volume 3.7", "volume 3.7"),
    ):
        response = client.get(f"/v3/{P}/messages",
                              headers={"X-Auth-Token": f"u:{P}", "OpenStack-API-Version": sent})
        assert response.status_code == 200, sent
        assert response.headers["openstack-api-version"] == echoed
        assert response.headers["vary"] == "OpenStack-API-Version"


def test_below_3_3_messages_do_not_exist(client, seed):
    [message] = seed(row(P))
    for version in (None, "3.0", "3.2"):
        for method, path in (("GET", "messages"), ("GET", f"messages/{message['id']}"),
                             ("DELETE", f"messages/{message['id']}"),
                             ("GET", "resource_filters")):
            for prefix in (f"/v3/{P}", "/v3"):
                response = client.request(method, f"{prefix}/{path}",
                                          headers=headers("u", P, version))
                assert response.status_code == 404
                assert response.json() == NOT_FOUND
                assert response.headers["openstack-api-version"] == (
                    f"volume {version or '3.0'}")
    # Nothing was deleted.
    assert client.get(f"/v3/{P}/messages/{message['id']}", headers=headers("u", P)
                      ).status_code == 200


def test_version_errors_are_cinders(client):
    response = client.get(f"/v3/{P}/messages", headers=headers("u", P, "3.99"))
    assert response.status_code == 406
    assert response.json() == {"computeFault": {"code": 406, "message": (
        "Version 3.99 is not supported by the API. Minimum is 3.0 and maximum is 3.71.")}}
    response = client.get(f"/v3/{P}/messages", headers=headers("u", P, "2.0"))
    assert response.json() == {"computeFault": {"code": 406, "message": (
        "Version 2.0 is not supported by the API. Minimum is 3.0 and maximum is 3.71.")}}
    response = client.get(f"/v3/{P}/messages", headers=headers("u", P, "3.x"))
    assert response.status_code == 400
    assert response.json() == {"badRequest": {"code": 400, "message": (
        "API Version String 3.x is of invalid format. Must be of format MajorNum.MinorNum.")}}
    response = client.get(f"/v3/{P}/messages", headers={"X-Auth-Token": f"u:{P}",
                                                        "OpenStack-API-Version": "compute 2.1"})
    assert response.status_code == 400
    assert response.json() == {"badRequest": {"code": 400, "message": (
        "The server could not comply with the request since it is either malformed or "
        "otherwise incorrect.")}}


def test_legacy_version_header_is_ignored(client):
    response = client.get(f"/v3/{P}/messages", headers={
        "X-Auth-Token": f"u:{P}", "X-OpenStack-Volume-API-Version": "3.5"})
    assert response.status_code == 404 and response.json() == NOT_FOUND
    assert response.headers["openstack-api-version"] == "volume 3.0"


def test_every_v3_response_echoes_the_version_and_vary(client, seed):
    [message, other] = seed(row(P), row(Q))
    mid = message["id"]
    cases = [  # (method, path, request headers, expected status, expected echo)
        ("GET", "/v3", {}, 200, "volume 3.0"),
        ("GET", "/v3/", headers("u", P, "3.7"), 200, "volume 3.7"),
        ("GET", f"/v3/{P}/messages", headers("u", P), 200, "volume 3.5"),
        ("GET", f"/v3/{P}/messages/{mid}", headers("u", P, "latest"), 200, "volume 3.71"),
        ("GET", f"/v3/{P}/messages/{other['id']}", headers("u", P), 404, "volume 3.5"),
        ("GET", f"/v3/{P}/messages?limit=x", headers("u", P, "3.40"), 400, "volume 3.40"),
        ("GET", f"/v3/{Q}/messages", headers("u", P), 400, "volume 3.5"),
        ("GET", f"/v3/{P}/messages", {"OpenStack-API-Version": "volume 3.5"}, 401,
         "volume 3.5"),
        ("GET", f"/v3/{P}/nothing", headers("u", P), 404, "volume 3.5"),
        ("POST", f"/v3/{P}/messages", headers("u", P), 404, "volume 3.5"),
        # Cinder 29 echoes the version asked for on a 406, and none on a malformed one.
        ("GET", f"/v3/{P}/messages", headers("u", P, "3.99"), 406, "volume 3.99"),
        ("GET", f"/v3/{P}/messages", headers("u", P, "3.72"), 406, "volume 3.72"),
        ("GET", f"/v3/{P}/messages", headers("u", P, "3.x"), 400, None),
        ("GET", f"/v3/{P}/messages", {**headers("u", P), "OpenStack-API-Version": "volume"},
         400, None),
        ("DELETE", f"/v3/{P}/messages/{mid}", headers("u", P, "3.9"), 204, "volume 3.9"),
    ]
    for method, path, sent, status, echo in cases:
        response = client.request(method, path, headers=sent)
        assert response.status_code == status, (path, response.text)
        if echo is not None:  # tempest: the echo equals what was asked for
            assert response.headers["vary"] == "OpenStack-API-Version", path
            assert response.headers["openstack-api-version"] == echo, path
        else:
            assert "openstack-api-version" not in response.headers, path
            assert "vary" not in response.headers, path


# 4. versions document ----------------------------------------------------------------------


def test_versions_document(client):
    root = client.get("/")
    assert root.status_code == 300
    assert root.headers["content-type"] == "application/json"
    assert root.json() == {"versions": [version_object()]}
    assert list(root.json()["versions"][0]) == list(version_object())  # Cinder's key order
    for path in ("/v3", "/v3/"):
        response = client.get(path)  # no token: the openstack CLI discovers like this
        assert response.status_code == 200
        assert response.json() == {"versions": [version_object()]}
    # Discovery that does send a token still works.
    assert client.get("/v3/", headers=headers("u", P)).status_code == 200


def test_versions_document_follows_public_endpoint_and_forwarded_host(settings, engine):
    app = create_app(settings.replace(public_endpoint="https://cloud.example/volume/"),
                     engine=engine)
    with TestClient(app) as client:
        assert client.get("/").json() == {"versions": [
            version_object("https://cloud.example/volume")]}
    with TestClient(create_app(settings, engine=engine)) as client:
        body = client.get("/v3/", headers={"X-Forwarded-Host": "a, api.example:8776"}).json()
        assert body == {"versions": [version_object("http://api.example:8776")]}


# 5. request ids ----------------------------------------------------------------------------


def test_request_ids_are_fresh_on_every_response(client, seed):
    [message] = seed(row(P))
    inbound = {"X-OpenStack-Request-ID": "req-11111111-1111-4111-8111-111111111111"}
    responses = [
        client.get("/", headers=inbound), client.get("/v3/", headers=inbound),
        client.get(f"/v3/{P}/messages", headers={**headers("u", P), **inbound}),
        client.get(f"/v3/{P}/messages", headers={**headers("u", P), **inbound}),
        client.get(f"/v3/{P}/messages/nope", headers={**headers("u", P), **inbound}),
        client.get(f"/v3/{P}/messages", headers={**headers("u", P, "3.99"), **inbound}),
        client.get(f"/v3/{P}/messages", headers={"OpenStack-API-Version": "volume 3.5"}),
        client.get("/nothing/here"),
        client.delete(f"/v3/{P}/messages/{message['id']}",
                      headers={**headers("u", P), **inbound}),
    ]
    seen = set()
    for response in responses:
        request_id = response.headers["x-openstack-request-id"]
        assert REQ_ID.match(request_id), request_id
        assert request_id != inbound["X-OpenStack-Request-ID"]
        seen.add(request_id)
        if response.status_code == 204:
            assert "x-compute-request-id" not in response.headers
        else:
            assert response.headers["content-type"] == "application/json"
            assert response.headers["x-compute-request-id"] == request_id
    assert len(seen) == len(responses)


# 6-9. bodies -----------------------------------------------------------------------------------


def test_show_body_is_exactly_cinders(client, seed):
    [message] = seed(row(P, resource_uuid="0e0e0e0e-0000-4000-8000-000000000001",
                         action=Action.SCHEDULE_ALLOCATE_VOLUME,
                         detail=Detail.NO_BACKEND_AVAILABLE, request_id="req-abc"))
    response = client.get(f"/v3/{P}/messages/{message['id']}", headers=headers("u", P, "3.3"))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert list(response.json()) == ["message"]
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
    assert P not in response.text.replace(f"/{P}/", "")


def test_list_items_are_the_show_bodies(client, seed):
    rows = seed(row(P, resource_uuid="vol-1"), row(P, minutes=1))
    listed = client.get(f"/v3/{P}/messages", headers=headers("u", P)).json()
    assert list(listed) == ["messages"]
    for item in listed["messages"]:
        shown = client.get(f"/v3/{P}/messages/{item['id']}", headers=headers("u", P)).json()
        assert item == shown["message"] and list(item) == list(shown["message"])
    assert [list(m) for m in listed["messages"]] == [KEYS[:-1], KEYS]
    assert {m["id"] for m in listed["messages"]} == {r["id"] for r in rows}


def test_empty_resource_keys_are_omitted(client, seed):
    no_uuid = row(P, resource_uuid="")
    no_resource = row(P, minutes=1, resource_uuid="")
    no_resource["resource_type"] = ""
    seed(no_uuid, no_resource)
    bodies = {m["id"]: m for m in client.get(
        f"/v3/{P}/messages", headers=headers("u", P)).json()["messages"]}
    assert list(bodies[no_uuid["id"]]) == KEYS[:-1]
    assert list(bodies[no_resource["id"]]) == KEYS[:-2]


def test_a_message_from_the_sdk_has_cinders_formats(client, db_url):
    context = RequestContext(project_id=P, user_id="u")
    messenger = Messenger.from_url(db_url)
    try:
        before = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        message_id = messenger.create(context, Action.EXTEND_VOLUME,
                                      resource_uuid="0e0e0e0e-0000-4000-8000-000000000002",
                                      detail=Detail.DRIVER_FAILED_EXTEND)
        after = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    finally:
        messenger.close()
    assert message_id and re.fullmatch(UUID4, message_id)
    body = client.get(f"/v3/messages/{message_id}", headers=headers("u", P)).json()["message"]
    assert body["id"] == message_id and body["request_id"] == context.request_id
    assert REQ_ID.match(body["request_id"])
    assert body["event_id"] == "VOLUME_VOLUME_007_010"
    assert body["user_message"] == "extend volume:Volume Driver failed to extend volume."
    assert body["resource_type"] == "VOLUME" and body["message_level"] == "ERROR"
    for key in ("created_at", "guaranteed_until"):
        assert TIMESTAMP.match(body[key]), body[key]
    created = dt.datetime.strptime(body["created_at"], "%Y-%m-%dT%H:%M:%S.%f")
    until = dt.datetime.strptime(body["guaranteed_until"], "%Y-%m-%dT%H:%M:%S.%f")
    assert before <= created <= after  # naive UTC
    assert until - created == dt.timedelta(seconds=2592000)  # message_ttl
    assert body["links"] == [
        {"rel": "self", "href": f"http://testserver/v3/messages/{message_id}"},
        {"rel": "bookmark", "href": f"http://testserver/messages/{message_id}"}]


def test_whole_second_timestamps_keep_their_microseconds(client, seed):
    message = row(P)
    message["created_at"] = dt.datetime(2026, 1, 2, 3, 4, 5)
    message["expires_at"] = dt.datetime(2026, 2, 1, 3, 4, 5)
    seed(message)
    body = client.get(f"/v3/{P}/messages/{message['id']}", headers=headers("u", P)).json()
    assert body["message"]["created_at"] == "2026-01-02T03:04:05.000000"
    assert body["message"]["guaranteed_until"] == "2026-02-01T03:04:05.000000"


def test_links_follow_the_forwarded_host_and_public_endpoint(client, seed, settings, engine):
    [message] = seed(row(P))
    mid = message["id"]
    body = client.get(f"/v3/messages/{mid}", headers={
        **headers("u", P), "X-Forwarded-Host": "a.example, cloud.example:8776"}).json()
    assert body["message"]["links"] == [
        {"rel": "self", "href": f"http://cloud.example:8776/v3/messages/{mid}"},
        {"rel": "bookmark", "href": f"http://cloud.example:8776/messages/{mid}"}]
    app = create_app(settings.replace(public_endpoint="https://cloud.example/volume"),
                     engine=engine)
    with TestClient(app) as public:
        body = public.get(f"/v3/{P}/messages?limit=1", headers=headers("u", P)).json()
    assert body["messages"][0]["links"] == [
        {"rel": "self", "href": f"https://cloud.example/volume/v3/{P}/messages/{mid}"},
        {"rel": "bookmark", "href": f"https://cloud.example/volume/{P}/messages/{mid}"}]
    assert body["messages_links"][0]["href"] == (
        f"https://cloud.example/volume/v3/{P}/messages?limit=1&marker={mid}")


def test_responses_are_json_whatever_the_accept_header(client, seed):
    [message] = seed(row(P))
    for accept in ("application/xml", "application/vnd.openstack.volume+json", "text/html"):
        response = client.get(f"/v3/{P}/messages/{message['id']}",
                              headers={**headers("u", P), "Accept": accept})
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        assert response.json()["message"]["id"] == message["id"]


def test_delete_is_204_with_an_empty_body(client, seed):
    [message] = seed(row(P))
    response = client.delete(f"/v3/{P}/messages/{message['id']}", headers=headers("u", P))
    assert response.status_code == 204 and response.content == b""
    assert response.headers["content-length"] == "0"
    assert response.headers["content-type"] == "text/html; charset=UTF-8"  # webob's default
    assert response.headers["openstack-api-version"] == "volume 3.5"
    assert response.headers["vary"] == "OpenStack-API-Version"


def test_legacy_and_unknown_rows_render_a_text(client, seed):
    legacy = row(P)
    legacy.update(action_id=None, detail_id=None, event_id="VOLUME_000002")
    unknown_legacy = row(P, minutes=1)
    unknown_legacy.update(action_id=None, detail_id=None, event_id="VOLUME_999999")
    unknown_ids = row(P, minutes=2)
    unknown_ids.update(action_id="999", detail_id="999", event_id="VOLUME_VOLUME_999_999")
    seed(legacy, unknown_legacy, unknown_ids)
    texts = {m["event_id"]: m["user_message"] for m in client.get(
        f"/v3/{P}/messages", headers=headers("u", P)).json()["messages"]}
    assert texts["VOLUME_000002"].startswith("No storage could be allocated")
    assert texts["VOLUME_999999"] == "An unknown error occurred."
    assert texts["VOLUME_VOLUME_999_999"] == "unknown action:An unknown error occurred."


# 12. filters -------------------------------------------------------------------------------


def test_user_filters_are_exact(client, seed):
    rows = seed(row(P, resource_uuid="vol-1", request_id="req-a"),
                row(P, resource_uuid="vol-2", request_id="req-b", level="WARNING",
                    resource=Resource.VOLUME_BACKUP, action=Action.BACKUP_CREATE,
                    detail=Detail.BACKUP_SERVICE_DOWN),
                row(Q, resource_uuid="vol-1", request_id="req-a"))

    def ids(query: str, version: str = "3.5") -> list[str]:
        response = client.get(f"/v3/{P}/messages?{query}", headers=headers("u", P, version))
        assert response.status_code == 200, response.text
        return [m["id"] for m in response.json()["messages"]]

    first, second = rows[0]["id"], rows[1]["id"]
    for version in ("3.5", "3.31", "3.34", "3.71"):
        assert ids("resource_uuid=vol-1", version) == [first]  # and not project Q's
        assert ids("request_id=req-b", version) == [second]
        assert ids("message_level=WARNING", version) == [second]
        assert ids("resource_type=VOLUME_BACKUP", version) == [second]
        assert ids("event_id=VOLUME_VOLUME_BACKUP_013_018", version) == [second]
    assert ids("message_level=warning") == []  # exact, as Cinder on SQLite
    assert ids("resource_uuid=vol") == []  # not a LIKE
    assert ids("resource_uuid=vol-1&message_level=WARNING") == []
    assert ids("resource_uuid=vol-2&message_level=WARNING&resource_type=VOLUME_BACKUP"
               "&request_id=req-b&event_id=VOLUME_VOLUME_BACKUP_013_018") == [second]
    # cinderclient's name lookup sends all_tenants=1: silently ignored, for anyone.
    assert set(ids("all_tenants=1")) == {first, second}
    assert set(ids("all_tenants=1", "3.71")) == {first, second}
    assert ids("all_tenants=1&request_id=req-a") == [first]


def test_unknown_filters_are_rejected_with_cinders_text(client):
    for version in ("3.5", "3.31", "3.34", "3.71"):
        response = client.get(f"/v3/{P}/messages?bogus=1&message_level=ERROR&project_id=x",
                              headers=headers("u", P, version))
        assert response.status_code == 400
        assert response.json() == {"badRequest": {"code": 400, "message": (
            "Invalid filters bogus,project_id are found in query options.")}}
        for like in ("event_id~=VOL", "message_level~=ERR"):  # Cinder's config has no ~ keys
            response = client.get(f"/v3/{P}/messages?{like}", headers=headers("u", P, version))
            assert response.status_code == 400
            assert response.json()["badRequest"]["message"] == (
                f"Invalid filters {like.split('=')[0]} are found in query options.")


def test_admins_filter_on_more_and_may_use_like(client, seed):
    rows = seed(row(P, action=Action.BACKUP_CREATE, resource=Resource.VOLUME_BACKUP,
                    detail=Detail.BACKUP_SERVICE_DOWN, resource_uuid="vol-x1"),
                row(Q, host="node-2", resource_uuid="vol-y2"))

    def ids(query: str) -> list[str]:
        response = client.get(f"/v3/{P}/messages?{query}", headers=headers("admin", P, "3.71"))
        assert response.status_code == 200, response.text
        return [m["id"] for m in response.json()["messages"]]

    assert ids(f"project_id={Q}") == [rows[1]["id"]]
    assert ids(f"project_id={P}") == [rows[0]["id"]]
    assert ids("action_id=013") == [rows[0]["id"]]
    assert ids("detail_id=018") == [rows[0]["id"]]
    assert ids("host=node-2") == [rows[1]["id"]]
    assert ids("event_id~=BACKUP") == [rows[0]["id"]]
    assert ids("resource_uuid~=y") == [rows[1]["id"]]
    assert ids(f"project_id~={Q[:4]}") == [rows[1]["id"]]
    assert ids("event_id~=%25") == []  # LIKE wildcards are escaped
    assert set(ids("event_id~=_")) == {r["id"] for r in rows}  # ... and match literally
    assert set(ids("all_tenants=1")) == {r["id"] for r in rows}


def test_time_range_filters(client, seed):
    rows = seed(row(P, minutes=0), row(P, minutes=10), row(P, minutes=20))
    since = (BASE_TIME.replace(minute=5)).isoformat()
    before = (BASE_TIME.replace(minute=15)).isoformat() + "Z"
    response = client.get(f"/v3/{P}/messages", params={"created_since": since,
                                                       "created_before": before},
                          headers=headers("u", P))
    assert [m["id"] for m in response.json()["messages"]] == [rows[1]["id"]]


def test_resource_filters_endpoint(client):
    expected = {"resource_filters": [{"resource": "message", "filters": [
        "resource_uuid", "resource_type", "event_id", "request_id", "message_level"]}]}
    for prefix in (f"/v3/{P}", "/v3"):
        for version in ("3.33", "3.71"):
            response = client.get(f"{prefix}/resource_filters?resource=message",
                                  headers=headers("u", P, version))
            assert response.status_code == 200 and response.json() == expected
        assert client.get(f"{prefix}/resource_filters", headers=headers("u", P, "3.33")
                          ).json() == expected
        assert client.get(f"{prefix}/resource_filters?resource=volume",
                          headers=headers("u", P, "3.33")).json() == {"resource_filters": []}
        response = client.get(f"{prefix}/resource_filters", headers=headers("u", P, "3.32"))
        assert response.status_code == 404 and response.json() == NOT_FOUND


def test_openapi_document_lists_the_routes(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v3/{project_id}/messages", "/v3/{project_id}/messages/{message_id}",
            "/v3/messages", "/v3/messages/{message_id}"} <= set(paths)


def test_ids_are_uuid4_strings(client, db_url):
    messenger = Messenger.from_url(db_url)
    try:
        ids = {messenger.create(RequestContext(project_id=P), Action.ATTACH_VOLUME)
               for _ in range(3)}
    finally:
        messenger.close()
    listed = client.get(f"/v3/{P}/messages", headers=headers("u", P)).json()["messages"]
    assert {m["id"] for m in listed} == ids
    assert all(uuid.UUID(i).version == 4 for i in ids)
