"""The messages resource: list, show and delete, with and without the project in the URL."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from usermessages.reader import Reader, Scope
from usermessages.reader.params import USER_FILTERS
from usermessages.translations import content_language
from usermessages.web import base_url, require_version
from usermessages.web.microversion import (
    MESSAGES,
    MESSAGES_PAGINATION,
    RESOURCE_FILTER_CONFIG,
    APIVersion,
)
from usermessages.web.projections import Audience, MessageView

router = APIRouter()
# Beyond Cinder: a caller who reads across projects may ask for each message's
# project and node (the spec's Tenant and Node name columns), as the Horizon
# plugin does; Cinder's body has neither.
OWNER_FIELDS_HEADER = "X-Usermessages-Owner-Fields"


@dataclass(frozen=True)
class Call:
    """One authenticated API call: who, in which scope, at which version, rendered how."""

    scope: Scope
    version: APIVersion
    view: MessageView
    language: str

    @property
    def legacy(self) -> bool:
        """A version below 3.5, where Cinder reads no list parameter (see reader.params)."""
        return self.version < MESSAGES_PAGINATION

    def respond(self, body: dict) -> JSONResponse:
        """A body whose texts are in ``language`` says so. Vary stays Cinder's exact
        ``OpenStack-API-Version``: /v3 answers are ``no-store``, so no cache keys on it."""
        return JSONResponse(body, headers={"Content-Language": content_language(self.language)})


def _reader(request: Request) -> Reader:
    return request.app.state.reader


def begin(request: Request, project_id: str | None, min_version: APIVersion = MESSAGES) -> Call:
    """Authenticate, check the URL's project, and gate on the microversion (Cinder's order)."""
    reader = _reader(request)
    scope = reader.authenticate(request.headers, request.state, project_id)
    version = require_version(request, min_version)
    # Only an admin's view holds the owner fields; the header only asks for them.
    owner_fields = request.headers.get(OWNER_FIELDS_HEADER, "").lower() in ("1", "true")
    # Only the texts follow Accept-Language; ids, event ids and the body's shape never do.
    language = reader.translator.negotiate(request.headers.get("accept-language"))
    view = MessageView(base_url(request, reader.settings), project_id,
                       reader.translator.catalog_for(language),
                       Audience.of(scope.all_projects), owner_fields)
    return Call(scope, version, view, language)


def list_messages(request: Request, project_id: str | None = None) -> JSONResponse:
    call = begin(request, project_id)
    pairs = request.query_params.multi_items()
    rows, link_limit = _reader(request).list_messages(
        call.scope, dict(pairs), legacy=call.legacy,
        max_limit=_reader(request).settings.osapi_max_limit)
    return call.respond(call.view.index(rows, pairs, link_limit))


def show_message(request: Request, message_id: str, project_id: str | None = None) -> JSONResponse:
    call = begin(request, project_id)
    return call.respond({"message": call.view.detail(_reader(request).get(call.scope, message_id))})


def delete_message(request: Request, message_id: str, project_id: str | None = None) -> Response:
    call = begin(request, project_id)
    _reader(request).delete(call.scope, message_id)
    # Cinder's 204 is a bare webob response: empty, with webob's default type.
    return Response(status_code=204,
                    headers={"Content-Type": "text/html; charset=UTF-8", "Content-Length": "0"})


def list_resource_filters(request: Request, project_id: str | None = None) -> JSONResponse:
    begin(request, project_id, RESOURCE_FILTER_CONFIG)
    resource = request.query_params.get("resource")
    filters = [] if resource not in (None, "message") else [
        {"resource": "message", "filters": list(USER_FILTERS)}
    ]
    return JSONResponse({"resource_filters": filters})


# The project-less URLs get handlers without a ``project_id`` parameter: FastAPI would
# otherwise fill it from the query string, where it is an admin's project filter.
def _list_all(request: Request) -> JSONResponse:
    return list_messages(request)


def _show_any(request: Request, message_id: str) -> JSONResponse:
    return show_message(request, message_id)


def _delete_any(request: Request, message_id: str) -> Response:
    return delete_message(request, message_id)


def _filters_any(request: Request) -> JSONResponse:
    return list_resource_filters(request)


# Project-less forms first, so /v3/messages/{id} never reads "messages" as a project.
ROUTES = (
    ("/v3", _list_all, _show_any, _delete_any, _filters_any),
    ("/v3/{project_id}", list_messages, show_message, delete_message, list_resource_filters),
)
for prefix, list_route, show_route, delete_route, filters_route in ROUTES:
    router.add_api_route(f"{prefix}/messages", list_route, methods=["GET"],
                         summary="List messages", tags=["messages"])
    router.add_api_route(f"{prefix}/messages/{{message_id}}", show_route, methods=["GET"],
                         summary="Show a message", tags=["messages"])
    router.add_api_route(f"{prefix}/messages/{{message_id}}", delete_route, methods=["DELETE"],
                         status_code=204, summary="Delete a message", tags=["messages"])
    router.add_api_route(f"{prefix}/resource_filters", filters_route, methods=["GET"],
                         summary="Filters a project user may use", tags=["messages"])
