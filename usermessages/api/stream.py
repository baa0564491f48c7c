"""``GET /v3[/{project_id}]/messages-ext/stream``: new messages as server-sent events.

Each event's data is the message as GET /messages/{id} shows it; filters and
scope are the list's. The loop, its slots, heartbeats, resume rule and events
(``unavailable``, ``signedout``) are the viewer's too: ``usermessages.web.events``.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from usermessages.api.messages import begin
from usermessages.reader import STREAM, Reader, Scope
from usermessages.store.messages import StoredMessage
from usermessages.translations import content_language
from usermessages.web import events
from usermessages.web.limits import Limits, holder
from usermessages.web.projections import MessageView

router = APIRouter()

BATCH = 100
# The list's parameters that make no sense on a stream (it is in stored order, unpaged).
PAGING = ("limit", "marker", "offset", "sort", "sort_key", "sort_dir", "last_event_id")


def _open(request: Request,
          project_id: str | None) -> tuple[Scope, events.Feed[StoredMessage], int, str]:
    """Blocking (Keystone, the store): the caller's scope, the feed, the first cursor and
    the language of its texts."""
    call = begin(request, project_id)
    reader: Reader = request.app.state.reader
    reader.authorize_list(call.scope, STREAM)
    params = {k: v for k, v in request.query_params.items() if k not in PAGING}
    query, _ = reader.parse(call.scope, {**params, "limit": str(BATCH)}, legacy=call.legacy,
                            max_limit=BATCH)
    cursor = events.first_cursor(events.requested_cursor(request, "last_event_id"),
                                 reader.newest(call.scope))
    feed = events.Feed(poll=lambda after: reader.poll(call.scope, query, after),
                       render=lambda row: _render(call.view, row),
                       signed_in=_token_check(request, reader, call.scope))
    return call.scope, feed, cursor, call.language


def _render(view: MessageView, row: StoredMessage) -> events.Event:
    return events.Event(row.seq, json.dumps({"message": view.detail(row)},
                                               separators=(",", ":")))


def _token_check(request: Request, reader: Reader,
                 scope: Scope) -> Callable[[bool], bool] | None:
    """Keystone: the stream's token, re-validated (revoked or expired: signed out).
    A noauth token names its caller for ever: nothing to check."""
    token = request.headers.get("x-auth-token")
    if reader.settings.auth_strategy != "keystone" or token is None:
        return None
    return lambda revalidate: not revalidate or reader.still_valid(token, scope.caller)


async def stream(request: Request, project_id: str | None = None) -> Response:
    scope, feed, cursor, language = await run_in_threadpool(_open, request, project_id)
    limits: Limits = request.app.state.limits
    # The texts are in the Accept-Language the list would use.
    return await events.stream(request, limits, holder(scope.caller.project_id), feed, cursor,
                               {"Content-Language": content_language(language)})


async def _stream_any(request: Request) -> Response:
    return await stream(request)


# The project-less (admin) form first, as for /v3/messages.
router.add_api_route("/v3/messages-ext/stream", _stream_any, methods=["GET"],
                     summary="New messages as server-sent events", tags=["extensions"])
router.add_api_route("/v3/{project_id}/messages-ext/stream", stream, methods=["GET"],
                     summary="New messages as server-sent events", tags=["extensions"])
