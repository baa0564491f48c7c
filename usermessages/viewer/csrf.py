"""The viewer's form tokens (CSRF): derived from the session, never stored.

A form's token is an HMAC-SHA256 of the session's id under ``[viewer]
secret_key``. Any worker of any node holding the same key checks it, with
nothing kept per visitor (a browser that only opened the sign-in form costs
no row in the store), and it changes whenever the session's id does: at
sign-in, and at each switch of project or system scope. Every form of the
viewer, the sign-in's included, is checked here and only here.

The session's id: in keystone mode the random id of the session cookie (set
by viewer/sessions.py in ``scope[SESSION_ID]``); in noauth mode a random id
kept in the signed cookie's session, made when a form first needs it.
Cross-site posts are also refused earlier, by their Sec-Fetch-Site or Origin
(viewer/origin.py).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from starlette.requests import Request

from usermessages.errors import BadRequest

# Where the server-side session layer puts the session's id (keystone mode).
SESSION_ID = "usermessages.session.id"
# Where a signed-cookie session keeps its id (noauth mode).
_ID_IN_SESSION = "id"
EXPIRED = "The form expired; reload the page and try again."


def _session_id(request: Request) -> str:
    sid = request.scope.get(SESSION_ID)
    if sid:
        return sid
    session = request.session
    if not session.get(_ID_IN_SESSION):
        session[_ID_IN_SESSION] = secrets.token_urlsafe(32)
    return session[_ID_IN_SESSION]


def token(request: Request) -> str:
    """The token every form of this session's pages carries."""
    key: bytes = request.app.state.secret_key
    return hmac.new(key, b"csrf\0" + _session_id(request).encode(), hashlib.sha256).hexdigest()


def valid(request: Request, submitted: str) -> bool:
    """Whether a posted form carried this session's token."""
    return bool(submitted) and secrets.compare_digest(submitted.encode(), token(request).encode())


def check(request: Request, submitted: str) -> None:
    """Refuse a form that did not carry this session's token (400, the form expired)."""
    if not valid(request, submitted):
        raise BadRequest(EXPIRED)
