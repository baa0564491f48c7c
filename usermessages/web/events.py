"""Server-sent events: the one loop behind every live stream (the API's and the viewer's).

What differs between the front ends is passed in as a ``Feed``: how to read
the rows after a cursor, how one row is shown, and whether the caller is
still signed in. Everything else is here, so both streams behave alike:

- **Resume:** each event's id is its row's seq (the stored order). A client
  reconnecting with ``Last-Event-ID`` (or the front end's query parameter)
  resumes right after it: no gap, no duplicate. A line ``id: N`` alone moves
  the client's cursor past rows its filters skipped.
- **Heartbeats:** a ``: heartbeat`` comment after HEARTBEAT_SECONDS without an
  event, so proxies keep the connection.
- **unavailable:** the store (or Keystone) does not answer: ``event:
  unavailable`` with the reason, at each failed poll; the stream stays open and
  the cursor does not move, so nothing is lost.
- **signedout:** the caller's session ended or its token was revoked or
  expired (re-checked every RECHECK_SECONDS): ``event: signedout``, then the
  stream ends.
- **Bounded:** each stream holds a slot of ``Limits.streams`` (per project and
  in total) until it ends; it ends after MAX_SECONDS (the client reconnects and
  is authenticated again) and at the next poll once the server shuts down.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from usermessages.errors import BadRequest, KeystoneUnavailable, LimitReached
from usermessages.store import deadline
from usermessages.store.engine import UNAVAILABLE
from usermessages.web.limits import LeasedResponse, Limits

POLL_SECONDS = 1.0
HEARTBEAT_SECONDS = 15.0
MAX_SECONDS = 300
# A stream re-validates its caller's token this often (a call to Keystone, or its
# cache); the viewer's session, in memory, is checked on every poll.
RECHECK_SECONDS = 3.0
RETRY_MILLISECONDS = 2000  # how soon EventSource reconnects after a stream ends
# A cursor is a seq: digits only (safe in a URL and a bookmark), at most 18 of
# them, so it always fits a BIGINT.
CURSOR = re.compile(r"[0-9]{1,18}")
MEDIA_TYPE = "text/event-stream"
HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
STORE_DOWN = "The database is not answering."
KEYSTONE_DOWN = "Keystone is not answering."
SIGNED_OUT = "Signed out."

Row = TypeVar("Row")


@dataclass(frozen=True)
class Event:
    """One message event: its seq (the SSE id) and its data (lines allowed)."""

    seq: int
    data: str


@dataclass(frozen=True)
class Feed(Generic[Row]):
    """What one stream reads and how it shows it; the loop knows nothing of rows.

    ``poll`` and ``render`` block (the store) and run in a worker thread, one
    poll and its rows' rendering together. ``signed_in`` blocks too; its
    argument asks it to re-validate the token (else only cheap checks); it
    raises KeystoneUnavailable when that cannot be said. None: nothing to check.
    """

    poll: Callable[[int], tuple[Sequence[Row], int]]
    render: Callable[[Row], Event]
    signed_in: Callable[[bool], bool] | None = None


def requested_cursor(request: Request, parameter: str) -> int | None:
    """The seq a stream resumes after: ``Last-Event-ID`` (a reconnecting EventSource)
    wins over the ``parameter`` of the query string. Anything but digits is a 400."""
    for name, value in (("Last-Event-ID", request.headers.get("last-event-id")),
                        (parameter, request.query_params.get(parameter))):
        if value is None or value == "":
            continue
        if not CURSOR.fullmatch(value):
            raise BadRequest(f"{name} must be a message sequence number (digits): the id "
                             f"of an event a stream sent.")
        return int(value)
    return None


def first_cursor(requested: int | None, newest: int) -> int:
    """Where a stream starts: after the requested seq, else after the newest stored.

    A requested seq past the newest (a store restored from a backup) would hide
    the next rows: the newest wins then.
    """
    return newest if requested is None else min(requested, newest)


async def stream(request: Request, limits: Limits, holder: str, feed: Feed[Row], cursor: int,
                 headers: Mapping[str, str] | None = None) -> Response:
    """The stream's response, holding one of ``holder``'s stream slots until it ends.

    Raises ServerBusy or ProjectOverLimit when no slot is free; everything that
    can refuse the request (authentication, filters, cursor) comes before.
    """
    # Taking a slot is a transaction in the store: off the event loop.
    lease = await run_in_threadpool(limits.streams.acquire, holder)
    return LeasedResponse(lease, _events(request, feed, cursor, limits),
                          media_type=MEDIA_TYPE, headers={**HEADERS, **(headers or {})})


def refusal(exc: LimitReached) -> Response:
    """A refused stream as a browser's EventSource can show it: one ``busy`` event with
    the reason, and a retry delay of Retry-After (an error status would only close it)."""
    body = f"retry: {exc.retry_after * 1000}\nevent: busy\n{_data(exc.message)}\n\n"
    return Response(body, media_type=MEDIA_TYPE, headers=HEADERS)


async def _events(request: Request, feed: Feed[Row], cursor: int,
                  limits: Limits) -> AsyncIterator[str]:
    yield f"retry: {RETRY_MILLISECONDS}\n\n"
    loop = asyncio.get_running_loop()
    started = quiet_since = loop.time()
    recheck_at = started + RECHECK_SECONDS
    shown = cursor  # the cursor the client holds
    while loop.time() - started < MAX_SECONDS and not limits.closing.is_set():
        if await request.is_disconnected():
            return
        now = loop.time()
        try:
            if feed.signed_in is not None:
                revalidate = now >= recheck_at
                if not await run_in_threadpool(feed.signed_in, revalidate):
                    yield f"event: signedout\n{_data(SIGNED_OUT)}\n\n"
                    return
                if revalidate:
                    recheck_at = now + RECHECK_SECONDS
            events, cursor = await run_in_threadpool(_next, feed, cursor)
        except KeystoneUnavailable:
            # No rows while Keystone cannot vouch for the caller (fail closed).
            yield f"event: unavailable\n{_data(KEYSTONE_DOWN)}\n\n"
            quiet_since = now
        except UNAVAILABLE:
            yield f"event: unavailable\n{_data(STORE_DOWN)}\n\n"
            quiet_since = now
        else:
            for event in events:
                yield f"id: {event.seq}\nevent: message\n{_data(event.data)}\n\n"
                shown = event.seq
            if cursor != shown:
                yield f"id: {cursor}\n\n"  # no data: moves Last-Event-ID, dispatches nothing
                shown = cursor
            if events:
                quiet_since = now
            elif now - quiet_since >= HEARTBEAT_SECONDS:
                yield ": heartbeat\n\n"  # a comment: keeps proxies from closing the stream
                quiet_since = now
        await asyncio.sleep(POLL_SECONDS)


def _next(feed: Feed[Row], cursor: int) -> tuple[list[Event], int]:
    """Blocking: one poll and its rows rendered, as one new piece of store work."""
    deadline.begin(deadline.budget.get())  # each poll gets the budget a request gets
    rows, cursor = feed.poll(cursor)
    return [feed.render(row) for row in rows], cursor


def _data(text: str) -> str:
    return "\n".join(f"data: {line}" for line in text.splitlines() or [""])
