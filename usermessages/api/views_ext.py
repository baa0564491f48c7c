"""``messages-ext/aggregates`` and ``messages-ext/export``: counts and downloads of a view.

Beyond Cinder, under the extension namespace, so ``/messages`` stays
byte-compatible. A view takes the list's filters (same whitelist per caller,
same errors) plus ``q``, a search on the summary. Both are lists in another
shape, so both need ``message:get_all`` besides their own rule
(``message:aggregates``, ``message:export``): a deployer who restricts listing
restricts these too. An export is audited (usermessages.audit).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse

from usermessages.api.messages import begin
from usermessages.errors import BadRequest
from usermessages.reader import Reader
from usermessages.web import export
from usermessages.web.limits import LeasedResponse, holder
from usermessages.web.views import timestamp

router = APIRouter()
# Rows read per keyset page while streaming an export.
EXPORT_PAGE = 500


def _reader(request: Request) -> Reader:
    return request.app.state.reader


def _params(request: Request, *own: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for key, value in request.query_params.multi_items():
        if key in params:
            raise BadRequest(f"Invalid input received: {key[:40]!r} is given twice.")
        params[key] = value
    return {k: v for k, v in params.items() if k not in own}


def aggregates(request: Request, project_id: str | None = None) -> JSONResponse:
    call = begin(request, project_id)
    reader = _reader(request)
    bucket = request.query_params.get("bucket")
    query = reader.parse_view(call.scope, _params(request, "bucket"),
                              max_limit=reader.settings.osapi_max_limit, paged=False)
    counts = reader.aggregates(call.scope, query, bucket)
    by = {name: [{"value": value, "count": n} for value, n in pairs]
          for name, pairs in counts.by.items()}
    return JSONResponse({"aggregates": {
        "total": sum(item["count"] for item in by["message_level"]),
        "bucket": counts.bucket,
        "since": timestamp(counts.since),
        "until": timestamp(counts.until),
        "by_event_id": by["event_id"],
        "by_message_level": by["message_level"],
        "by_resource_type": by["resource_type"],
        "by_time": [{"start": timestamp(start), "count": n} for start, n in counts.times],
    }})


def export_view(request: Request, project_id: str | None = None) -> StreamingResponse:
    call = begin(request, project_id)
    reader = _reader(request)
    fmt = request.query_params.get("format", "ndjson")
    if fmt not in export.FORMATS:
        raise BadRequest("Invalid input received: format must be 'ndjson' or 'csv'.")
    # Every error is raised here, before the first byte: once streaming, the
    # status is sent. Starlette iterates the rows in a thread, a page at a time.
    # The slot is taken last: a refused export (429 or 503 with Retry-After) took none.
    slots = request.app.state.limits.exports
    rows, lease = reader.export(
        call.scope, _params(request, "format"), fmt, max_limit=reader.settings.osapi_max_limit,
        page_size=EXPORT_PAGE, admit=lambda: slots.acquire(holder(call.scope.caller.project_id)))
    body = export.lines(fmt, rows, reader.catalog, call.view.audience)
    return LeasedResponse(lease, body, media_type=export.FORMATS[fmt], headers={
        "Content-Disposition": f'attachment; filename="messages.{fmt}"'})


# No project_id parameter on the project-less forms: FastAPI would read it
# from the query string, where it is an admin's project filter.
def _aggregates_all(request: Request) -> JSONResponse:
    return aggregates(request)


def _export_all(request: Request) -> StreamingResponse:
    return export_view(request)


for prefix, aggregates_route, export_route in (
    ("/v3", _aggregates_all, _export_all),
    ("/v3/{project_id}", aggregates, export_view),
):
    router.add_api_route(f"{prefix}/messages-ext/aggregates", aggregates_route, methods=["GET"],
                         summary="Count messages by event, level, resource type and time",
                         tags=["messages-ext"])
    router.add_api_route(f"{prefix}/messages-ext/export", export_route, methods=["GET"],
                         summary="Download a filtered view as NDJSON or CSV",
                         tags=["messages-ext"])
