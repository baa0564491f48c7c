"""The viewer's sign-in refuses what the API would refuse, and says why."""

from __future__ import annotations

import re

from tests.viewer_session import sign_in


def test_a_project_the_api_would_refuse_is_refused_with_the_reason(client):
    response = sign_in(client, "alice", "demo")
    assert response.status_code == 400
    assert "a project id must match [0-9a-f\\-]+" in response.text
    assert "&#39;demo&#39; does not" in response.text
    # The API gives the same reason for the same project.
    api = client.get("/v3/demo/messages", headers={
        "X-Auth-Token": "alice:demo", "OpenStack-API-Version": "volume 3.5"})
    assert api.status_code == 404
    assert "A project id must match [0-9a-f\\-]+" in api.json()["itemNotFound"]["message"]


def test_a_valid_project_signs_in(client):
    response = sign_in(client, "alice", "aaaa1111")
    assert response.status_code == 303


def test_the_system_scope_needs_keystone(client):
    form = client.get("/viewer/login")
    assert 'name="scope"' not in form.text  # noauth offers no choice: its admin sees all
    token = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
    refused = client.post("/viewer/login", data={"user": "admin", "project": "aaaa1111",
                                                 "scope": "system", "csrf": token})
    assert refused.status_code == 400
    assert "The system scope needs Keystone" in refused.text
    assert client.get("/viewer/messages", follow_redirects=False).status_code == 303
