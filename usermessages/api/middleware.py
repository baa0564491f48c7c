"""What every response carries, and what every request must be, before routing.

A pure ASGI middleware rather than Starlette's BaseHTTPMiddleware: it runs on
every request, and it must also stamp the headers on errors raised anywhere
below it, which it renders itself as Cinder faults.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from urllib.parse import unquote_to_bytes

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from usermessages import logs
from usermessages.context import new_request_id
from usermessages.errors import BadRequest, HTTPError
from usermessages.store import deadline
from usermessages.store.engine import is_unavailable
from usermessages.web.faults import INTERNAL_ERROR_TEXT, UNAVAILABLE_TEXT, fault_body
from usermessages.web.microversion import (
    HEADER,
    MIN_VERSION,
    APIVersion,
    VersionNotAcceptable,
    negotiate,
)

LOG = logging.getLogger(__name__)

MAX_QUERY_STRING = 8192


def is_versioned(path: str) -> bool:
    return path == "/v3" or path.startswith("/v3/")


def _check_query_string(raw: bytes) -> None:
    """Reject what Starlette would otherwise quietly mangle: non-UTF-8 and huge queries."""
    if len(raw) > MAX_QUERY_STRING:
        raise BadRequest(f"Invalid input received: query string longer than {MAX_QUERY_STRING}")
    for part in raw.split(b"&"):
        try:
            text = unquote_to_bytes(part.replace(b"+", b" ")).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadRequest("Invalid input received: query string is not valid UTF-8") from exc
        if "\x00" in text:
            # PostgreSQL refuses NUL in text: stop it here, not as a 500 later.
            raise BadRequest("Invalid input received: query string contains a NUL character")


class OpenStackMiddleware:
    """Request ids on every response and in every log line of the request (an inbound
    X-OpenStack-Request-Id is its global request id); microversion negotiation and echo
    under /v3; the store deadline of every request; 503 when the store does not
    answer; one access line per request, as OpenStack's WSGI servers log."""

    def __init__(self, app: ASGIApp, store_timeout: float | None = None) -> None:
        self.app = app
        self.store_timeout = store_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = new_request_id()
        started_at = time.monotonic()
        inbound = Headers(scope=scope).get("x-openstack-request-id")
        context = logs.begin(request_id, inbound)
        # Every connection this request checks out is bounded (store/deadline.py);
        # the sync routes run in threads that inherit this context.
        deadline.begin(self.store_timeout)
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        versioned = is_versioned(scope["path"])
        version: APIVersion | None = MIN_VERSION
        error: HTTPError | None = None
        try:
            _check_query_string(scope.get("query_string", b""))
        except HTTPError as exc:
            error = exc
        if versioned and error is None:
            try:
                version = negotiate(Headers(scope=scope).get(HEADER))
            except VersionNotAcceptable as exc:
                # As Cinder: a 406 echoes the version asked for ...
                error, version = exc, exc.requested
            except HTTPError as exc:
                # ... and a malformed header gets no version header and no Vary.
                error, version = exc, None
        state["api_version"] = version
        started = False
        status, length = 500, 0

        async def stamped_send(message: Message) -> None:
            nonlocal started, status, length
            if message["type"] == "http.response.body":
                length += len(message.get("body", b""))
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                headers = MutableHeaders(scope=message)
                headers["X-OpenStack-Request-Id"] = request_id
                if headers.get("content-type", "").startswith("application/json"):
                    headers["X-Compute-Request-Id"] = request_id
                if versioned and version is not None:
                    headers["OpenStack-API-Version"] = f"volume {version}"
                    headers["Vary"] = "OpenStack-API-Version"
            await send(message)

        try:
            if error is not None:
                await send_fault(stamped_send, error.status, error.message)
                return
            await self._call(scope, receive, stamped_send, request_id, lambda: started)
        finally:
            client = (scope.get("client") or ("-",))[0]
            line = scope["path"] + (f"?{scope['query_string'].decode('latin-1')}"
                                    if scope.get("query_string") else "")
            LOG.info('%s "%s %s" status: %s len: %s time: %.7f', client, scope["method"],
                     line[:1000], status, length, time.monotonic() - started_at)
            logs.end(context)

    async def _call(self, scope: Scope, receive: Receive, send: Send, request_id: str,
                    started: Callable[[], bool]) -> None:
        try:
            await self.app(scope, receive, send)
        except Exception as exc:
            if not is_unavailable(exc):
                await self._internal_error(exc, request_id, started(), send)
                return
            LOG.error("request %s: the store is unavailable: %s", request_id,
                      str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            if not started():
                await send_fault(send, 503, UNAVAILABLE_TEXT)

    @staticmethod
    async def _internal_error(exc: Exception, request_id: str, started: bool,
                              send: Send) -> None:
        # The cause goes to the log under the request id, never to the user.
        LOG.error("unhandled error in request %s", request_id, exc_info=exc)
        if not started:
            await send_fault(send, 500, INTERNAL_ERROR_TEXT)


async def send_fault(send: Send, status: int, message: str) -> None:
    body = fault_body(status, message)
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
    })
    await send({"type": "http.response.body", "body": body})
