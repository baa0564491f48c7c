"""What every block-storage route shares: the caller's scope, request bodies, finders,
and the one shape of a route that starts work: find -> transition -> cast, or undo.

Routes read identity and scope through the public ``usermessages.reader`` and
the ``usermessages.web`` toolkit, as any service beside the messages API would.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from sqlalchemy import Connection, Table, select

from blockstorage import db
from blockstorage.rpc import BusUnavailable
from blockstorage.runtime import Runtime
from blockstorage.scheduler import volume_topic
from usermessages import Action, Detail, Resource
from usermessages.errors import BadRequest, Forbidden, HTTPError, NotFound
from usermessages.reader import Reader, Scope
from usermessages.web import MIN_VERSION, APIVersion, require_version

MAX_SIZE_GB = 1_000_000
MAX_BODY = 64 * 1024


class ServiceUnavailable(HTTPError):
    """Raised when the bus cannot take a cast: 503 ``serviceUnavailable``."""

    status = 503


class HTTPConflict(HTTPError):
    """Raised when a name is taken (409 ``conflictingRequest``)."""

    status = 409


async def json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise BadRequest(f"Invalid input received: body larger than {MAX_BODY} bytes")
    try:
        body = json.loads(raw or b"{}")
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequest("Malformed request body") from exc
    if not isinstance(body, dict):
        raise BadRequest("Malformed request body")
    return body


def runtime(request: Request) -> Runtime:
    return request.app.state.blockstorage


def reader(request: Request) -> Reader:
    return request.app.state.reader


# --- who is calling ----------------------------------------------------------


def call(request: Request, project_id: str, version: APIVersion = MIN_VERSION) -> Scope:
    """Authenticate against the URL's project, then gate on the microversion (Cinder's order)."""
    scope = reader(request).authenticate(request.headers, request.state, project_id)
    require_version(request, version)
    return scope


def member(scope: Scope) -> None:
    if not scope.all_projects and "member" not in scope.caller.roles:
        raise Forbidden("Policy doesn't allow volume:update to be performed.")


def admin(scope: Scope, rule: str) -> None:
    if not scope.all_projects:
        raise Forbidden(f"Policy doesn't allow {rule} to be performed.")


# --- request bodies ----------------------------------------------------------


def section(body: dict, key: str) -> dict[str, Any]:
    value = body.get(key)
    if not isinstance(value, dict):
        raise BadRequest(f"Missing required element '{key}' in request body.")
    return value


def text(values: dict, key: str, limit: int = 255) -> str | None:
    value = values.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise BadRequest(f"Invalid input received: {key} must be a string of at most "
                         f"{limit} characters")
    return value


def size(value: Any, what: str = "size") -> int:
    try:
        gigabytes = int(value)
    except (TypeError, ValueError) as exc:
        raise BadRequest(f"Invalid input received: {what} must be an integer") from exc
    if not 0 < gigabytes <= MAX_SIZE_GB:
        raise BadRequest(f"Invalid input received: {what} must be between 1 and {MAX_SIZE_GB}")
    return gigabytes


# --- finding rows ------------------------------------------------------------


def find(conn: Connection, table: Table, row_id: str, scope: Scope, noun: str) -> dict:
    row = db.get_for_project(conn, table, row_id[:36], scope.project_id)
    if row is None:
        raise NotFound(f"{noun} {row_id[:64]} could not be found.")
    return row


def find_type(conn: Connection, ref: str) -> dict:
    row = db.get(conn, db.volume_types, ref)
    if row is not None:
        return row
    named = conn.execute(
        select(db.volume_types).where(db.volume_types.c.name == ref)
    ).mappings().first()
    if named is None:
        raise NotFound(f"Volume type with name {ref[:64]} could not be found.")
    return dict(named)


def type_name(conn: Connection, type_id: str | None) -> str | None:
    row = db.get(conn, db.volume_types, type_id) if type_id else None
    return row["name"] if row else None


def listed(request: Request, project_id: str, table: Table,
           version: APIVersion = MIN_VERSION) -> tuple[Scope, list[dict]]:
    """The caller's rows of ``table``; cinderclient finds by name through ``?name=``."""
    scope = call(request, project_id, version)
    with runtime(request).engine.connect() as conn:
        rows = db.list_rows(conn, table, scope.project_id)
    name = request.query_params.get("name")
    return scope, [r for r in rows if name is None or r["name"] == name]


# --- starting work: the one shape --------------------------------------------

# Puts a resource back after a failed cast; True if it won the state transition.
Undo = Callable[[Connection], bool]


def revert(table: Table, row_id: str, transient: str, status: str, **values: Any) -> Undo:
    """The usual undo: compare-and-set ``transient`` back to ``status``."""
    def undo(conn: Connection) -> bool:
        return db.transition(conn, table, row_id, (transient,), status, task_deadline=None,
                             **values)

    return undo


def task(request: Request) -> dict[str, Any]:
    """The task columns a transition stamps: its deadline and the request it serves."""
    deadline, _ = runtime(request).deadline()
    return {"task_deadline": deadline, "task_request_id": request.state.request_id}


@dataclass(frozen=True)
class Work:
    """Work whose state change is committed: where to cast it, and how to undo it."""

    topic: str
    method: str
    action: Action
    resource: Resource
    resource_id: str
    undo: Undo
    args: dict[str, Any] = field(default_factory=dict)


def start(request: Request, scope: Scope, work: Work) -> None:
    """Hand work to the bus, or undo, tell the user, and answer 503 within the timeout."""
    rt = runtime(request)
    ctx = {"project_id": scope.caller.project_id, "user_id": scope.caller.user_id,
           "request_id": request.state.request_id}
    _, epoch = rt.deadline()
    try:
        rt.caster.cast(work.topic, work.method, ctx, epoch, **work.args)
    except BusUnavailable as exc:
        with rt.engine.begin() as conn:
            # Compare-and-set: if the watchdog already failed the task (the wait outlived
            # operation_deadline), it told the user; one request, one message.
            if work.undo(conn):
                rt.tell_user(ctx, work.action, resource_type=work.resource,
                             resource_uuid=work.resource_id, detail=Detail.SERVICE_UNAVAILABLE)
        raise ServiceUnavailable(
            "The block storage service cannot reach its message bus, so the request was "
            f"not started. Request {request.state.request_id}. Try again later."
        ) from exc


def placed(request: Request, row: dict) -> str:
    """The topic of the backend a volume lives on."""
    backend = runtime(request).backend_of_host(row["host"])
    if backend is None:
        raise BadRequest(f"Invalid volume: Volume {row['id']} is not on any backend.")
    return volume_topic(backend.name)
