"""The series extension: repeats of one failure with counts, beside Cinder's messages.

``GET /v3[/{project_id}]/messages-ext/series`` and ``.../series/{series_id}``.
Cinder's ``/messages`` bodies are untouched; this is a resource of its own.
"""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from usermessages.api.messages import Call, begin
from usermessages.reader import Reader
from usermessages.reader import series as reader_series
from usermessages.web import base_url
from usermessages.web.views import timestamp, user_message

router = APIRouter()


def _reader(request: Request) -> Reader:
    return request.app.state.reader


def _collection(request: Request, project_id: str | None) -> str:
    project = f"/{project_id}" if project_id else ""
    return f"{base_url(request, _reader(request).settings)}/v3{project}/messages-ext/series"


def _body(request: Request, call: Call, project_id: str | None, row: dict) -> dict:
    latest = {**row, "request_id": (row["request_ids"] or [""])[0]}
    body = {
        "id": row["id"],
        "event_id": row["event_id"],
        "resource_type": row["resource_type"] or None,
        "resource_uuid": row["resource_uuid"] or None,
        "message_level": row["message_level"],
        "user_message": user_message(latest, _reader(request).catalog),
        "count": row["count"],
        "suppressed": row["suppressed"],
        "first_seen": timestamp(row["first_seen"]),
        "last_seen": timestamp(row["last_seen"]),
        "request_ids": row["request_ids"],
        "links": [{"rel": "self", "href": f"{_collection(request, project_id)}/{row['id']}"}],
    }
    if call.scope.all_projects:
        body["project_id"] = row["project_id"]
    return body


def list_series(request: Request, project_id: str | None = None) -> JSONResponse:
    call = begin(request, project_id)
    pairs = request.query_params.multi_items()
    reader = _reader(request)
    rows, limit = reader_series.list_series(reader, call.scope, pairs,
                                            reader.settings.osapi_max_limit)
    body: dict = {"series": [_body(request, call, project_id, row) for row in rows]}
    if rows and len(rows) >= limit:
        kept = [(k, v) for k, v in pairs if k != "marker"]
        query = urlencode([*kept, ("marker", rows[-1]["id"])])
        body["series_links"] = [{"rel": "next",
                                 "href": f"{_collection(request, project_id)}?{query}"}]
    return JSONResponse(body)


def show_series(request: Request, series_id: str, project_id: str | None = None) -> JSONResponse:
    call = begin(request, project_id)
    row = reader_series.get_series(_reader(request), call.scope, series_id)
    return JSONResponse({"series": _body(request, call, project_id, row)})


# Project-less handlers take no project_id: FastAPI would read it from the query string.
def _list_all(request: Request) -> JSONResponse:
    return list_series(request)


def _show_any(request: Request, series_id: str) -> JSONResponse:
    return show_series(request, series_id)


# Project-less forms first, so "messages-ext" is never read as a project.
for prefix, list_route, show_route in (("/v3", _list_all, _show_any),
                                       ("/v3/{project_id}", list_series, show_series)):
    router.add_api_route(f"{prefix}/messages-ext/series", list_route, methods=["GET"],
                         summary="List series of repeated messages", tags=["messages-ext"])
    router.add_api_route(f"{prefix}/messages-ext/series/{{series_id}}", show_route,
                         methods=["GET"], summary="Show a series", tags=["messages-ext"])
