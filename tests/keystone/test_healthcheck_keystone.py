"""/healthcheck in keystone mode: no token needed; details for a validated admin only."""

from __future__ import annotations

from tests.harness.cloud import Cloud

DETAILED = (("oslo.middleware.healthcheck", "healthcheck", "detailed", "true"),)
JSON = {"Accept": "application/json"}


def test_only_a_keystone_admin_gets_the_details(make_client, cloud: Cloud) -> None:
    client = make_client(library_options=DETAILED)
    plain = {"detailed": False, "reasons": ["database: OK", "bus: OK"]}
    # No token (a load balancer), a project member, a system reader, a garbage token.
    for token in (None, cloud.token("member", "alpha"),
                  cloud.token("system_reader", system=True), "not-a-token"):
        headers = {**JSON, **({"X-Auth-Token": token} if token else {})}
        answer = client.get("/healthcheck", headers=headers)
        assert (answer.status_code, answer.json()) == (200, plain), token
    # A revoked admin token is no admin's.
    revoked = cloud.token("project_admin", "alpha")
    cloud.revoke(revoked)
    answer = client.get("/healthcheck", headers={**JSON, "X-Auth-Token": revoked})
    assert answer.json() == plain
    for admin in (cloud.token("project_admin", "alpha"),
                  cloud.token("system_admin", system=True)):
        answer = client.get("/healthcheck", headers={**JSON, "X-Auth-Token": admin})
        assert answer.status_code == 200
        body = answer.json()
        assert body["detailed"] is True
        assert body["reasons"][0]["details"].startswith("sqlite:///")
