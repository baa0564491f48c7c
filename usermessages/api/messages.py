"""The messages resource: list, show and delete, with and without the project in the URL."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import Engine

from usermessages.api import policy
from usermessages.api.auth import Caller, identify
from usermessages.api.faults import NOT_FOUND_TEXT
from usermessages.api.microversion import MESSAGES, RESOURCE_FILTER_CONFIG, APIVersion
from usermessages.api.params import USER_FILTERS, parse_list_query
from usermessages.api.views import MessageView
from usermessages.config import Settings, project_id_problem
from usermessages.errors import BadRequest, MessageNotFound, NotFound
from usermessages.store import messages as store

router = APIRouter()
MAX_ID = 255


@dataclass(frozen=True)
class Call:
    """One authenticated, authorized-to-route API call."""

    caller: Caller
    is_admin: bool
    version: APIVersion
    view: MessageView


def base_url(request: Request, settings: Settings) -> str:
    if settings.public_endpoint:
        return settings.public_endpoint.rstrip("/")
    base = str(request.base_url).rstrip("/")
    forwarded = request.headers.get("x-forwarded-host")
    if forwarded:
        host = forwarded.split(",")[-1].strip()
        scheme, _, rest = base.partition("://")
        path = rest.partition("/")[2]
        base = f"{scheme}://{host}" + (f"/{path}" if path else "")
    return base


def begin(request: Request, project_id: str | None, min_version: APIVersion = MESSAGES) -> Call:
    """Authenticate, check the URL's project, and gate on the microversion (Cinder's order)."""
    state = request.app.state
    settings: Settings = state.settings
    caller = identify(request.headers, request.state, settings)
    if project_id is not None:
        problem = project_id_problem(settings, project_id)
        if problem:
            # Cinder's text first (clients may match it), then the reason.
            raise NotFound(f"{NOT_FOUND_TEXT} {problem[0].upper()}{problem[1:]}.")
        if project_id != caller.project_id:
            raise BadRequest(
                f"Malformed request url: the project in the URL ({project_id[:64]}) is not "
                f"the token's ({caller.project_id[:64]})")
    version: APIVersion = request.state.api_version
    if version < min_version:
        raise NotFound(NOT_FOUND_TEXT)
    view = MessageView(base_url(request, settings), project_id, state.catalog)
    all_projects = state.policy.sees_all_projects(caller, settings.auth_strategy)
    return Call(caller, all_projects, version, view)


def _engine(request: Request) -> Engine:
    return request.app.state.engine


def _lookup(request: Request, call: Call, message_id: str) -> dict:
    if len(message_id) > MAX_ID:
        raise MessageNotFound(message_id[:MAX_ID] + "...")
    with _engine(request).connect() as conn:
        if call.is_admin:
            return store.get_message_all_projects(conn, message_id)
        return store.get_message(conn, message_id, call.caller.project_id)


def list_messages(request: Request, project_id: str | None = None) -> JSONResponse:
    call = begin(request, project_id)
    request.app.state.policy.authorize(policy.GET_ALL, call.caller, call.caller.project_id)
    pairs = request.query_params.multi_items()
    query, link_limit = parse_list_query(
        dict(pairs),
        call.version,
        is_admin=call.is_admin,
        max_limit=request.app.state.settings.osapi_max_limit,
    )
    with _engine(request).connect() as conn:
        if call.is_admin:
            rows = store.list_messages_all_projects(conn, query)
        else:
            rows = store.list_messages(conn, call.caller.project_id, query)
    return JSONResponse(call.view.index(rows, pairs, link_limit))


def show_message(request: Request, message_id: str, project_id: str | None = None) -> JSONResponse:
    call = begin(request, project_id)
    # Look up before the policy check, so another project's id is a 404, not a 403.
    row = _lookup(request, call, message_id)
    request.app.state.policy.authorize(policy.GET, call.caller, row["project_id"])
    return JSONResponse({"message": call.view.detail(row)})


def delete_message(request: Request, message_id: str, project_id: str | None = None) -> Response:
    call = begin(request, project_id)
    row = _lookup(request, call, message_id)
    request.app.state.policy.authorize(policy.DELETE, call.caller, row["project_id"])
    with _engine(request).begin() as conn:
        if not store.soft_delete_message(conn, row["id"]):
            raise MessageNotFound(message_id)
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


# Project-less forms first, so /v3/messages/{id} never reads "messages" as a project.
for prefix in ("/v3", "/v3/{project_id}"):
    router.add_api_route(f"{prefix}/messages", list_messages, methods=["GET"],
                         summary="List messages", tags=["messages"])
    router.add_api_route(f"{prefix}/messages/{{message_id}}", show_message, methods=["GET"],
                         summary="Show a message", tags=["messages"])
    router.add_api_route(f"{prefix}/messages/{{message_id}}", delete_message, methods=["DELETE"],
                         status_code=204, summary="Delete a message", tags=["messages"])
    router.add_api_route(f"{prefix}/resource_filters", list_resource_filters, methods=["GET"],
                         summary="Filters a project user may use", tags=["messages"])
