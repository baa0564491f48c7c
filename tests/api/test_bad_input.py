"""Every malformed request gets a Cinder fault body with a 4xx: never a 500, never a traceback.

No request here changes anything, so each engine's store is built and seeded
once for the module, which keeps some 200 requests per engine quick.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import headers, row
from tests.harness import servers
from usermessages.config import Settings
from usermessages.service import create_app
from usermessages.store import engine as store_engine
from usermessages.store import migrate, writer

P = "aaaa1111"
LONG = "x" * 256
SORT_CONFLICT = ("The 'sort_key' and 'sort_dir' parameters are deprecated and cannot be used "
                 "with the 'sort' parameter.")


@pytest.fixture(scope="module", params=["sqlite", "postgresql", "mariadb"])
def sweep_client(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[TestClient]:
    """One seeded store per engine, shared by every (read-only) case in this module."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('sweep')}/usermessages.sqlite"
    elif request.param == "mariadb":
        url = request.getfixturevalue("mariadb").create_database(f"sweep_{uuid.uuid4().hex[:8]}")
    else:
        url = servers.create_database(request.getfixturevalue("postgresql_admin_url"),
                                      f"sweep_{uuid.uuid4().hex[:8]}")
    engine = store_engine.connect(url)
    migrate.upgrade(engine)
    with engine.begin() as conn:
        writer.insert(conn, [row(P, minutes=i) for i in range(3)])
    try:
        with TestClient(create_app(Settings(database_connection=url), engine=engine)) as client:
            yield client
    finally:
        engine.dispose()

# (method, path, query, request headers, expected status, expected text or None)
CASES = [
    ("GET", f"/v3/{P}/messages", "limit=abc", None, 400, "limit param must be an integer"),
    ("GET", f"/v3/{P}/messages", "limit=-1", None, 400, "limit param must be positive"),
    ("GET", f"/v3/{P}/messages", "limit=1.5", None, 400, "limit param must be an integer"),
    ("GET", f"/v3/{P}/messages", "offset=-1", None, 400, "offset must be >= 0"),
    ("GET", f"/v3/{P}/messages", "offset=zz", None, 400, "offset must be an integer"),
    ("GET", f"/v3/{P}/messages", "offset=99999999999", None, 400, "offset must be <= 2147483647"),
    ("GET", f"/v3/{P}/messages", "marker=nope", None, 404, "Message nope could not be found."),
    ("GET", f"/v3/{P}/messages", "sort=bogus", None, 400,
     "Invalid input received: Invalid sort key"),
    ("GET", f"/v3/{P}/messages", "sort=guaranteed_until", None, 400,
     "Invalid input received: Invalid sort key"),
    ("GET", f"/v3/{P}/messages", "sort=host", None, 400,
     "Invalid input received: Invalid sort key"),
    ("GET", f"/v3/{P}/messages", "sort=event_id:up", None, 400,
     "Invalid input received: Unknown sort direction, must be 'desc' or 'asc'."),
    ("GET", f"/v3/{P}/messages", "sort=,", None, 400, "Invalid input received: Invalid sort key"),
    ("GET", f"/v3/{P}/messages", "sort_key=nope", None, 400,
     "Invalid input received: Invalid sort key"),
    ("GET", f"/v3/{P}/messages", "sort_dir=sideways", None, 400,
     "Invalid input received: Unknown sort direction, must be 'desc' or 'asc'."),
    ("GET", f"/v3/{P}/messages", "sort=id&sort_key=id", None, 400, SORT_CONFLICT),
    ("GET", f"/v3/{P}/messages", "bogus=1", None, 400,
     "Invalid filters bogus are found in query options."),
    ("GET", f"/v3/{P}/messages", "h%C3%B4st=1", None, 400,
     "Filter keys can only contain ASCII characters."),
    ("GET", f"/v3/{P}/messages", f"resource_uuid={LONG}", None, 400, None),
    ("GET", f"/v3/{P}/messages", f"{LONG}=1", None, 400, None),
    ("GET", f"/v3/{P}/messages", f"marker={LONG}", None, 400, None),
    ("GET", f"/v3/{P}/messages", "resource_uuid=%FF%FE", None, 400,
     "Invalid input received: query string is not valid UTF-8"),
    ("GET", f"/v3/{P}/messages", "%FF=1", None, 400,
     "Invalid input received: query string is not valid UTF-8"),
    ("GET", f"/v3/{P}/messages", "a=" + "b" * 9000, None, 400, None),
    ("GET", f"/v3/{P}/messages", "created_since=yesterday", None, 400,
     "Invalid input received: created_since must be an ISO 8601 time"),
    ("GET", f"/v3/{P}/messages", "", {"OpenStack-API-Version": "volume 3.99"}, 406,
     "Version 3.99 is not supported by the API. Minimum is 3.0 and maximum is 3.71."),
    ("GET", f"/v3/{P}/messages", "", {"OpenStack-API-Version": "volume 4.0"}, 406, None),
    ("GET", f"/v3/{P}/messages", "", {"OpenStack-API-Version": "volume 3.x"}, 400, None),
    ("GET", f"/v3/{P}/messages", "", {"OpenStack-API-Version": "volume -3.5"}, 400, None),
    ("GET", f"/v3/{P}/messages", "", {"OpenStack-API-Version": "volume"}, 400, None),
    ("GET", f"/v3/{P}/messages", "", {"OpenStack-API-Version": "cinder 3.5"}, 400, None),
    ("GET", "/v3/zzzz/messages", "", {"X-Auth-Token": "u:zzzz"}, 404,
     "The resource could not be found. A project id must match [0-9a-f\\-]+ "
     "([api] project_id_regex, as Cinder's); 'zzzz' does not."),
    ("GET", "/v3/bbbb2222/messages", "", None, 400,
     f"Malformed request url: the project in the URL (bbbb2222) is not the token's ({P})"),
    ("GET", f"/v3/{P}/messages/{LONG}", "", None, 404, None),
    ("GET", f"/v3/{P}/messages/%00", "", None, 404, None),
    ("GET", f"/v3/{P}/messages/", "", None, 404, "The resource could not be found."),
    ("GET", f"/v3/{P}/messages/detail", "", None, 404, "Message detail could not be found."),
    ("GET", f"/v3/{P}/nothing", "", None, 404, "The resource could not be found."),
    ("POST", f"/v3/{P}/messages", "", None, 404, "The resource could not be found."),
    ("PUT", f"/v3/{P}/messages/abc", "", None, 404, "The resource could not be found."),
    ("PATCH", f"/v3/{P}/messages/abc", "", None, 404, "The resource could not be found."),
    ("DELETE", f"/v3/{P}/messages", "", None, 404, "The resource could not be found."),
    ("GET", f"/v3/{P}/messages", "", {"X-Auth-Token": ""}, 401, None),
    ("GET", f"/v3/{P}/messages", "", {"X-Auth-Token": "a" * 600}, 401, None),
    ("GET", f"/v3/{P}/messages", "", {"X-Auth-Token": "u\tx:" + P}, 401, None),
    ("DELETE", f"/v3/{P}/messages/nope", "", None, 404, "Message nope could not be found."),
    # More of the same, in both URL forms and on every route.
    ("GET", "/v3/messages", "limit=abc", None, 400, "limit param must be an integer"),
    ("GET", "/v3/messages", "limit=2&limit=-5", None, 400, "limit param must be positive"),
    ("GET", "/v3/messages", "offset=-1", None, 400, "offset must be >= 0"),
    ("GET", "/v3/messages", "marker=%E2%82%AC", None, 404, "Message \u20ac could not be found."),
    ("GET", "/v3/messages", "sort=created_at:asc,", None, 400,
     "Invalid input received: Invalid sort key"),
    ("GET", "/v3/messages", "sort=h%C3%B4st", None, 400,
     "Invalid input received: Invalid sort key"),
    ("GET", "/v3/messages", "sort=id:asc:desc", None, 400,
     "Invalid input received: Unknown sort direction, must be 'desc' or 'asc'."),
    ("GET", "/v3/messages", "sort_key=id&sort_dir=asc&sort=id", None, 400, None),
    ("GET", "/v3/messages", "foo=1&bar=2&message_level=ERROR", None, 400,
     "Invalid filters foo,bar are found in query options."),
    ("GET", "/v3/messages", "event_id~=VOL", None, 400,
     "Invalid filters event_id~ are found in query options."),
    ("GET", "/v3/messages", "%C3%A9v%C3%A9nement=1", None, 400,
     "Filter keys can only contain ASCII characters."),
    ("GET", "/v3/messages", "%C3%A9=1", {"X-Auth-Token": f"admin:{P}"}, 400,
     "Filter keys can only contain ASCII characters."),
    ("GET", "/v3/messages", f"sort={LONG}", None, 400, None),
    ("GET", "/v3/messages", f"offset={'1' * 300}", None, 400, None),
    ("GET", "/v3/messages", f"request_id={LONG}", {"X-Auth-Token": f"admin:{P}"}, 400, None),
    ("GET", "/v3/messages", "message_level=%FF", None, 400,
     "Invalid input received: query string is not valid UTF-8"),
    ("GET", "/v3/messages", "message_level=%ED%A0%80", None, 400,  # a UTF-16 surrogate
     "Invalid input received: query string is not valid UTF-8"),
    ("GET", "/v3/messages", "message_level=%00", None, 400,
     "Invalid input received: query string contains a NUL character"),
    ("GET", "/v3/messages", "&".join(f"k{i}=v" for i in range(2000)), None, 400, None),
    ("GET", "/v3/messages", "created_since=0001-01-01T00:00:00%2B05:00", None, 400,
     "Invalid input received: created_since must be an ISO 8601 time"),
    ("GET", "/v3/messages", "created_before=9999-12-31T23:59:59-05:00", None, 400,
     "Invalid input received: created_before must be an ISO 8601 time"),
    ("GET", "/v3/messages", "", {"OpenStack-API-Version": "volume 3.5.1"}, 400, None),
    ("GET", "/v3/messages", "", {"OpenStack-API-Version": "volume 03.5"}, 400, None),
    ("GET", "/v3/messages", "", {"OpenStack-API-Version": "volume 3.05"}, 400, None),
    ("GET", "/v3/messages", "", {"OpenStack-API-Version": "volume " + "9" * 300}, 400, None),
    ("GET", "/v3/messages", "", {"OpenStack-API-Version": "volume 3." + "9" * 300}, 406, None),
    ("GET", "/v3/messages", "", {"OpenStack-API-Version": ""}, 400, None),
    ("GET", "/v3/", "", {"OpenStack-API-Version": "volume 3.99"}, 406, None),
    ("GET", f"/v3/{'a' * 300}/messages", "", None, 400,
     f"Malformed request url: the project in the URL ({'a' * 64}) is not the token's ({P})"),
    ("GET", "/v3/%FF/messages", "", {"X-Auth-Token": "u:%FF"}, 404,
     "The resource could not be found. A project id must match [0-9a-f\\-]+ "
     "([api] project_id_regex, as Cinder's); '\ufffd' does not."),
    ("GET", "/v3/%C3%A9/messages", "", None, 404,
     "The resource could not be found. A project id must match [0-9a-f\\-]+ "
     "([api] project_id_regex, as Cinder's); '\u00e9' does not."),
    ("GET", f"/v3/{P}/messages/%FF", "", None, 404, None),
    ("GET", f"/v3/{P}/messages/%C3%A9t%C3%A9", "", None, 404,
     "Message \u00e9t\u00e9 could not be found."),
    ("DELETE", f"/v3/{P}/messages/{LONG}", "", None, 404, None),
    ("DELETE", f"/v3/messages/{'9' * 5000}", "", None, 404, None),
    ("GET", f"/v3/messages/{LONG}", "", None, 404, None),
    ("GET", "/v3/messages/detail", "", None, 404, "Message detail could not be found."),
    ("GET", f"/v3/{P}/resource_filters", "", {"OpenStack-API-Version": "volume 3.32"}, 404,
     "The resource could not be found."),
    ("POST", f"/v3/{P}/messages/abc", "", None, 404, "The resource could not be found."),
    ("PUT", f"/v3/{P}/messages", "", None, 404, "The resource could not be found."),
    ("POST", "/v3/messages", "", None, 404, "The resource could not be found."),
    ("PUT", "/v3/messages/abc", "", None, 404, "The resource could not be found."),
    ("PATCH", "/v3/messages/abc", "", None, 404, "The resource could not be found."),
    ("POST", "/v3/resource_filters", "", None, 404, "The resource could not be found."),
    ("GET", "/v3/messages", "", {"X-Auth-Token": ""}, 401, None),
    ("DELETE", "/v3/messages/abc", "", {"X-Auth-Token": ""}, 401, None),
    ("GET", "/v3/messages", "", {"X-Auth-Token": ":" + P}, 401, None),
    ("GET", "/v3/messages", "", {"X-Auth-Token": "u:" + "a" * 300}, 401, None),
]


@pytest.mark.parametrize(("method", "path", "query", "extra", "status", "text"), CASES,
                         ids=[f"{c[0]} {c[1][-20:]}?{c[2][:30]} {c[3] or ''}" for c in CASES])
def test_malformed_requests_get_a_cinder_fault(sweep_client, method, path, query, extra, status,
                                               text):
    sent = {**headers("u", P), **(extra or {})}
    if sent.get("X-Auth-Token") == "":
        del sent["X-Auth-Token"]
    response = sweep_client.request(method, f"{path}?{query}" if query else path, headers=sent)
    assert response.status_code == status, response.text
    body = response.json()
    [(name, fault)] = body.items()
    assert fault["code"] == status and isinstance(fault["message"], str) and fault["message"]
    assert name == {400: "badRequest", 401: "unauthorized", 404: "itemNotFound",
                    406: "computeFault"}[status]
    if text is not None:
        assert fault["message"] == text
    assert "Traceback" not in response.text and "File \"" not in response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-openstack-request-id"].startswith("req-")
    assert response.headers["x-compute-request-id"] == response.headers["x-openstack-request-id"]
    asked = (extra or {}).get("OpenStack-API-Version")
    if status == 406:
        # Cinder echoes the version asked for on a 406 ...
        assert response.headers["openstack-api-version"] == asked
        assert response.headers["vary"] == "OpenStack-API-Version"
    elif status == 400 and asked is not None:
        # ... and sends neither header for a malformed one.
        assert "openstack-api-version" not in response.headers
        assert "vary" not in response.headers
    else:
        assert response.headers["vary"] == "OpenStack-API-Version"
        assert response.headers["openstack-api-version"].startswith("volume 3.")


def test_no_request_can_make_the_server_fail(sweep_client):
    """A wider, generated sweep: no combination of odd parameters may give a 5xx."""
    odd = ["", "0", "-0", "1e3", "nan", "%00", "null", "'", "\"", "%2C", ":", "::", "asc:desc",
           "%E2%80%AE", "a" * 255, "created_at:asc,", "id:asc:desc", "%FF", "9" * 40,
           "%EF%BC%91", "+1", " 1", "0001-01-01T00:00:00%2B14:00", "%25", "_", "\\"]
    keys = ["limit", "offset", "marker", "sort", "sort_key", "sort_dir", "resource_uuid",
            "message_level", "created_since", "all_tenants"]
    callers = [("u", "3.3"), ("u", "3.71"), ("admin", "3.71")]
    for user, version in callers:
        # Admins reach the unscoped queries and their extra (LIKE) filters.
        extra = ["project_id", "event_id~", "action_id", "kind"] if user == "admin" else []
        for key in keys + extra:
            for value in odd:
                response = sweep_client.get(f"/v3/{P}/messages?{key}={value}",
                                            headers=headers(user, P, version))
                assert response.status_code < 500, (version, key, value, response.text)
                assert "Traceback" not in response.text


def test_an_internal_error_is_a_plain_fault_without_its_cause(tmp_path):
    """A store that is not there is the server's fault: Cinder's 500 text, nothing more."""
    url = f"sqlite:///{tmp_path}/never-migrated.sqlite"
    engine = store_engine.connect(url)
    try:
        with TestClient(create_app(Settings(database_connection=url), engine=engine),
                        raise_server_exceptions=False) as client:
            response = client.get(f"/v3/{P}/messages", headers=headers("u", P))
    finally:
        engine.dispose()
    assert response.status_code == 500
    assert response.json() == {"computeFault": {"code": 500, "message": (
        "The server has either erred or is incapable of performing the requested operation.")}}
    assert "Traceback" not in response.text and "messages" not in response.text
    assert response.headers["vary"] == "OpenStack-API-Version"
    assert response.headers["x-compute-request-id"] == response.headers["x-openstack-request-id"]
