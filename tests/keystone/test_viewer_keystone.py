"""The viewer in keystone mode: Keystone sign-in, the token kept server-side, sign-out revokes."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.api.conftest import row
from tests.keystone.cloud import PASSWORD, Cloud
from tests.keystone.viewer_client import api_status, csrf, session_store, sign_in, stored
from usermessages.store import writer


@pytest.fixture
def seeded(cloud: Cloud, engine: Engine) -> dict[str, str]:
    rows = {"alpha": row(cloud.projects["alpha"], resource_uuid="vol-alpha-1"),
            "beta": row(cloud.projects["beta"], resource_uuid="vol-beta-1")}
    with engine.begin() as conn:
        writer.insert(conn, list(rows.values()))
    return {name: r["id"] for name, r in rows.items()}


def test_sign_in_keeps_the_token_server_side_and_sign_out_revokes_it(ks_client, cloud, seeded):
    signed = sign_in(ks_client, "member", "alpha")
    assert signed.status_code == 303 and signed.headers["location"] == "/viewer/messages"
    cookie = ks_client.cookies["usermessages_viewer"]
    # A random id only: no token, no signed payload to decode.
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", cookie)
    set_cookie = signed.headers["set-cookie"].lower()
    assert "httponly" in set_cookie and "samesite=strict" in set_cookie
    assert "secure" not in set_cookie
    page = ks_client.get("/viewer/messages")
    assert page.status_code == 200
    assert "vol-alpha-1" in page.text and "vol-beta-1" not in page.text
    assert "member · alpha" in page.text

    # The same cookie in another browser works until sign-out...
    copy = TestClient(ks_client.app, cookies={"usermessages_viewer": cookie})
    assert copy.get("/viewer/messages", follow_redirects=False).status_code == 200
    out = ks_client.post("/viewer/logout", data={"csrf": csrf(page.text)},
                         follow_redirects=False)
    assert out.status_code == 303
    # ...and stops at once after it.
    again = copy.get("/viewer/messages", follow_redirects=False)
    assert again.status_code == 303 and again.headers["location"] == "/viewer/login"


def test_sign_out_revokes_the_token_in_keystone(ks_client, cloud, seeded):
    sign_in(ks_client, "member", "alpha")
    token = stored(ks_client)["token"]
    api = {"X-Auth-Token": token, "OpenStack-API-Version": "volume 3.5"}
    assert ks_client.get("/v3/messages", headers=api).status_code == 200
    page = ks_client.get("/viewer/messages")
    ks_client.post("/viewer/logout", data={"csrf": csrf(page.text)})
    assert ks_client.get("/v3/messages", headers=api).status_code == 401


def test_a_token_revoked_elsewhere_signs_the_viewer_out(ks_client, cloud, seeded):
    sign_in(ks_client, "reader", "alpha")
    assert ks_client.get("/viewer/messages", follow_redirects=False).status_code == 200
    token = stored(ks_client)["token"]
    cloud.revoke(token)
    page = ks_client.get("/viewer/messages", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/viewer/login"
    assert stored(ks_client) is None and len(session_store(ks_client.app)) == 0


def test_wrong_password_signs_nobody_in(ks_client, cloud, seeded):
    refused = sign_in(ks_client, "member", "alpha", password="wrong")
    assert refused.status_code == 401
    assert "Sign-in failed" in refused.text and "vol-alpha-1" not in refused.text
    page = ks_client.get("/viewer/messages", follow_redirects=False)
    assert page.status_code == 303


def test_login_needs_the_form_token_and_the_same_origin(ks_client, cloud, seeded):
    form = {"user": "member", "password": PASSWORD, "domain": "Default", "project": "alpha"}
    assert ks_client.post("/viewer/login", data=form).status_code == 400
    ks_client.get("/viewer/login")
    token = csrf(ks_client.get("/viewer/login").text)
    for headers in ({"Sec-Fetch-Site": "cross-site"}, {"Origin": "https://evil.example"},
                    {"Sec-Fetch-Site": "same-site"}):
        refused = ks_client.post("/viewer/login", data={**form, "csrf": token}, headers=headers)
        assert refused.status_code == 403, headers
    assert ks_client.get("/viewer/messages", follow_redirects=False).status_code == 303
    same = ks_client.post("/viewer/login", data={**form, "csrf": token},
                          headers={"Origin": "http://testserver",
                                   "Sec-Fetch-Site": "same-origin"}, follow_redirects=False)
    assert same.status_code == 303


def test_project_switch(ks_client, cloud, seeded):
    sign_in(ks_client, "multi", "alpha")
    page = ks_client.get("/viewer/messages")
    assert "vol-alpha-1" in page.text and "vol-beta-1" not in page.text
    assert 'name="project_id"' in page.text
    old = stored(ks_client)["token"]
    switched = ks_client.post("/viewer/project", data={
        "project_id": cloud.projects["beta"], "csrf": csrf(page.text)}, follow_redirects=False)
    assert switched.status_code == 303
    page = ks_client.get("/viewer/messages")
    assert "vol-beta-1" in page.text and "vol-alpha-1" not in page.text
    # The switch revokes the token it replaced; sign-out revokes the one in use.
    new = stored(ks_client)["token"]
    assert api_status(ks_client, old) == 401
    assert api_status(ks_client, new) == 200
    ks_client.post("/viewer/logout", data={"csrf": csrf(page.text)})
    assert api_status(ks_client, new) == 401
    sign_in(ks_client, "multi", "alpha")
    page = ks_client.get("/viewer/messages")
    # A project the user has no role on is not offered, and refused if forged.
    forged = ks_client.post("/viewer/project", data={
        "project_id": cloud.projects["service"], "csrf": csrf(page.text)})
    assert forged.status_code == 400


def test_security_headers_and_secure_cookie(make_client, cloud, seeded):
    client = make_client(viewer_secure_cookie=True)
    # A Secure cookie only comes back over https.
    https = TestClient(client.app, base_url="https://testserver")
    signed = sign_in(https, "reader", "alpha")
    assert "secure" in signed.headers["set-cookie"].lower()
    page = https.get("/viewer/messages")
    assert page.status_code == 200
    headers = page.headers
    csp = headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"
    assert headers["cache-control"] == "no-store"
    api = client.get("/v3/messages", headers={"X-Auth-Token": cloud.token("reader", "alpha"),
                                              "OpenStack-API-Version": "volume 3.5"})
    assert api.headers["cache-control"] == "no-store"
    assert api.headers["x-content-type-options"] == "nosniff"
