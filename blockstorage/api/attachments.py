"""Attachments (API 3.27; os-complete from 3.44): Cinder's new attach flow.

As nova and ``cinder attachment-*`` drive it: create reserves the volume;
update with a connector starts the attach (the volume worker, where the
configured faults apply and the user is told why); os-complete confirms;
delete detaches. One attachment per volume, kept on the volume row.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import Connection, select

from blockstorage import db, views
from blockstorage.api.common import (
    Work,
    call,
    find,
    json_body,
    member,
    placed,
    revert,
    runtime,
    section,
    start,
    task,
    text,
)
from blockstorage.api.volume_actions import detach
from usermessages import Action, Resource
from usermessages.errors import BadRequest, NotFound
from usermessages.reader import Scope
from usermessages.web import APIVersion

router = APIRouter(tags=["block storage"])
ATTACHMENTS = APIVersion(3, 27)
ATTACHMENT_COMPLETE = APIVersion(3, 44)
# A volume in another status holds no live attachment, whatever its row still says (the
# watchdog puts an abandoned "attaching" back to "available" without clearing the rest).
ATTACHED_STATUSES = ("reserved", "attaching", "in-use", "detaching")


def _member_call(request: Request, project_id: str, version: APIVersion) -> Scope:
    scope = call(request, project_id, version)
    member(scope)
    return scope


def _find(conn: Connection, attachment_id: str, scope: Scope) -> dict:
    row = conn.execute(
        select(db.volumes).where(db.volumes.c.attachment_id == attachment_id[:36])
    ).mappings().first()
    if (row is None or row["status"] not in ATTACHED_STATUSES
            or (scope.project_id is not None and row["project_id"] != scope.project_id)):
        raise NotFound(f"VolumeAttachment {attachment_id[:64]} could not be found.")
    return dict(row)


def _connector(values: dict) -> dict | None:
    connector = values.get("connector")
    if connector in (None, {}):
        return None
    if not isinstance(connector, dict):
        raise BadRequest("Invalid input received: connector must be an object")
    return connector


def _connect(request: Request, scope: Scope, row: dict, connector: dict) -> dict:
    """reserved -> attaching, then cast the attach to the volume's backend."""
    topic = placed(request, row)
    mountpoint = connector.get("mountpoint")
    rt = runtime(request)
    with rt.engine.begin() as conn:
        if not db.transition(conn, db.volumes, row["id"], ("reserved",), "attaching",
                             attach_status="attaching", **task(request)):
            raise BadRequest(f"Invalid volume: Volume status must be reserved to connect an "
                             f"attachment; it is {row['status']}.")
    start(request, scope, Work(
        topic, "attach_volume", Action.ATTACH_VOLUME, Resource.VOLUME, row["id"],
        revert(db.volumes, row["id"], "attaching", "available", attach_status="detached",
               attachment_id=None, instance_uuid=None),
        {"volume_id": row["id"], "instance_uuid": row["instance_uuid"],
         "mountpoint": mountpoint if isinstance(mountpoint, str) else None,
         "attachment_id": row["attachment_id"]}))
    with rt.engine.connect() as conn:
        return db.get(conn, db.volumes, row["id"]) or row


@router.post("/v3/{project_id}/attachments")
def create_attachment(request: Request, project_id: str,
                      body: dict = Depends(json_body)) -> JSONResponse:
    scope = _member_call(request, project_id, ATTACHMENTS)
    values = section(body, "attachment")
    volume_id = text(values, "volume_uuid", 36)
    if volume_id is None:
        raise BadRequest("Invalid input received: volume_uuid is required")
    instance_uuid = text(values, "instance_uuid", 36)
    connector = _connector(values)
    with runtime(request).engine.begin() as conn:
        row = find(conn, db.volumes, volume_id, scope, "Volume")
        if row["status"] != "available" or not db.transition(
            conn, db.volumes, row["id"], ("available",), "reserved", attach_status="reserved",
            attachment_id=str(uuid.uuid4()), instance_uuid=instance_uuid,
        ):
            raise BadRequest(f"Invalid volume: Volume status must be available to reserve; "
                             f"it is {row['status']}.")
        row = db.get(conn, db.volumes, row["id"]) or row
    if connector is not None:
        row = _connect(request, scope, row, connector)
    return JSONResponse({"attachment": views.attachment(row)})


@router.get("/v3/{project_id}/attachments")
def list_attachments(request: Request, project_id: str) -> JSONResponse:
    return _attachments(request, project_id, detail=False)


@router.get("/v3/{project_id}/attachments/detail")
def list_attachments_detail(request: Request, project_id: str) -> JSONResponse:
    return _attachments(request, project_id, detail=True)


def _attachments(request: Request, project_id: str, *, detail: bool) -> JSONResponse:
    scope = call(request, project_id, ATTACHMENTS)
    with runtime(request).engine.connect() as conn:
        rows = [r for r in db.list_rows(conn, db.volumes, scope.project_id)
                if r["attachment_id"] and r["status"] in ATTACHED_STATUSES]
    volume_id = request.query_params.get("volume_id")
    return JSONResponse({"attachments": [
        views.attachment(r, connection=detail) for r in rows
        if volume_id is None or r["id"] == volume_id]})


@router.get("/v3/{project_id}/attachments/{attachment_id}")
def show_attachment(request: Request, project_id: str, attachment_id: str) -> JSONResponse:
    scope = call(request, project_id, ATTACHMENTS)
    with runtime(request).engine.connect() as conn:
        return JSONResponse({"attachment": views.attachment(_find(conn, attachment_id, scope))})


@router.put("/v3/{project_id}/attachments/{attachment_id}")
def update_attachment(request: Request, project_id: str, attachment_id: str,
                      body: dict = Depends(json_body)) -> JSONResponse:
    scope = _member_call(request, project_id, ATTACHMENTS)
    connector = _connector(section(body, "attachment"))
    if connector is None:
        raise BadRequest("Invalid input received: an attachment update needs a connector")
    with runtime(request).engine.connect() as conn:
        row = _find(conn, attachment_id, scope)
    return JSONResponse({"attachment": views.attachment(_connect(request, scope, row, connector))})


@router.post("/v3/{project_id}/attachments/{attachment_id}/action", status_code=204)
def attachment_action(request: Request, project_id: str, attachment_id: str,
                      body: dict = Depends(json_body)) -> Response:
    scope = _member_call(request, project_id, ATTACHMENT_COMPLETE)
    if list(body) != ["os-complete"]:
        raise BadRequest("Invalid input received: the only attachment action is os-complete")
    with runtime(request).engine.connect() as conn:
        row = _find(conn, attachment_id, scope)
    # The worker marks the volume in-use when the attach succeeds; until then there is
    # nothing more to record, and if it fails the user's message says why.
    if row["status"] not in ("attaching", "in-use"):
        raise BadRequest(f"Invalid volume: the attachment is not connected (volume status "
                         f"{row['status']}); update it with a connector first.")
    return Response(status_code=204)


@router.delete("/v3/{project_id}/attachments/{attachment_id}")
def delete_attachment(request: Request, project_id: str, attachment_id: str) -> JSONResponse:
    scope = _member_call(request, project_id, ATTACHMENTS)
    with runtime(request).engine.begin() as conn:
        row = _find(conn, attachment_id, scope)
        if row["status"] == "reserved":
            # Never connected: only the reservation to drop.
            db.transition(conn, db.volumes, row["id"], ("reserved",), "available",
                          attach_status="detached", attachment_id=None, instance_uuid=None)
            return JSONResponse({"attachments": []})
        work = detach(request, conn, row, {})
    start(request, scope, work)
    return JSONResponse({"attachments": []})
