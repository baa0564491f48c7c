"""Server-side viewer sessions: the cookie holds only a random id, the store the rest.

What a session holds (the Keystone tokens, the names a page shows) is a row
of the store (store/sessions.py), so any worker of any node serves any
request of a signed-in browser, with no affinity in the balancer, and a sign-out on one
node ends the session everywhere: a copied cookie stops working at once, and
an open live stream ends at its next poll, wherever it runs. The id changes
whenever the signed-in token does (no session fixation).

The row is found by a hash of the cookie's id and its data is sealed (Fernet)
with a key derived from that id: a copy of the table (a backup, a replica, a
query) holds no usable token and names no cookie. Every browser gets an id,
but a visitor who is not signed in has no row: the sign-in form's token is
derived from the id (viewer/csrf.py), so an anonymous visitor costs the store
nothing. Sessions expire ``max_age`` seconds after their last change; the
reaper deletes expired rows.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import secrets
from collections.abc import Awaitable, Callable
from http.cookies import SimpleCookie

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from usermessages.store import sessions as store_sessions
from usermessages.store.engine import UNAVAILABLE, is_unavailable
from usermessages.store.messages import utcnow
from usermessages.viewer.csrf import SESSION_ID

# Where a request finds its LiveSession (``request.scope[LIVE]``).
LIVE = "usermessages.session.live"


def _key(sid: str) -> str:
    """The row's key: the id itself never reaches the store."""
    return hashlib.sha256(b"usermessages viewer session\0" + sid.encode()).hexdigest()


def _seal(sid: str) -> Fernet:
    """The session's own cipher, from its id (a different derivation from the key's)."""
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                   info=b"usermessages viewer session seal").derive(sid.encode())
    return Fernet(base64.urlsafe_b64encode(derived))


class SessionStore:
    """Session data by the cookie's id, in the store; each expires ``max_age`` seconds
    after its last change. Every method blocks (the store)."""

    def __init__(self, engine: Engine, max_age: int) -> None:
        self.engine = engine
        self.max_age = max_age

    def load(self, sid: str) -> dict | None:
        with self.engine.connect() as conn:
            sealed = store_sessions.load(conn, _key(sid), utcnow())
        if sealed is None:
            return None
        try:
            return json.loads(_seal(sid).decrypt(sealed.encode()))
        except InvalidToken:
            return None  # not sealed with this id: nothing a browser may read

    def create(self, sid: str, data: dict) -> None:
        now = utcnow()
        with self.engine.begin() as conn:
            store_sessions.create(conn, _key(sid), self._sealed(sid, data),
                                  now + dt.timedelta(seconds=self.max_age))

    def update(self, sid: str, data: dict) -> None:
        """Save ``data`` under ``sid`` only while that session is stored: one dropped
        meanwhile (signed out, switched in another tab) must not come back."""
        now = utcnow()
        with self.engine.begin() as conn:
            store_sessions.update_live(conn, _key(sid), self._sealed(sid, data), now,
                                       now + dt.timedelta(seconds=self.max_age))

    def drop(self, sid: str) -> bool:
        """Forget a session; whether it was still stored."""
        with self.engine.begin() as conn:
            return store_sessions.drop(conn, _key(sid))

    def __len__(self) -> int:
        """Sessions live now, every browser's."""
        with self.engine.connect() as conn:
            return store_sessions.live(conn, utcnow())

    @staticmethod
    def _sealed(sid: str, data: dict) -> str:
        return _seal(sid).encrypt(json.dumps(data).encode()).decode()


class LiveSession:
    """The stored entry behind a request's cookie, read again while the request runs.

    ``request.session`` is a copy taken when the request began; a long request
    (the live stream) asks this instead, so a sign-out elsewhere reaches it.
    """

    def __init__(self, store: SessionStore, sid: str | None) -> None:
        self._store = store
        self._sid = sid

    def current(self) -> dict | None:
        """Blocking: the session as stored now; None once it was signed out, dropped or
        expired, on whichever node."""
        return self._store.load(self._sid) if self._sid else None

    def end(self) -> None:
        """Blocking: drop the session (its token was refused): the cookie signs nobody in
        any more, on any node."""
        if self._sid:
            self._store.drop(self._sid)


Unavailable = Callable[[Request, Exception], Awaitable[Response]]


class ServerSessionMiddleware:
    """Provides ``request.session`` from the store, keyed by a random cookie, and the
    session's id (``scope[SESSION_ID]``) the form tokens derive from.

    ``unavailable`` answers a request whose session cannot be read because the store
    does not answer (the viewer's "temporarily unavailable" page).
    """

    def __init__(self, app: ASGIApp, store: SessionStore, *, cookie: str, secure: bool,
                 unavailable: Unavailable, path: str = "/viewer") -> None:
        self.app = app
        self.store = store
        self.cookie = cookie
        self.secure = secure
        self.unavailable = unavailable
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        sid = HTTPConnection(scope).cookies.get(self.cookie)
        try:
            loaded = await run_in_threadpool(self.store.load, sid) if sid else None
        except UNAVAILABLE as exc:
            if not is_unavailable(exc):
                raise
            scope["session"], scope[SESSION_ID] = {}, sid or ""
            response = await self.unavailable(Request(scope, receive), exc)
            await response(scope, receive, send)
            return
        # A browser without a cookie gets an id now, stored nowhere until it signs in.
        anonymous = None if sid else secrets.token_urlsafe(32)
        scope["session"] = dict(loaded or {})
        scope[SESSION_ID] = sid or anonymous
        scope[LIVE] = LiveSession(self.store, sid if loaded is not None else None)
        before = dict(scope["session"])

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                new_sid = await run_in_threadpool(self._settle, sid, loaded, before,
                                                  scope["session"])
                if new_sid or anonymous:
                    MutableHeaders(scope=message).append(
                        "Set-Cookie", self._cookie(new_sid or anonymous or ""))
            await send(message)

        await self.app(scope, receive, send_with_cookie)

    def _settle(self, sid: str | None, loaded: dict | None, before: dict,
                after: dict) -> str | None:
        """Blocking: save or drop the session; the new id to set, if any.

        Ending a session drops its row and leaves the cookie: its id now names no
        session (a sign-in makes a new one). A session already gone was ended
        elsewhere (a switch in another tab, a sign-out on another node): it must
        neither come back nor disturb the browser's newer cookie.
        """
        if not after:
            if sid and loaded is not None:
                self.store.drop(sid)
            return None
        if sid and loaded is not None and before.get("token") == after.get("token"):
            if before != after:
                self.store.update(sid, after)
            return None
        # A new session, or another token in it: a new id, the old one dropped.
        if sid and loaded is not None:
            self.store.drop(sid)
        new_sid = secrets.token_urlsafe(32)
        self.store.create(new_sid, after)
        return new_sid

    def _cookie(self, value: str) -> str:
        cookie: SimpleCookie = SimpleCookie()
        cookie[self.cookie] = value
        morsel = cookie[self.cookie]
        morsel["path"] = self.path
        morsel["max-age"] = self.store.max_age
        morsel["httponly"] = True
        morsel["samesite"] = "strict"
        if self.secure:
            morsel["secure"] = True
        return morsel.OutputString()
