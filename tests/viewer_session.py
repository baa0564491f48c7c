"""Signing in to the noauth viewer from a test, as a browser does: with the form's CSRF token."""

from __future__ import annotations

import re
from typing import Any


def sign_in(client: Any, user: str, project: str) -> Any:
    """Post the sign-in form (httpx or TestClient) with the token of the form it was shown."""
    form = client.get("/viewer/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert csrf, "the sign-in form carries a CSRF token"
    return client.post("/viewer/login", data={"user": user, "project": project,
                                              "csrf": csrf.group(1)},
                       follow_redirects=False)
