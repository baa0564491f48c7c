"""The viewer's sign-in refuses what the API would refuse, and says why."""

from __future__ import annotations

import re


def _login(client, **form):
    """Post the sign-in form as a browser would: with the token of the form it was shown."""
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/viewer/login").text)
    assert csrf, "the sign-in form carries a CSRF token"
    return client.post("/viewer/login", data={**form, "csrf": csrf.group(1)},
                       follow_redirects=False)


def test_a_project_the_api_would_refuse_is_refused_with_the_reason(client):
    response = _login(client, user="alice", project="demo")
    assert response.status_code == 400
    assert "a project id must match [0-9a-f\\-]+" in response.text
    assert "&#39;demo&#39; does not" in response.text
    # The API gives the same reason for the same project.
    api = client.get("/v3/demo/messages", headers={
        "X-Auth-Token": "alice:demo", "OpenStack-API-Version": "volume 3.5"})
    assert api.status_code == 404
    assert "A project id must match [0-9a-f\\-]+" in api.json()["itemNotFound"]["message"]


def test_a_valid_project_signs_in(client):
    response = _login(client, user="alice", project="aaaa1111")
    assert response.status_code == 303
