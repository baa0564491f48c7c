"""The viewer's session layer and the headers of every page, in noauth mode; /metrics placement."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.harness import servers
from usermessages.api.metrics import start_listener
from usermessages.config import Settings
from usermessages.service import create_app

V = {"OpenStack-API-Version": "volume 3.5"}


@pytest.fixture
def db_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path}/usermessages.sqlite"


@pytest.fixture
def make(settings: Settings, engine: Engine) -> Iterator:
    opened: list[TestClient] = []

    def build(**changes: object) -> TestClient:
        client = TestClient(create_app(settings.replace(**changes), engine=engine))
        opened.append(client.__enter__())
        return client

    yield build
    for client in opened:
        client.__exit__(None, None, None)


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, page
    return found.group(1)


def test_noauth_login_says_anyone_can_sign_in_as_anyone(client):
    page = client.get("/viewer/login")
    assert "anyone who can open this page can sign in as anyone" in page.text
    assert 'name="password"' not in page.text


def test_login_form_is_csrf_protected_and_same_origin(client):
    form = {"user": "alice", "project": "aaaa"}
    assert client.post("/viewer/login", data=form).status_code == 400
    csrf = _csrf(client.get("/viewer/login").text)
    cross = client.post("/viewer/login", data={**form, "csrf": csrf},
                        headers={"Sec-Fetch-Site": "cross-site"})
    assert cross.status_code == 403
    evil = client.post("/viewer/login", data={**form, "csrf": csrf},
                       headers={"Origin": "http://evil.example"})
    assert evil.status_code == 403
    assert client.get("/viewer/messages", follow_redirects=False).status_code == 303
    ok = client.post("/viewer/login", data={**form, "csrf": csrf},
                     headers={"Origin": "http://testserver"}, follow_redirects=False)
    assert ok.status_code == 303
    assert client.get("/viewer/messages", follow_redirects=False).status_code == 200


def test_security_headers_on_api_and_viewer(client):
    for path, private in (("/viewer/login", True), ("/v3/aaaa/messages", True), ("/", False),
                          ("/viewer/static/viewer.js", False)):
        response = client.get(path, headers={"X-Auth-Token": "alice:aaaa", **V})
        headers = response.headers
        assert "frame-ancestors 'none'" in headers["content-security-policy"], path
        assert "unsafe-inline" not in headers["content-security-policy"]
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "same-origin"
        assert (headers.get("cache-control") == "no-store") is private, path


def test_secure_cookie_option(make):
    plain = make().get("/viewer/login")
    assert "secure" not in plain.headers["set-cookie"].lower()
    secure = make(viewer_secure_cookie=True).get("/viewer/login")
    assert "secure" in secure.headers["set-cookie"].lower()


def test_metrics_public_admin_or_off(make):
    assert make().get("/metrics").status_code == 200
    admin_only = make(metrics="admin")
    assert admin_only.get("/metrics").status_code == 401
    assert admin_only.get("/metrics", headers={"X-Auth-Token": "alice:aaaa"}).status_code == 403
    allowed = admin_only.get("/metrics", headers={"X-Auth-Token": "admin:admin"})
    assert allowed.status_code == 200 and "# HELP" in allowed.text
    assert make(metrics="off").get("/metrics").status_code == 404


def test_metrics_on_its_own_listener():
    port = servers.free_port()
    start_listener(Settings(metrics="off", metrics_port=port))
    deadline = time.monotonic() + 10
    while True:
        try:
            response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2)
            break
        except httpx.TransportError:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    assert response.status_code == 200 and "# HELP" in response.text
