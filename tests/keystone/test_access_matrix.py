"""Who sees what, with real Keystone tokens through keystonemiddleware: zero leaks.

Cinder 29's defaults: the admin role in any scope, or a reader (list, show) or
member (delete) of the project. A system-scoped reader is refused; a
system-scoped admin reads every project on /v3/messages; a project token,
even an admin's, stays in its project.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid

import pytest
from fastapi.testclient import TestClient
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3
from sqlalchemy import Engine

from tests.api.conftest import row
from tests.harness.cloud import Cloud
from usermessages.store import writer

V = {"OpenStack-API-Version": "volume 3.5"}


@pytest.fixture
def seeded(cloud: Cloud, engine: Engine) -> dict[str, str]:
    """One message in alpha, one in beta, one with no project (a service message)."""
    rows = {"alpha": row(cloud.projects["alpha"]), "beta": row(cloud.projects["beta"]),
            "service": row(None)}
    with engine.begin() as conn:
        writer.insert(conn, list(rows.values()))
    return {name: r["id"] for name, r in rows.items()}


def _get(client: TestClient, path: str, token: str, **headers: str):
    return client.get(path, headers={"X-Auth-Token": token, **V, **headers})


def _ids(response) -> set[str]:
    assert response.status_code == 200, response.text
    return {m["id"] for m in response.json()["messages"]}


PROJECT_PERSONAS = [("reader", "alpha"), ("member", "alpha"), ("project_admin", "alpha"),
                    ("multi", "alpha")]


@pytest.mark.parametrize(("user", "project"), PROJECT_PERSONAS)
def test_a_project_token_reads_its_project_only(ks_client, cloud, seeded, user, project):
    token = cloud.token(user, project)
    alpha = cloud.projects["alpha"]
    assert _ids(_get(ks_client, f"/v3/{alpha}/messages", token)) == {seeded["alpha"]}
    assert _ids(_get(ks_client, "/v3/messages", token)) == {seeded["alpha"]}
    assert _get(ks_client, f"/v3/{alpha}/messages/{seeded['alpha']}", token).status_code == 200
    for other in ("beta", "service"):
        shown = _get(ks_client, f"/v3/{alpha}/messages/{seeded[other]}", token)
        assert shown.status_code == 404, shown.text
        deleted = ks_client.delete(f"/v3/{alpha}/messages/{seeded[other]}",
                                   headers={"X-Auth-Token": token, **V})
        assert deleted.status_code == 404
    # The other project's URL: Cinder's 400, nothing listed.
    beta = _get(ks_client, f"/v3/{cloud.projects['beta']}/messages", token)
    assert beta.status_code == 400 and seeded["beta"] not in beta.text


def test_reader_cannot_delete_member_can(ks_client, cloud, seeded):
    alpha = cloud.projects["alpha"]
    path = f"/v3/{alpha}/messages/{seeded['alpha']}"
    refused = ks_client.delete(path, headers={"X-Auth-Token": cloud.token("reader", "alpha"), **V})
    assert refused.status_code == 403
    assert refused.json() == {"forbidden": {
        "code": 403, "message": "Policy doesn't allow message:delete to be performed."}}
    member = {"X-Auth-Token": cloud.token("member", "alpha"), **V}
    assert ks_client.delete(path, headers=member).status_code == 204
    assert ks_client.get(path, headers=member).status_code == 404


def test_a_role_no_rule_knows_reads_nothing(ks_client, cloud, seeded):
    token = cloud.token("norole", "alpha")
    alpha = cloud.projects["alpha"]
    for path in (f"/v3/{alpha}/messages", f"/v3/{alpha}/messages/{seeded['alpha']}"):
        response = _get(ks_client, path, token)
        assert response.status_code == 403 and seeded["alpha"] not in response.text


def test_system_reader_is_refused_as_by_cinder(ks_client, cloud, seeded):
    token = cloud.token("system_reader", system=True)
    for path in ("/v3/messages", f"/v3/messages/{seeded['alpha']}",
                 f"/v3/messages/{seeded['service']}"):
        response = _get(ks_client, path, token)
        assert response.status_code == 403, (path, response.text)
        assert all(seeded[name] not in response.text for name in seeded)


def test_system_admin_reads_every_project(ks_client, cloud, seeded):
    token = cloud.token("system_admin", system=True)
    assert _ids(_get(ks_client, "/v3/messages", token)) == set(seeded.values())
    assert _get(ks_client, f"/v3/messages/{seeded['beta']}", token).status_code == 200
    deleted = ks_client.delete(f"/v3/messages/{seeded['beta']}",
                               headers={"X-Auth-Token": token, **V})
    assert deleted.status_code == 204


def test_identity_headers_the_caller_sends_are_ignored(ks_client, cloud, seeded):
    token = cloud.token("reader", "alpha")
    forged = {"X-Roles": "admin", "X-Role": "admin", "X-Project-Id": cloud.projects["beta"],
              "X-Tenant-Id": cloud.projects["beta"], "X-User-Id": cloud.users["system_admin"],
              "OpenStack-System-Scope": "all", "X-Identity-Status": "Confirmed",
              "X-Service-Roles": "service,admin", "X-Is-Admin-Project": "True"}
    assert _ids(_get(ks_client, "/v3/messages", token, **forged)) == {seeded["alpha"]}
    assert _get(ks_client, f"/v3/messages/{seeded['beta']}", token, **forged).status_code == 404
    deleted = ks_client.delete(f"/v3/messages/{seeded['alpha']}",
                               headers={"X-Auth-Token": token, **V, **forged})
    assert deleted.status_code == 403
    # Without any token, the same headers get nothing at all.
    no_token = ks_client.get("/v3/messages", headers={**V, **forged})
    assert no_token.status_code == 401 and seeded["alpha"] not in no_token.text


def _tampered(token: str) -> str:
    middle = len(token) // 2
    return token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1:]


BAD_TOKENS = {
    "missing": None,
    "garbage": "not-a-token",
    "noauth style": "admin:admin",
    "oversized": "g" * 20000,
    "control characters": "abc\tdef",
}


@pytest.mark.parametrize("name", list(BAD_TOKENS))
def test_bad_tokens_get_keystone_401(ks_client, seeded, name):
    token = BAD_TOKENS[name]
    headers = dict(V, **({"X-Auth-Token": token} if token is not None else {}))
    response = ks_client.get("/v3/messages", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == 401
    assert response.headers["www-authenticate"].startswith("Keystone uri=")
    assert response.headers["x-openstack-request-id"].startswith("req-")
    assert all(seeded[n] not in response.text for n in seeded)


def test_a_tampered_token_is_refused(ks_client, cloud, seeded):
    token = cloud.token("system_admin", system=True)
    response = _get(ks_client, "/v3/messages", _tampered(token))
    assert response.status_code == 401 and seeded["alpha"] not in response.text


def test_a_revoked_token_stops_at_once(ks_client, cloud, seeded):
    token = cloud.token("member", "alpha")
    assert _ids(_get(ks_client, "/v3/messages", token)) == {seeded["alpha"]}
    cloud.revoke(token)
    assert _get(ks_client, "/v3/messages", token).status_code == 401


def test_a_token_restricted_to_another_service_is_refused(ks_client, cloud, seeded):
    """An application credential whose access rules name only compute: not our audience."""
    user = cloud.admin.identity.find_user("member")
    conn = cloud.admin.connect_as(username="member", password="a-user-password",
                                  project_name="alpha", user_domain_id="default",
                                  project_domain_id="default")
    credential = conn.identity.create_application_credential(
        user.id, "compute-only", access_rules=[
            {"service": "compute", "method": "GET", "path": "/v2.1/servers"}])
    token = ks_session.Session(auth=v3.ApplicationCredential(
        auth_url=cloud.auth_url, application_credential_id=credential.id,
        application_credential_secret=credential.secret)).get_token()
    response = _get(ks_client, "/v3/messages", token)
    assert response.status_code == 401 and seeded["alpha"] not in response.text


def test_an_expired_token_is_refused(ks_client, cloud, seeded):
    """Keystone cuts a token at its application credential's expiry: a real expired token."""
    conn = cloud.admin.connect_as(username="member", password="a-user-password",
                                  project_name="alpha", user_domain_id="default",
                                  project_domain_id="default")
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=4)
    credential = conn.identity.create_application_credential(
        cloud.users["member"], f"short-{uuid.uuid4().hex[:8]}",
        expires_at=expires.strftime("%Y-%m-%dT%H:%M:%S"))
    token = ks_session.Session(auth=v3.ApplicationCredential(
        auth_url=cloud.auth_url, application_credential_id=credential.id,
        application_credential_secret=credential.secret)).get_token()
    assert _ids(_get(ks_client, "/v3/messages", token)) == {seeded["alpha"]}
    deadline = time.monotonic() + 30
    while dt.datetime.now(dt.UTC) < expires + dt.timedelta(seconds=1):
        assert time.monotonic() < deadline
        time.sleep(0.2)  # waiting for the clock itself, not for a process
    response = _get(ks_client, "/v3/messages", token)
    assert response.status_code == 401 and seeded["alpha"] not in response.text


def test_no_token_reaches_the_log(ks_client, cloud, seeded, caplog):
    caplog.set_level(logging.DEBUG)
    token = cloud.token("member", "alpha")
    assert _get(ks_client, "/v3/messages", token).status_code == 200
    cloud.revoke(token)
    assert _get(ks_client, "/v3/messages", token).status_code == 401
    assert _get(ks_client, "/v3/messages", _tampered(token)).status_code == 401
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert token[:40] not in logged and _tampered(token)[:40] not in logged
