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
from usermessages.store.series import StoredSeries
from usermessages.web import base_url
from usermessages.web.projections import series_body

router = APIRouter()


def _reader(request: Request) -> Reader:
    return request.app.state.reader


def _collection(request: Request, project_id: str | None) -> str:
    project = f"/{project_id}" if project_id else ""
    return f"{base_url(request, _reader(request).settings)}/v3{project}/messages-ext/series"


def _body(request: Request, call: Call, project_id: str | None, series: StoredSeries) -> dict:
    return series_body(series, call.view.audience, _reader(request).catalog,
                       f"{_collection(request, project_id)}/{series.id}")


def list_series(request: Request, project_id: str | None = None) -> JSONResponse:
    call = begin(request, project_id)
    pairs = request.query_params.multi_items()
    reader = _reader(request)
    rows, limit = reader.list_series(call.scope, pairs, reader.settings.osapi_max_limit)
    body: dict = {"series": [_body(request, call, project_id, row) for row in rows]}
    if rows and len(rows) >= limit:
        kept = [(k, v) for k, v in pairs if k != "marker"]
        query = urlencode([*kept, ("marker", rows[-1].id)])
        body["series_links"] = [{"rel": "next",
                                 "href": f"{_collection(request, project_id)}?{query}"}]
    return JSONResponse(body)


def show_series(request: Request, series_id: str, project_id: str | None = None) -> JSONResponse:
    call = begin(request, project_id)
    row = _reader(request).get_series(call.scope, series_id)
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
