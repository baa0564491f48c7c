"""Server-side viewer sessions: the cookie holds only a random id.

Whatever a session holds (a Keystone token, the form token) stays in this
process. Signing out drops the entry, so a copied cookie stops working at
once; the id changes whenever the signed-in token does (no session fixation).
Sessions live as long as the process: several API processes behind one
address need sticky routing for the viewer.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from http.cookies import SimpleCookie

from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_SESSIONS = 10000  # anonymous visitors get one too (the login form's token): bounded
# Where a request finds its LiveSession (``request.scope[LIVE]``).
LIVE = "usermessages.session.live"


class SessionStore:
    """Session data by id, each expiring ``max_age`` seconds after its last save."""

    def __init__(self, max_age: int, max_sessions: int = MAX_SESSIONS) -> None:
        self.max_age = max_age
        self.max_sessions = max_sessions
        self._data: OrderedDict[str, tuple[float, dict]] = OrderedDict()
        self._lock = threading.Lock()

    def load(self, sid: str) -> dict | None:
        with self._lock:
            entry = self._data.get(sid)
            if entry is None:
                return None
            if entry[0] < time.monotonic():
                del self._data[sid]
                return None
            return dict(entry[1])

    def save(self, sid: str, data: dict) -> None:
        with self._lock:
            self._data[sid] = (time.monotonic() + self.max_age, dict(data))
            self._data.move_to_end(sid)
            while len(self._data) > self.max_sessions:
                self._data.popitem(last=False)  # the least recently saved goes first

    def update(self, sid: str, data: dict) -> None:
        """Save ``data`` under ``sid`` only while that session is stored: one dropped
        meanwhile (signed out, switched in another tab) must not come back."""
        with self._lock:
            if sid in self._data:
                self._data[sid] = (time.monotonic() + self.max_age, dict(data))
                self._data.move_to_end(sid)

    def drop(self, sid: str) -> bool:
        """Forget a session; whether it was still stored."""
        with self._lock:
            return self._data.pop(sid, None) is not None

    def __len__(self) -> int:
        return len(self._data)


class LiveSession:
    """The stored entry behind a request's cookie, read again while the request runs.

    ``request.session`` is a copy taken when the request began; a long request
    (the live stream) asks this instead, so a sign-out elsewhere reaches it.
    """

    def __init__(self, store: SessionStore, sid: str | None) -> None:
        self._store = store
        self._sid = sid

    def current(self) -> dict | None:
        """The session as stored now; None once it was signed out, dropped or expired."""
        return self._store.load(self._sid) if self._sid else None

    def end(self) -> None:
        """Drop the session (its token was refused): the cookie signs nobody in any more."""
        if self._sid:
            self._store.drop(self._sid)


class ServerSessionMiddleware:
    """Provides ``request.session`` from the store, keyed by a random cookie."""

    def __init__(self, app: ASGIApp, store: SessionStore, *, cookie: str, secure: bool,
                 path: str = "/viewer") -> None:
        self.app = app
        self.store = store
        self.cookie = cookie
        self.secure = secure
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        sid = HTTPConnection(scope).cookies.get(self.cookie)
        loaded = self.store.load(sid) if sid else None
        scope["session"] = dict(loaded or {})
        scope[LIVE] = LiveSession(self.store, sid if loaded is not None else None)
        before = dict(scope["session"])

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                cookie = self._settle(sid, loaded, before, scope["session"])
                if cookie is not None:
                    MutableHeaders(scope=message).append("Set-Cookie", cookie)
            await send(message)

        await self.app(scope, receive, send_with_cookie)

    def _settle(self, sid: str | None, loaded: dict | None, before: dict,
                after: dict) -> str | None:
        """Save or drop the session; the Set-Cookie header to send, if any."""
        if not after:
            # Clear the cookie only when it named a session this request ends. A
            # session already gone was ended elsewhere: a switch in another tab may
            # have set its successor in the browser, which clearing would sign out.
            if sid and loaded is not None and self.store.drop(sid):
                return self._cookie("", 0)
            return None
        if sid and loaded is not None and before.get("token") == after.get("token"):
            if before != after:
                self.store.update(sid, after)
            return None
        # New session, or another token in it: a new id, the old one dropped.
        if sid:
            self.store.drop(sid)
        new_sid = secrets.token_urlsafe(32)
        self.store.save(new_sid, after)
        return self._cookie(new_sid, self.store.max_age)

    def _cookie(self, value: str, max_age: int) -> str:
        cookie: SimpleCookie = SimpleCookie()
        cookie[self.cookie] = value
        morsel = cookie[self.cookie]
        morsel["path"] = self.path
        morsel["max-age"] = max_age
        morsel["httponly"] = True
        morsel["samesite"] = "strict"
        if self.secure:
            morsel["secure"] = True
        return morsel.OutputString()
