"""The viewer's webhooks page: create (secret shown once), list, delete; CSRF; isolation."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.api.conftest import headers
from tests.viewer_session import sign_in

PUBLIC = "http://93.184.215.14/hook"


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found
    return found.group(1)


def test_create_list_delete_through_the_page(client: TestClient) -> None:
    sign_in(client, "u", "a1a1")
    page = client.get("/viewer/webhooks")
    assert page.status_code == 200 and "No webhooks yet." in page.text
    csrf = _csrf(page.text)
    made = client.post("/viewer/webhooks", data={"url": PUBLIC, "message_level": "ERROR",
                                                 "csrf": csrf})
    assert made.status_code == 201
    secret = re.search(r'id="webhook-secret">(whsec_[^<]+)<', made.text)
    assert secret, made.text
    # Shown once: the list page (and the API) never show it again.
    listed = client.get("/viewer/webhooks")
    assert PUBLIC in listed.text and secret.group(1) not in listed.text
    api = client.get("/v3/a1a1/messages-ext/webhooks", headers=headers("u", "a1a1"))
    [webhook] = api.json()["webhooks"]
    assert webhook["message_level"] == "ERROR"

    # Refusals: the SSRF guard and a missing CSRF token, nothing created.
    refused = client.post("/viewer/webhooks", data={"url": "http://127.0.0.1/", "csrf": csrf})
    assert refused.status_code == 400 and "loopback" in refused.text
    assert client.post("/viewer/webhooks", data={"url": PUBLIC}).status_code == 400
    assert client.post(f"/viewer/webhooks/{webhook['id']}/delete", data={}).status_code == 400

    # Another project's viewer sees none of it and cannot delete it.
    with TestClient(client.app) as other:
        sign_in(other, "v", "b2b2")
        page = other.get("/viewer/webhooks")
        assert PUBLIC not in page.text
        gone = other.post(f"/viewer/webhooks/{webhook['id']}/delete",
                          data={"csrf": _csrf(page.text)})
        assert gone.status_code == 404

    deleted = client.post(f"/viewer/webhooks/{webhook['id']}/delete", data={"csrf": csrf},
                          follow_redirects=False)
    assert deleted.status_code == 303
    assert "No webhooks yet." in client.get("/viewer/webhooks").text


def test_signed_out_is_sent_to_the_sign_in(client: TestClient) -> None:
    answer = client.get("/viewer/webhooks", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/viewer/login"
