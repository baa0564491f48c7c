"""Volume actions (``POST .../volumes/{id}/action``): extend, retype, attach, detach."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy import Connection

from blockstorage import db
from blockstorage.api.common import (
    Work,
    call,
    find,
    find_type,
    json_body,
    member,
    placed,
    revert,
    runtime,
    size,
    start,
    task,
    text,
)
from blockstorage.scheduler import TOPIC as SCHEDULER
from usermessages import Action, Resource
from usermessages.errors import BadRequest

router = APIRouter(tags=["block storage"])

# An action checks its arguments and commits the volume's transient status.
VolumeAction = Callable[[Request, Connection, dict, dict], Work]


@router.post("/v3/{project_id}/volumes/{volume_id}/action", status_code=202)
def volume_action(request: Request, project_id: str, volume_id: str,
                  body: dict = Depends(json_body)) -> Response:
    scope = call(request, project_id)
    member(scope)
    if len(body) != 1:
        raise BadRequest("Invalid input received: send exactly one action")
    [(name, args)] = body.items()
    if name not in ACTIONS:
        raise BadRequest(f"Invalid input received: unknown action {name[:64]}")
    if not isinstance(args, dict):
        args = {}
    with runtime(request).engine.begin() as conn:
        row = find(conn, db.volumes, volume_id, scope, "Volume")
        work = ACTIONS[name](request, conn, row, args)
    start(request, scope, work)
    return Response(status_code=202)


def _begin(request: Request, conn: Connection, row: dict, required: str, status: str) -> None:
    if row["status"] != required or not db.transition(
        conn, db.volumes, row["id"], (required,), status, **task(request)
    ):
        raise BadRequest(f"Invalid volume: Volume status must be {required}; it is "
                         f"{row['status']}.")


def _work(topic: str, method: str, action: Action, row: dict, required: str, transient: str,
          **args: object) -> Work:
    return Work(topic, method, action, Resource.VOLUME, row["id"],
                revert(db.volumes, row["id"], transient, required),
                {"volume_id": row["id"], **args})


def extend(request: Request, conn: Connection, row: dict, args: dict) -> Work:
    new_size = size(args.get("new_size"), "new_size")
    if new_size <= row["size"]:
        raise BadRequest("Invalid input received: New size for extend must be greater than "
                         f"current size. (current: {row['size']}, extended: {new_size}).")
    _begin(request, conn, row, "available", "extending")
    return _work(SCHEDULER, "extend_volume", Action.EXTEND_VOLUME, row, "available",
                 "extending", new_size=new_size)


def retype(request: Request, conn: Connection, row: dict, args: dict) -> Work:
    new_type = find_type(conn, str(args.get("new_type", "")))
    _begin(request, conn, row, "available", "retyping")
    return _work(SCHEDULER, "retype_volume", Action.RETYPE_VOLUME, row, "available",
                 "retyping", new_type_id=new_type["id"])


def attach(request: Request, conn: Connection, row: dict, args: dict) -> Work:
    topic = placed(request, row)
    _begin(request, conn, row, "available", "attaching")
    return _work(topic, "attach_volume", Action.ATTACH_VOLUME, row, "available", "attaching",
                 instance_uuid=text(args, "instance_uuid", 36),
                 mountpoint=text(args, "mountpoint"))


def detach(request: Request, conn: Connection, row: dict, args: dict) -> Work:
    topic = placed(request, row)
    _begin(request, conn, row, "in-use", "detaching")
    return _work(topic, "detach_volume", Action.DETACH_VOLUME, row, "in-use", "detaching")


ACTIONS: dict[str, VolumeAction] = {
    "os-extend": extend, "os-retype": retype, "os-attach": attach, "os-detach": detach,
}
