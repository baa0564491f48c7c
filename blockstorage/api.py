"""The Cinder v3 subset this service answers, beside the messages API on one endpoint.

Every request that starts asynchronous work returns 202 at once and casts
the work over the bus. When the bus cannot take the cast (broker down or
silent), the request fails within the bus timeout with a 503 fault, the
resource is left in a state the user can act on, and a user message tied to
the request id says why.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import Connection, Table, select

from blockstorage import db, views
from blockstorage.config import OPERATIONS
from blockstorage.heartbeat import is_up
from blockstorage.rpc import BusUnavailable
from blockstorage.runtime import Runtime
from blockstorage.scheduler import TOPIC as SCHEDULER
from blockstorage.scheduler import volume_topic
from usermessages import Action, Detail, Resource
from usermessages.api.messages import Call, base_url, begin
from usermessages.api.microversion import MIN_VERSION, APIVersion
from usermessages.errors import BadRequest, Forbidden, HTTPError, NotFound

router = APIRouter(tags=["block storage"])
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


def _runtime(request: Request) -> Runtime:
    return request.app.state.blockstorage


def _call(request: Request, project_id: str) -> Call:
    return begin(request, project_id, MIN_VERSION)


def _scope(call: Call) -> str | None:
    return None if call.is_admin else call.caller.project_id


def _ctx(request: Request, call: Call) -> dict[str, Any]:
    """What a cast carries so that a worker can tell this user why it failed."""
    return {"project_id": call.caller.project_id, "user_id": call.caller.user_id,
            "request_id": request.state.request_id}


def _member(call: Call) -> None:
    if not call.is_admin and "member" not in call.caller.roles:
        raise Forbidden("Policy doesn't allow volume:update to be performed.")


def _admin(call: Call, rule: str) -> None:
    if not call.is_admin:
        raise Forbidden(f"Policy doesn't allow {rule} to be performed.")


def _section(body: dict, key: str) -> dict[str, Any]:
    section = body.get(key)
    if not isinstance(section, dict):
        raise BadRequest(f"Missing required element '{key}' in request body.")
    return section


def _text(section: dict, key: str, limit: int = 255) -> str | None:
    value = section.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise BadRequest(f"Invalid input received: {key} must be a string of at most "
                         f"{limit} characters")
    return value


def _size(value: Any, what: str = "size") -> int:
    try:
        size = int(value)
    except (TypeError, ValueError) as exc:
        raise BadRequest(f"Invalid input received: {what} must be an integer") from exc
    if not 0 < size <= MAX_SIZE_GB:
        raise BadRequest(f"Invalid input received: {what} must be between 1 and {MAX_SIZE_GB}")
    return size


def _find(conn: Connection, table: Table, row_id: str, call: Call, noun: str) -> dict:
    row = db.get_for_project(conn, table, row_id[:36], _scope(call))
    if row is None:
        raise NotFound(f"{noun} {row_id[:64]} could not be found.")
    return row


def _find_type(conn: Connection, ref: str) -> dict:
    row: Mapping[Any, Any] | None = db.get(conn, db.volume_types, ref)
    if row is None:
        row = conn.execute(
            select(db.volume_types).where(db.volume_types.c.name == ref)
        ).mappings().first()
    if row is None:
        raise NotFound(f"Volume type with name {ref[:64]} could not be found.")
    return dict(row)


def _type_name(conn: Connection, type_id: str | None) -> str | None:
    row = db.get(conn, db.volume_types, type_id) if type_id else None
    return row["name"] if row else None


# Puts a resource back after a failed cast; True if it won the state transition.
Undo = Callable[[Connection], bool]


def _cast(
    request: Request, call: Call, topic: str, method: str, *, undo: Undo,
    action: Action, resource: Resource, resource_id: str, **args: Any,
) -> None:
    """Hand work to the bus, or undo, tell the user, and answer 503 within the timeout."""
    rt = _runtime(request)
    ctx = _ctx(request, call)
    _, epoch = rt.deadline()
    try:
        rt.caster.cast(topic, method, ctx, epoch, **args)
    except BusUnavailable as exc:
        with rt.engine.begin() as conn:
            # Compare-and-set: if the watchdog already failed the task (the wait outlived
            # operation_deadline), it told the user; one request, one message.
            if undo(conn):
                rt.tell_user(ctx, action, resource_type=resource, resource_uuid=resource_id,
                             detail=Detail.SERVICE_UNAVAILABLE)
        raise ServiceUnavailable(
            "The block storage service cannot reach its message bus, so the request was "
            f"not started. Request {request.state.request_id}. Try again later."
        ) from exc


def _task(rt: Runtime, request: Request) -> dict[str, Any]:
    deadline, _ = rt.deadline()
    return {"task_deadline": deadline, "task_request_id": request.state.request_id}


# --- volume types ----------------------------------------------------------


@router.post("/v3/{project_id}/types")
def create_type(request: Request, project_id: str, body: dict = Depends(json_body)) -> JSONResponse:
    call = _call(request, project_id)
    _admin(call, "volume_extension:types_manage")
    section = _section(body, "volume_type")
    name = _text(section, "name")
    if not name:
        raise BadRequest("Invalid input received: a volume type needs a name")
    specs = section.get("extra_specs") or {}
    if not isinstance(specs, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and len(k) <= 255 and len(v) <= 255
        for k, v in specs.items()
    ):
        raise BadRequest("Invalid input received: extra_specs must map strings to strings")
    public = section.get("os-volume-type-access:is_public", section.get("is_public", True))
    with _runtime(request).engine.begin() as conn:
        if conn.execute(select(db.volume_types.c.id).where(
                db.volume_types.c.name == name)).first():
            raise HTTPConflict(f"Volume Type {name} already exists.")
        row = db.add(conn, db.volume_types, id=str(uuid.uuid4()), name=name,
                     description=_text(section, "description"), is_public=bool(public),
                     extra_specs=specs)
    return JSONResponse({"volume_type": views.volume_type(row)})


@router.get("/v3/{project_id}/types")
def list_types(request: Request, project_id: str) -> JSONResponse:
    _call(request, project_id)
    with _runtime(request).engine.connect() as conn:
        rows = conn.execute(select(db.volume_types).order_by(db.volume_types.c.name)).mappings()
        return JSONResponse({"volume_types": [views.volume_type(dict(r)) for r in rows]})


@router.get("/v3/{project_id}/types/{type_id}")
def show_type(request: Request, project_id: str, type_id: str) -> JSONResponse:
    _call(request, project_id)
    with _runtime(request).engine.connect() as conn:
        return JSONResponse({"volume_type": views.volume_type(_find_type(conn, type_id))})


@router.delete("/v3/{project_id}/types/{type_id}", status_code=202)
def delete_type(request: Request, project_id: str, type_id: str) -> Response:
    call = _call(request, project_id)
    _admin(call, "volume_extension:types_manage")
    with _runtime(request).engine.begin() as conn:
        row = _find_type(conn, type_id)
        in_use = conn.execute(select(db.volumes.c.id).where(
            db.volumes.c.volume_type_id == row["id"])).first()
        if in_use:
            raise BadRequest(f"Target volume type is still in use. Volume Type {row['id']} "
                             "deletion is not allowed with volumes present with the type.")
        db.delete_row(conn, db.volume_types, row["id"])
    return Response(status_code=202)


@router.post("/v3/{project_id}/types/{type_id}/extra_specs")
def set_extra_specs(request: Request, project_id: str, type_id: str,
                    body: dict = Depends(json_body)) -> JSONResponse:
    call = _call(request, project_id)
    _admin(call, "volume_extension:types_extra_specs:create")
    specs = _section(body, "extra_specs")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in specs.items()):
        raise BadRequest("Invalid input received: extra_specs must map strings to strings")
    with _runtime(request).engine.begin() as conn:
        row = _find_type(conn, type_id)
        merged = {**row["extra_specs"], **specs}
        conn.execute(db.volume_types.update().where(db.volume_types.c.id == row["id"])
                     .values(extra_specs=merged))
    return JSONResponse({"extra_specs": specs})


# --- volumes ---------------------------------------------------------------


def _volume_body(request: Request, call: Call, conn: Connection, row: dict,
                 created: bool = False) -> dict:
    base = base_url(request, request.app.state.settings)
    return views.volume(row, base, _type_name(conn, row["volume_type_id"]),
                        is_admin=call.is_admin, created=created)


@router.post("/v3/{project_id}/volumes", status_code=202)
def create_volume(request: Request, project_id: str,
                  body: dict = Depends(json_body)) -> JSONResponse:
    call = _call(request, project_id)
    _member(call)
    section = _section(body, "volume")
    size = _size(section.get("size"))
    rt = _runtime(request)
    with rt.engine.begin() as conn:
        type_ref = section.get("volume_type")
        type_id = _find_type(conn, str(type_ref))["id"] if type_ref else None
        group_ref = _text(section, "group_id", 64)
        if group_ref:
            # The scheduler places the volume on the group's backend, or says why not.
            group = _find(conn, db.groups, group_ref, call, "Group")
            if group["status"] != "available":
                raise BadRequest(f"Invalid group: Group status must be available; it is "
                                 f"{group['status']}.")
        volume_id = str(uuid.uuid4())
        row = db.add(
            conn, db.volumes, id=volume_id, project_id=call.caller.project_id,
            user_id=call.caller.user_id, name=_text(section, "name"),
            description=_text(section, "description"), size=size, status="creating",
            volume_type_id=type_id, attach_status="detached",
            group_id=group["id"] if group_ref else None, **_task(rt, request),
        )
        reply = _volume_body(request, call, conn, row, created=True)

    def undo(conn: Connection) -> bool:
        return db.transition(conn, db.volumes, volume_id, ("creating",), "error",
                             task_deadline=None)

    _cast(request, call, SCHEDULER, "create_volume", undo=undo,
          action=Action.SCHEDULE_ALLOCATE_VOLUME, resource=Resource.VOLUME,
          resource_id=volume_id, volume_id=volume_id)
    return JSONResponse({"volume": reply}, status_code=202)


@router.get("/v3/{project_id}/volumes")
def list_volumes(request: Request, project_id: str) -> JSONResponse:
    call = _call(request, project_id)
    base = base_url(request, request.app.state.settings)
    with _runtime(request).engine.connect() as conn:
        rows = db.list_rows(conn, db.volumes, _scope(call))
    return JSONResponse({"volumes": [views.volume_summary(r, base) for r in rows]})


@router.get("/v3/{project_id}/volumes/detail")
def list_volumes_detail(request: Request, project_id: str) -> JSONResponse:
    call = _call(request, project_id)
    with _runtime(request).engine.connect() as conn:
        rows = db.list_rows(conn, db.volumes, _scope(call))
        return JSONResponse({"volumes": [_volume_body(request, call, conn, r) for r in rows]})


@router.get("/v3/{project_id}/volumes/{volume_id}")
def show_volume(request: Request, project_id: str, volume_id: str) -> JSONResponse:
    call = _call(request, project_id)
    with _runtime(request).engine.connect() as conn:
        row = _find(conn, db.volumes, volume_id, call, "Volume")
        return JSONResponse({"volume": _volume_body(request, call, conn, row)})


DELETABLE = ("available", "error", "error_deleting", "error_extending", "error_restoring")


@router.delete("/v3/{project_id}/volumes/{volume_id}", status_code=202)
def delete_volume(request: Request, project_id: str, volume_id: str) -> Response:
    call = _call(request, project_id)
    _member(call)
    rt = _runtime(request)
    with rt.engine.begin() as conn:
        row = _find(conn, db.volumes, volume_id, call, "Volume")
        if row["status"] not in DELETABLE:
            raise BadRequest(f"Invalid volume: Volume status must be one of "
                             f"{', '.join(DELETABLE)}; it is {row['status']}.")
        backend = rt.backend_of_host(row["host"])
        if backend is None:
            # Never placed: nothing on any backend to remove.
            db.delete_row(conn, db.volumes, row["id"])
            return Response(status_code=202)
        db.transition(conn, db.volumes, row["id"], DELETABLE, "deleting", **_task(rt, request))

    def undo(conn: Connection) -> bool:
        return db.transition(conn, db.volumes, row["id"], ("deleting",), row["status"],
                             task_deadline=None)

    _cast(request, call, volume_topic(backend.name), "delete_volume", undo=undo,
          action=Action.DELETE_VOLUME, resource=Resource.VOLUME, resource_id=row["id"],
          volume_id=row["id"])
    return Response(status_code=202)


@dataclass(frozen=True)
class Work:
    """A volume action, once its state change is committed: what to cast, how to undo."""

    topic: str
    method: str
    action: Action
    undo: Undo
    args: dict[str, Any]


@router.post("/v3/{project_id}/volumes/{volume_id}/action", status_code=202)
def volume_action(request: Request, project_id: str, volume_id: str,
                  body: dict = Depends(json_body)) -> Response:
    call = _call(request, project_id)
    _member(call)
    if len(body) != 1:
        raise BadRequest("Invalid input received: send exactly one action")
    [(name, args)] = body.items()
    actions = {"os-extend": _extend, "os-retype": _retype, "os-attach": _attach,
               "os-detach": _detach}
    if name not in actions:
        raise BadRequest(f"Invalid input received: unknown action {name[:64]}")
    if not isinstance(args, dict):
        args = {}
    rt = _runtime(request)
    with rt.engine.begin() as conn:
        row = _find(conn, db.volumes, volume_id, call, "Volume")
        work = actions[name](request, conn, row, args)
    _cast(request, call, work.topic, work.method, undo=work.undo, action=work.action,
          resource=Resource.VOLUME, resource_id=row["id"], volume_id=row["id"], **work.args)
    return Response(status_code=202)


def _start(request: Request, conn: Connection, row: dict, required: str, status: str) -> None:
    if row["status"] != required or not db.transition(
        conn, db.volumes, row["id"], (required,), status, **_task(_runtime(request), request)
    ):
        raise BadRequest(f"Invalid volume: Volume status must be {required}; it is "
                         f"{row['status']}.")


def _back_to(row: dict, status: str, transient: str) -> Undo:
    def undo(conn: Connection) -> bool:
        return db.transition(conn, db.volumes, row["id"], (transient,), status, task_deadline=None)

    return undo


def _extend(request: Request, conn: Connection, row: dict, args: dict) -> Work:
    new_size = _size(args.get("new_size"), "new_size")
    if new_size <= row["size"]:
        raise BadRequest("Invalid input received: New size for extend must be greater than "
                         f"current size. (current: {row['size']}, extended: {new_size}).")
    _start(request, conn, row, "available", "extending")
    return Work(SCHEDULER, "extend_volume", Action.EXTEND_VOLUME,
                _back_to(row, "available", "extending"), {"new_size": new_size})


def _retype(request: Request, conn: Connection, row: dict, args: dict) -> Work:
    new_type = _find_type(conn, str(args.get("new_type", "")))
    _start(request, conn, row, "available", "retyping")
    return Work(SCHEDULER, "retype_volume", Action.RETYPE_VOLUME,
                _back_to(row, "available", "retyping"), {"new_type_id": new_type["id"]})


def _placed(request: Request, row: dict) -> str:
    backend = _runtime(request).backend_of_host(row["host"])
    if backend is None:
        raise BadRequest(f"Invalid volume: Volume {row['id']} is not on any backend.")
    return volume_topic(backend.name)


def _attach(request: Request, conn: Connection, row: dict, args: dict) -> Work:
    topic = _placed(request, row)
    _start(request, conn, row, "available", "attaching")
    return Work(topic, "attach_volume", Action.ATTACH_VOLUME,
                _back_to(row, "available", "attaching"),
                {"instance_uuid": _text(args, "instance_uuid", 36),
                 "mountpoint": _text(args, "mountpoint")})


def _detach(request: Request, conn: Connection, row: dict, args: dict) -> Work:
    topic = _placed(request, row)
    _start(request, conn, row, "in-use", "detaching")
    return Work(topic, "detach_volume", Action.DETACH_VOLUME,
                _back_to(row, "in-use", "detaching"), {})


# --- snapshots -------------------------------------------------------------


@router.post("/v3/{project_id}/snapshots", status_code=202)
def create_snapshot(request: Request, project_id: str,
                    body: dict = Depends(json_body)) -> JSONResponse:
    call = _call(request, project_id)
    _member(call)
    section = _section(body, "snapshot")
    rt = _runtime(request)
    with rt.engine.begin() as conn:
        volume = _find(conn, db.volumes, str(section.get("volume_id", "")), call, "Volume")
        if volume["status"] not in ("available", "in-use"):
            raise BadRequest(f"Invalid volume: Volume {volume['id']} status must be available "
                             f"or in-use; it is {volume['status']}.")
        topic = _placed(request, volume)
        snapshot_id = str(uuid.uuid4())
        row = db.add(conn, db.snapshots, id=snapshot_id, project_id=call.caller.project_id,
                     user_id=call.caller.user_id, volume_id=volume["id"],
                     name=_text(section, "name"), description=_text(section, "description"),
                     size=volume["size"], status="creating", **_task(rt, request))

    def undo(conn: Connection) -> bool:
        return db.transition(conn, db.snapshots, snapshot_id, ("creating",), "error",
                             task_deadline=None)

    _cast(request, call, topic, "create_snapshot", undo=undo, action=Action.SNAPSHOT_CREATE,
          resource=Resource.VOLUME_SNAPSHOT, resource_id=snapshot_id, snapshot_id=snapshot_id)
    return JSONResponse({"snapshot": views.snapshot(row)}, status_code=202)


@router.get("/v3/{project_id}/snapshots/{snapshot_id}")
def show_snapshot(request: Request, project_id: str, snapshot_id: str) -> JSONResponse:
    call = _call(request, project_id)
    with _runtime(request).engine.connect() as conn:
        return JSONResponse({"snapshot": views.snapshot(
            _find(conn, db.snapshots, snapshot_id, call, "Snapshot"))})


@router.get("/v3/{project_id}/snapshots")
def list_snapshots(request: Request, project_id: str) -> JSONResponse:
    call = _call(request, project_id)
    with _runtime(request).engine.connect() as conn:
        rows = db.list_rows(conn, db.snapshots, _scope(call))
    return JSONResponse({"snapshots": [views.snapshot(r) for r in rows]})


@router.delete("/v3/{project_id}/snapshots/{snapshot_id}", status_code=202)
def delete_snapshot(request: Request, project_id: str, snapshot_id: str) -> Response:
    call = _call(request, project_id)
    _member(call)
    rt = _runtime(request)
    with rt.engine.begin() as conn:
        row = _find(conn, db.snapshots, snapshot_id, call, "Snapshot")
        if row["status"] == "error":
            db.delete_row(conn, db.snapshots, row["id"])
            return Response(status_code=202)
        volume = db.get(conn, db.volumes, row["volume_id"])
        if volume is None or not db.transition(conn, db.snapshots, row["id"],
                                               ("available", "error_deleting"), "deleting",
                                               **_task(rt, request)):
            raise BadRequest(f"Invalid snapshot: Snapshot status must be available or error; "
                             f"it is {row['status']}.")
        topic = _placed(request, volume)

    def undo(conn: Connection) -> bool:
        return db.transition(conn, db.snapshots, row["id"], ("deleting",), row["status"],
                             task_deadline=None)

    _cast(request, call, topic, "delete_snapshot", undo=undo, action=Action.SNAPSHOT_DELETE,
          resource=Resource.VOLUME_SNAPSHOT, resource_id=row["id"], snapshot_id=row["id"])
    return Response(status_code=202)


# --- backups ---------------------------------------------------------------


@router.post("/v3/{project_id}/backups", status_code=202)
def create_backup(request: Request, project_id: str,
                  body: dict = Depends(json_body)) -> JSONResponse:
    call = _call(request, project_id)
    _member(call)
    section = _section(body, "backup")
    rt = _runtime(request)
    base = base_url(request, request.app.state.settings)
    with rt.engine.begin() as conn:
        volume = _find(conn, db.volumes, str(section.get("volume_id", "")), call, "Volume")
        backup_id = str(uuid.uuid4())
        if not db.transition(conn, db.volumes, volume["id"], ("available",), "backing-up"):
            raise BadRequest(f"Invalid volume: Volume status must be available; it is "
                             f"{volume['status']}.")
        row = db.add(conn, db.backups, id=backup_id, project_id=call.caller.project_id,
                     user_id=call.caller.user_id, volume_id=volume["id"],
                     name=_text(section, "name"), description=_text(section, "description"),
                     size=volume["size"], status="creating", **_task(rt, request))

    def undo(conn: Connection) -> bool:
        if not db.transition(conn, db.backups, backup_id, ("creating",), "error",
                             task_deadline=None):
            return False  # the watchdog won: it freed the volume and told the user
        return db.transition(conn, db.volumes, volume["id"], ("backing-up",), "available")

    _cast(request, call, SCHEDULER, "create_backup", undo=undo, action=Action.BACKUP_CREATE,
          resource=Resource.VOLUME_BACKUP, resource_id=backup_id, backup_id=backup_id)
    reply = views.backup(row, base)
    return JSONResponse({"backup": {"id": reply["id"], "links": reply["links"],
                                    "name": reply["name"]}}, status_code=202)


@router.get("/v3/{project_id}/backups/{backup_id}")
def show_backup(request: Request, project_id: str, backup_id: str) -> JSONResponse:
    call = _call(request, project_id)
    base = base_url(request, request.app.state.settings)
    with _runtime(request).engine.connect() as conn:
        return JSONResponse({"backup": views.backup(
            _find(conn, db.backups, backup_id, call, "Backup"), base)})


@router.delete("/v3/{project_id}/backups/{backup_id}", status_code=202)
def delete_backup(request: Request, project_id: str, backup_id: str) -> Response:
    call = _call(request, project_id)
    _member(call)
    rt = _runtime(request)
    with rt.engine.begin() as conn:
        row = _find(conn, db.backups, backup_id, call, "Backup")
        if not db.transition(conn, db.backups, row["id"], ("available", "error"), "deleting",
                             **_task(rt, request)):
            raise BadRequest(f"Invalid backup: Backup status must be available or error; it is "
                             f"{row['status']}.")

    def undo(conn: Connection) -> bool:
        return db.transition(conn, db.backups, row["id"], ("deleting",), row["status"],
                             task_deadline=None)

    _cast(request, call, "backup", "delete_backup", undo=undo, action=Action.BACKUP_DELETE,
          resource=Resource.VOLUME_BACKUP, resource_id=row["id"], backup_id=row["id"])
    return Response(status_code=202)


# --- groups ----------------------------------------------------------------


@router.post("/v3/{project_id}/groups", status_code=202)
def create_group(request: Request, project_id: str,
                 body: dict = Depends(json_body)) -> JSONResponse:
    call = _call(request, project_id)
    _member(call)
    section = _section(body, "group")
    refs = section.get("volume_types") or []
    if not isinstance(refs, list) or not refs or len(refs) > 16:
        raise BadRequest("Invalid input received: volume_types must list 1 to 16 types")
    rt = _runtime(request)
    with rt.engine.begin() as conn:
        type_ids = [_find_type(conn, str(ref))["id"] for ref in refs]
        group_id = str(uuid.uuid4())
        row = db.add(conn, db.groups, id=group_id, project_id=call.caller.project_id,
                     user_id=call.caller.user_id, name=_text(section, "name"),
                     description=_text(section, "description"),
                     group_type=_text(section, "group_type"), volume_types=type_ids,
                     status="creating", **_task(rt, request))

    def undo(conn: Connection) -> bool:
        return db.transition(conn, db.groups, group_id, ("creating",), "error", task_deadline=None)

    _cast(request, call, SCHEDULER, "create_group", undo=undo,
          action=Action.SCHEDULE_ALLOCATE_VOLUME, resource=Resource.VOLUME,
          resource_id=group_id, group_id=group_id)
    return JSONResponse({"group": {"id": row["id"], "name": row["name"]}}, status_code=202)


@router.get("/v3/{project_id}/groups/{group_id}")
def show_group(request: Request, project_id: str, group_id: str) -> JSONResponse:
    call = _call(request, project_id)
    with _runtime(request).engine.connect() as conn:
        return JSONResponse({"group": views.group(
            _find(conn, db.groups, group_id, call, "Group"))})


@router.put("/v3/{project_id}/groups/{group_id}", status_code=202)
def update_group(request: Request, project_id: str, group_id: str,
                 body: dict = Depends(json_body)) -> Response:
    call = _call(request, project_id)
    _member(call)
    section = _section(body, "group")
    add = _text(section, "add_volumes", 4096) or ""
    volume_ids = [v.strip() for v in add.split(",") if v.strip()]
    rt = _runtime(request)
    with rt.engine.begin() as conn:
        row = _find(conn, db.groups, group_id, call, "Group")
        for volume_id in volume_ids:
            _find(conn, db.volumes, volume_id, call, "Volume")
        backend = rt.backend_of_host(row["host"])
        if backend is None or not db.transition(conn, db.groups, row["id"], ("available",),
                                                "updating", **_task(rt, request)):
            raise BadRequest(f"Invalid group: Group status must be available; it is "
                             f"{row['status']}.")

    def undo(conn: Connection) -> bool:
        return db.transition(conn, db.groups, row["id"], ("updating",), "available",
                             task_deadline=None)

    _cast(request, call, volume_topic(backend.name), "add_to_group", undo=undo,
          action=Action.GROUP_ADD_VOLUME, resource=Resource.VOLUME,
          resource_id=volume_ids[0] if volume_ids else row["id"],
          group_id=row["id"], volume_ids=volume_ids)
    return Response(status_code=202)


# --- admin: services and fault injection -------------------------------------


@router.get("/v3/{project_id}/os-services")
def list_services(request: Request, project_id: str) -> JSONResponse:
    call = _call(request, project_id)
    _admin(call, "volume_extension:services:index")
    rt = _runtime(request)
    with rt.engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(select(db.services)).mappings()]
    return JSONResponse({"services": [
        {"binary": r["binary"], "host": r["host"], "zone": views.AVAILABILITY_ZONE,
         "status": "enabled",
         "state": "up" if is_up(r, rt.settings.service_down_time) else "down",
         "updated_at": r["updated_at"].strftime("%Y-%m-%dT%H:%M:%S.%f")}
        for r in rows
    ]})


@router.get("/v3/{project_id}/os-faults")
def list_faults(request: Request, project_id: str) -> JSONResponse:
    call = _call(request, project_id)
    _admin(call, "blockstorage:faults")
    with _runtime(request).engine.connect() as conn:
        rows = conn.execute(select(db.faults)).mappings().all()
    return JSONResponse({"faults": [{"id": r["id"], "backend": r["backend"],
                                     "operation": r["operation"]} for r in rows]})


@router.post("/v3/{project_id}/os-faults", status_code=201)
def inject_fault(request: Request, project_id: str,
                 body: dict = Depends(json_body)) -> JSONResponse:
    """Make a backend (or ``backup``) fail an operation until the fault is removed."""
    call = _call(request, project_id)
    _admin(call, "blockstorage:faults")
    section = _section(body, "fault")
    backend, operation = _text(section, "backend", 64), _text(section, "operation", 64)
    rt = _runtime(request)
    known = {b.name for b in rt.settings.backends} | {"backup"}
    if backend not in known:
        raise BadRequest(f"Invalid input received: backend must be one of {sorted(known)}")
    if operation not in OPERATIONS:
        raise BadRequest(f"Invalid input received: operation must be one of {list(OPERATIONS)}")
    fault_id = str(uuid.uuid4())
    with rt.engine.begin() as conn:
        db.add(conn, db.faults, id=fault_id, backend=backend, operation=operation)
    return JSONResponse({"fault": {"id": fault_id, "backend": backend, "operation": operation}},
                        status_code=201)


@router.delete("/v3/{project_id}/os-faults/{fault_id}", status_code=204)
def remove_fault(request: Request, project_id: str, fault_id: str) -> Response:
    call = _call(request, project_id)
    _admin(call, "blockstorage:faults")
    with _runtime(request).engine.begin() as conn:
        if db.get(conn, db.faults, fault_id[:36]) is None:
            raise NotFound(f"Fault {fault_id[:64]} could not be found.")
        db.delete_row(conn, db.faults, fault_id[:36])
    return Response(status_code=204)


# --- listings cinderclient asks for ----------------------------------------
# (`cinder snapshot-list`, `backup-list`, `group-list`, `group-show <name>`)


def _listed(request: Request, project_id: str, table: Table,
            version: APIVersion = MIN_VERSION) -> tuple[Call, list[dict]]:
    call = begin(request, project_id, version)
    with _runtime(request).engine.connect() as conn:
        rows = db.list_rows(conn, table, _scope(call))
    # cinderclient finds a resource by name through ?name=, then filters again itself.
    name = request.query_params.get("name")
    return call, [r for r in rows if name is None or r["name"] == name]


@router.get("/v3/{project_id}/snapshots/detail")
def list_snapshots_detail(request: Request, project_id: str) -> JSONResponse:
    _, rows = _listed(request, project_id, db.snapshots)
    return JSONResponse({"snapshots": [views.snapshot(r) for r in rows]})


@router.get("/v3/{project_id}/backups")
def list_backups(request: Request, project_id: str) -> JSONResponse:
    _, rows = _listed(request, project_id, db.backups)
    base = base_url(request, request.app.state.settings)
    return JSONResponse({"backups": [
        {"id": r["id"], "name": r["name"],
         "links": views.links(base, r["project_id"], "backups", r["id"])} for r in rows]})


@router.get("/v3/{project_id}/backups/detail")
def list_backups_detail(request: Request, project_id: str) -> JSONResponse:
    _, rows = _listed(request, project_id, db.backups)
    base = base_url(request, request.app.state.settings)
    return JSONResponse({"backups": [views.backup(r, base) for r in rows]})


GROUPS = APIVersion(3, 13)


@router.get("/v3/{project_id}/groups")
def list_groups(request: Request, project_id: str) -> JSONResponse:
    _, rows = _listed(request, project_id, db.groups, GROUPS)
    return JSONResponse({"groups": [{"id": r["id"], "name": r["name"]} for r in rows]})


@router.get("/v3/{project_id}/groups/detail")
def list_groups_detail(request: Request, project_id: str) -> JSONResponse:
    _, rows = _listed(request, project_id, db.groups, GROUPS)
    return JSONResponse({"groups": [views.group(r) for r in rows]})


# --- attachments (API 3.27; os-complete from 3.44) ---------------------------
# Cinder's new attach flow, as nova and `cinder attachment-*` drive it: create reserves
# the volume; update with a connector starts the attach (the volume worker, where the
# configured faults apply and the user is told why); os-complete confirms; delete detaches.
# One attachment per volume, kept on the volume row.

ATTACHMENTS = APIVersion(3, 27)
ATTACHMENT_COMPLETE = APIVersion(3, 44)
# A volume in another status holds no live attachment, whatever its row still says (the
# watchdog puts an abandoned "attaching" back to "available" without clearing the rest).
ATTACHED_STATUSES = ("reserved", "attaching", "in-use", "detaching")


def _attachment_call(request: Request, project_id: str, version: APIVersion) -> Call:
    call = begin(request, project_id, version)
    _member(call)
    return call


def _find_attachment(conn: Connection, attachment_id: str, call: Call) -> dict:
    row = conn.execute(
        select(db.volumes).where(db.volumes.c.attachment_id == attachment_id[:36])
    ).mappings().first()
    if (row is None or row["status"] not in ATTACHED_STATUSES
            or (_scope(call) is not None and row["project_id"] != _scope(call))):
        raise NotFound(f"VolumeAttachment {attachment_id[:64]} could not be found.")
    return dict(row)


def _connector(section: dict) -> dict | None:
    connector = section.get("connector")
    if connector in (None, {}):
        return None
    if not isinstance(connector, dict):
        raise BadRequest("Invalid input received: connector must be an object")
    return connector


def _connect(request: Request, call: Call, row: dict, connector: dict) -> dict:
    """reserved -> attaching, then cast the attach to the volume's backend."""
    topic = _placed(request, row)
    mountpoint = connector.get("mountpoint")
    rt = _runtime(request)
    with rt.engine.begin() as conn:
        if not db.transition(conn, db.volumes, row["id"], ("reserved",), "attaching",
                             attach_status="attaching", **_task(rt, request)):
            raise BadRequest(f"Invalid volume: Volume status must be reserved to connect an "
                             f"attachment; it is {row['status']}.")

    def undo(conn: Connection) -> bool:
        return db.transition(conn, db.volumes, row["id"], ("attaching",), "available",
                             task_deadline=None, attach_status="detached",
                             attachment_id=None, instance_uuid=None)

    _cast(request, call, topic, "attach_volume", undo=undo, action=Action.ATTACH_VOLUME,
          resource=Resource.VOLUME, resource_id=row["id"], volume_id=row["id"],
          instance_uuid=row["instance_uuid"],
          mountpoint=mountpoint if isinstance(mountpoint, str) else None,
          attachment_id=row["attachment_id"])
    with rt.engine.connect() as conn:
        return db.get(conn, db.volumes, row["id"]) or row


@router.post("/v3/{project_id}/attachments")
def create_attachment(request: Request, project_id: str,
                      body: dict = Depends(json_body)) -> JSONResponse:
    call = _attachment_call(request, project_id, ATTACHMENTS)
    section = _section(body, "attachment")
    volume_id = _text(section, "volume_uuid", 36)
    if volume_id is None:
        raise BadRequest("Invalid input received: volume_uuid is required")
    instance_uuid = _text(section, "instance_uuid", 36)
    connector = _connector(section)
    rt = _runtime(request)
    with rt.engine.begin() as conn:
        row = _find(conn, db.volumes, volume_id, call, "Volume")
        if row["status"] != "available" or not db.transition(
            conn, db.volumes, row["id"], ("available",), "reserved", attach_status="reserved",
            attachment_id=str(uuid.uuid4()), instance_uuid=instance_uuid,
        ):
            raise BadRequest(f"Invalid volume: Volume status must be available to reserve; "
                             f"it is {row['status']}.")
        row = db.get(conn, db.volumes, row["id"]) or row
    if connector is not None:
        row = _connect(request, call, row, connector)
    return JSONResponse({"attachment": views.attachment(row)})


@router.get("/v3/{project_id}/attachments")
def list_attachments(request: Request, project_id: str) -> JSONResponse:
    return _attachments(request, project_id, detail=False)


@router.get("/v3/{project_id}/attachments/detail")
def list_attachments_detail(request: Request, project_id: str) -> JSONResponse:
    return _attachments(request, project_id, detail=True)


def _attachments(request: Request, project_id: str, *, detail: bool) -> JSONResponse:
    call = begin(request, project_id, ATTACHMENTS)
    with _runtime(request).engine.connect() as conn:
        rows = [r for r in db.list_rows(conn, db.volumes, _scope(call))
                if r["attachment_id"] and r["status"] in ATTACHED_STATUSES]
    volume_id = request.query_params.get("volume_id")
    return JSONResponse({"attachments": [
        views.attachment(r, connection=detail) for r in rows
        if volume_id is None or r["id"] == volume_id]})


@router.get("/v3/{project_id}/attachments/{attachment_id}")
def show_attachment(request: Request, project_id: str, attachment_id: str) -> JSONResponse:
    call = begin(request, project_id, ATTACHMENTS)
    with _runtime(request).engine.connect() as conn:
        return JSONResponse({"attachment": views.attachment(
            _find_attachment(conn, attachment_id, call))})


@router.put("/v3/{project_id}/attachments/{attachment_id}")
def update_attachment(request: Request, project_id: str, attachment_id: str,
                      body: dict = Depends(json_body)) -> JSONResponse:
    call = _attachment_call(request, project_id, ATTACHMENTS)
    connector = _connector(_section(body, "attachment"))
    if connector is None:
        raise BadRequest("Invalid input received: an attachment update needs a connector")
    with _runtime(request).engine.connect() as conn:
        row = _find_attachment(conn, attachment_id, call)
    return JSONResponse({"attachment": views.attachment(_connect(request, call, row, connector))})


@router.post("/v3/{project_id}/attachments/{attachment_id}/action", status_code=204)
def attachment_action(request: Request, project_id: str, attachment_id: str,
                      body: dict = Depends(json_body)) -> Response:
    call = _attachment_call(request, project_id, ATTACHMENT_COMPLETE)
    if list(body) != ["os-complete"]:
        raise BadRequest("Invalid input received: the only attachment action is os-complete")
    with _runtime(request).engine.connect() as conn:
        row = _find_attachment(conn, attachment_id, call)
    # The worker marks the volume in-use when the attach succeeds; until then there is
    # nothing more to record, and if it fails the user's message says why.
    if row["status"] not in ("attaching", "in-use"):
        raise BadRequest(f"Invalid volume: the attachment is not connected (volume status "
                         f"{row['status']}); update it with a connector first.")
    return Response(status_code=204)


@router.delete("/v3/{project_id}/attachments/{attachment_id}")
def delete_attachment(request: Request, project_id: str, attachment_id: str) -> JSONResponse:
    call = _attachment_call(request, project_id, ATTACHMENTS)
    rt = _runtime(request)
    with rt.engine.begin() as conn:
        row = _find_attachment(conn, attachment_id, call)
        if row["status"] == "reserved":
            # Never connected: only the reservation to drop.
            db.transition(conn, db.volumes, row["id"], ("reserved",), "available",
                          attach_status="detached", attachment_id=None, instance_uuid=None)
            return JSONResponse({"attachments": []})
        work = _detach(request, conn, row, {})
    _cast(request, call, work.topic, work.method, undo=work.undo, action=work.action,
          resource=Resource.VOLUME, resource_id=row["id"], volume_id=row["id"], **work.args)
    return JSONResponse({"attachments": []})


# The fixed paths above must win over `{id}` routes declared earlier in this file.
_FIRST = {f"/v3/{{project_id}}/{name}/detail" for name in ("snapshots", "backups", "groups")}
router.routes.sort(key=lambda route: getattr(route, "path", "") not in _FIRST)
