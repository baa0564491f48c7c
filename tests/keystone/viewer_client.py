"""Driving the keystone viewer over HTTP (TestClient or httpx), as a browser's forms do,
and reading what its server-side sessions hold (the tokens, which a browser never sees)."""

from __future__ import annotations

import re
from typing import Any

from tests.keystone.cloud import PASSWORD
from usermessages.viewer.sessions import ServerSessionMiddleware, SessionStore

API = {"OpenStack-API-Version": "volume 3.5"}
COOKIE = "usermessages_viewer"


def csrf(page: str) -> str:
    """The form token a page carries."""
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, page
    return found.group(1)


def sign_in(client: Any, user: str, project: str = "", password: str = PASSWORD, *,
            system: bool = False) -> Any:
    """Post the sign-in form: to ``project`` (by name), or with ``system`` to the system."""
    form = client.get("/viewer/login")
    assert form.status_code == 200
    return client.post("/viewer/login", data={
        "user": user, "password": password, "domain": "Default", "project": project,
        "scope": "system" if system else "project", "csrf": csrf(form.text)},
        follow_redirects=False)


def session_store(app: Any) -> SessionStore:
    """The viewer's server-side session store in the assembled app."""
    viewer = next(r.app for r in app.routes if getattr(r, "path", "") == "/viewer")
    stack = viewer.middleware_stack or viewer.build_middleware_stack()
    while not isinstance(stack, ServerSessionMiddleware):
        stack = stack.app
    return stack.store


def stored(client: Any, store: SessionStore | None = None) -> dict | None:
    """What the session behind ``client``'s cookie holds now (None: none is stored). The
    rows are sealed with the cookie's id: only its holder reads one. ``store``: the
    app's (a TestClient's) unless given."""
    store = store or session_store(client.app)
    sid = client.cookies.get(COOKIE)
    return store.load(sid) if sid else None


def api_status(client: Any, token: str) -> int:
    """What the API answers a token (its list): 200 while valid, 401 once revoked."""
    return client.get("/v3/messages", headers={"X-Auth-Token": token, **API}).status_code
