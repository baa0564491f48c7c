"""``GET /v3[/{project_id}]/messages-ext/stream``: new messages as server-sent events.

Each event's ``id`` is the message's seq (the stored order) and its data the
message as GET /messages/{id} shows it; a client reconnecting with
``Last-Event-ID`` (or ``?last_event_id=``) resumes right after it, without a
gap or a duplicate. Filters and scope are the list's. A stream lasts at most
STREAM_MAX_SECONDS (the client reconnects, and so is authenticated again);
each process holds at most ``[api] max_streams`` open, beyond which it answers
503 with Retry-After.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from usermessages.api.messages import begin
from usermessages.errors import BadRequest
from usermessages.reader import Reader, Scope
from usermessages.store import deadline
from usermessages.store.engine import UNAVAILABLE
from usermessages.store.messages import ListQuery, StoredMessage
from usermessages.translations import content_language
from usermessages.web.faults import UNAVAILABLE_TEXT, fault_body
from usermessages.web.projections import MessageView

router = APIRouter()

POLL_SECONDS = 1.0
HEARTBEAT_SECONDS = 15.0
STREAM_MAX_SECONDS = 300
BATCH = 100
CURSOR = re.compile(r"[0-9]{1,18}")  # a seq: always fits a BIGINT
# The list's parameters that make no sense on a stream (it is in stored order, unpaged).
PAGING = ("limit", "marker", "offset", "sort", "sort_key", "sort_dir", "last_event_id")


class Streams:
    """How many streams this process holds open (the event loop is its only user)."""

    def __init__(self) -> None:
        self.open = 0


class _Counted(StreamingResponse):
    """A stream that gives its slot back however it ends, even if its body never started
    (a client gone before the first byte: the generator's own ``finally`` would not run)."""

    def __init__(self, streams: Streams, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._streams = streams

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._streams.open -= 1


def _streams(request: Request) -> Streams:
    state = request.app.state
    if not hasattr(state, "streams"):
        state.streams = Streams()
    return state.streams


def _cursor(request: Request) -> int | None:
    for name, value in (("Last-Event-ID", request.headers.get("last-event-id")),
                        ("last_event_id", request.query_params.get("last_event_id"))):
        if value is None or value == "":
            continue
        if not CURSOR.fullmatch(value):
            raise BadRequest(f"{name} must be the id of an event this stream sent (digits).")
        return int(value)
    return None


def _open(request: Request,
          project_id: str | None) -> tuple[Scope, ListQuery, MessageView, str, int]:
    """Blocking (Keystone, the store): scope, query, view, language and the first cursor."""
    call = begin(request, project_id)
    reader: Reader = request.app.state.reader
    params = {k: v for k, v in request.query_params.items() if k not in PAGING}
    query, _ = reader.parse(call.scope, {**params, "limit": str(BATCH)}, legacy=call.legacy,
                            max_limit=BATCH)
    requested = _cursor(request)
    newest = reader.newest(call.scope)
    # Without a cursor, from now on; one past the counter (a restored backup) from now too.
    return (call.scope, query, call.view, call.language,
            newest if requested is None else min(requested, newest))


def _poll(reader: Reader, scope: Scope, query: ListQuery,
          cursor: int) -> tuple[list[StoredMessage], int]:
    deadline.begin(deadline.budget.get())  # each poll is new store work, as a request is
    return reader.poll(scope, query, cursor)


async def stream(request: Request, project_id: str | None = None) -> Response:
    streams = _streams(request)
    limit = request.app.state.reader.settings.max_streams
    if streams.open >= limit:
        return Response(fault_body(503, f"{UNAVAILABLE_TEXT} (This server holds {limit} event "
                                        f"streams open, its limit.)"),
                        status_code=503, media_type="application/json",
                        headers={"Retry-After": "5"})
    streams.open += 1  # counted before the first await: no two requests pass one free slot
    try:
        scope, query, view, language, cursor = await run_in_threadpool(_open, request,
                                                                       project_id)
    except BaseException:
        streams.open -= 1
        raise
    reader: Reader = request.app.state.reader

    async def events():  # type: ignore[no-untyped-def]
        nonlocal cursor
        yield "retry: 2000\n\n"
        loop = asyncio.get_running_loop()
        started = quiet_since = loop.time()
        while loop.time() - started < STREAM_MAX_SECONDS:
            if await request.is_disconnected():
                return
            try:
                rows, cursor = await run_in_threadpool(_poll, reader, scope, query, cursor)
            except UNAVAILABLE:
                # The cursor has not moved: nothing is lost; say so and poll again.
                yield ": the database is not answering\n\n"
                await asyncio.sleep(POLL_SECONDS)
                continue
            for row in rows:
                data = json.dumps({"message": view.detail(row)}, separators=(",", ":"))
                yield f"id: {row.seq}\nevent: message\ndata: {data}\n\n"
            if rows:
                quiet_since = loop.time()
            elif loop.time() - quiet_since >= HEARTBEAT_SECONDS:
                yield ": heartbeat\n\n"  # a comment: keeps proxies from closing the stream
                quiet_since = loop.time()
            await asyncio.sleep(POLL_SECONDS)

    return _Counted(streams, events(), media_type="text/event-stream",
                    headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no",
                             # The texts are in the Accept-Language the list would use.
                             "Content-Language": content_language(language)})


async def _stream_any(request: Request) -> Response:
    return await stream(request)


# The project-less (admin) form first, as for /v3/messages.
router.add_api_route("/v3/messages-ext/stream", _stream_any, methods=["GET"],
                     summary="New messages as server-sent events", tags=["extensions"])
router.add_api_route("/v3/{project_id}/messages-ext/stream", stream, methods=["GET"],
                     summary="New messages as server-sent events", tags=["extensions"])
