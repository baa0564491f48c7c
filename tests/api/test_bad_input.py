"""Every malformed request gets a Cinder fault body with a 4xx: never a 500, never a traceback."""

from __future__ import annotations

import pytest

from tests.api.conftest import headers, row

P = "aaaa1111"
LONG = "x" * 256

# (method, path, query, request headers, expected status, expected text or None)
CASES = [
    ("GET", f"/v3/{P}/messages", "limit=abc", None, 400, "limit param must be an integer"),
    ("GET", f"/v3/{P}/messages", "limit=-1", None, 400, "limit param must be positive"),
    ("GET", f"/v3/{P}/messages", "limit=1.5", None, 400, "limit param must be an integer"),
    ("GET", f"/v3/{P}/messages", "offset=-1", None, 400, "offset must be >= 0"),
    ("GET", f"/v3/{P}/messages", "offset=zz", None, 400, "offset must be an integer"),
    ("GET", f"/v3/{P}/messages", "offset=99999999999", None, 400, "offset must be <= 2147483647"),
    ("GET", f"/v3/{P}/messages", "marker=nope", None, 404, "Message nope could not be found."),
    ("GET", f"/v3/{P}/messages", "sort=bogus", None, 400, "Invalid input received: Invalid sort key"),
    ("GET", f"/v3/{P}/messages", "sort=guaranteed_until", None, 400,
     "Invalid input received: Invalid sort key"),
    ("GET", f"/v3/{P}/messages", "sort=host", None, 400, "Invalid input received: Invalid sort key"),
    ("GET", f"/v3/{P}/messages", "sort=event_id:up", None, 400,
     "Invalid input received: Unknown sort direction, must be 'desc' or 'asc'."),
    ("GET", f"/v3/{P}/messages", "sort=,", None, 400, "Invalid input received: Invalid sort key"),
    ("GET", f"/v3/{P}/messages", "sort_key=nope", None, 400,
     "Invalid input received: Invalid sort key"),
    ("GET", f"/v3/{P}/messages", "sort_dir=sideways", None, 400,
     "Invalid input received: Unknown sort direction, must be 'desc' or 'asc'."),
    ("GET", f"/v3/{P}/messages", "sort=id&sort_key=id", None, 400,
     "The 'sort_key' and 'sort_dir' parameters are deprecated and cannot be used with the "
     "'sort' parameter."),
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
     "The resource could not be found."),
    ("GET", "/v3/bbbb2222/messages", "", None, 400, "Malformed request url"),
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
]


@pytest.mark.parametrize(("method", "path", "query", "extra", "status", "text"), CASES,
                         ids=[f"{c[0]} {c[1][-20:]}?{c[2][:30]} {c[3] or ''}" for c in CASES])
def test_malformed_requests_get_a_cinder_fault(client, seed, method, path, query, extra, status,
                                               text):
    seed(row(P))
    sent = {**headers("u", P), **(extra or {})}
    if sent.get("X-Auth-Token") == "":
        del sent["X-Auth-Token"]
    response = client.request(method, f"{path}?{query}" if query else path, headers=sent)
    assert response.status_code == status, response.text
    body = response.json()
    [(name, fault)] = body.items()
    assert fault["code"] == status and isinstance(fault["message"], str) and fault["message"]
    assert name == {400: "badRequest", 401: "unauthorized", 404: "itemNotFound",
                    406: "computeFault"}[status]
    if text is not None:
        assert fault["message"] == text
    assert "Traceback" not in response.text and "File \"" not in response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["x-openstack-request-id"].startswith("req-")


def test_no_request_can_make_the_server_fail(client, seed):
    """A wider, generated sweep: no combination of odd parameters may give a 5xx."""
    seed(*[row(P, minutes=i) for i in range(3)])
    odd = ["", "0", "-0", "1e3", "nan", "%00", "null", "'", "\"", "%2C", ":", "::", "asc:desc",
           "%E2%80%AE", "a" * 255, "created_at:asc,", "id:asc:desc"]
    keys = ["limit", "offset", "marker", "sort", "sort_key", "sort_dir", "resource_uuid",
            "message_level", "created_since", "all_tenants"]
    for version in ("3.3", "3.5", "3.71"):
        for key in keys:
            for value in odd:
                response = client.get(f"/v3/{P}/messages?{key}={value}",
                                      headers=headers("u", P, version))
                assert response.status_code < 500, (version, key, value, response.text)
                assert "Traceback" not in response.text
