"""Backups: create (the volume is busy meanwhile) and delete through the backup service."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import Connection

from blockstorage import db, views
from blockstorage.api.common import (
    Work,
    call,
    find,
    json_body,
    listed,
    member,
    reader,
    revert,
    runtime,
    section,
    start,
    task,
    text,
)
from blockstorage.scheduler import TOPIC as SCHEDULER
from usermessages import Action, Resource
from usermessages.errors import BadRequest
from usermessages.web import base_url

router = APIRouter(tags=["block storage"])


@router.post("/v3/{project_id}/backups", status_code=202)
def create_backup(request: Request, project_id: str,
                  body: dict = Depends(json_body)) -> JSONResponse:
    scope = call(request, project_id)
    member(scope)
    values = section(body, "backup")
    base = base_url(request, reader(request).settings)
    with runtime(request).engine.begin() as conn:
        volume = find(conn, db.volumes, str(values.get("volume_id", "")), scope, "Volume")
        backup_id = str(uuid.uuid4())
        if not db.transition(conn, db.volumes, volume["id"], ("available",), "backing-up"):
            raise BadRequest(f"Invalid volume: Volume status must be available; it is "
                             f"{volume['status']}.")
        row = db.add(conn, db.backups, id=backup_id, project_id=scope.caller.project_id,
                     user_id=scope.caller.user_id, volume_id=volume["id"],
                     name=text(values, "name"), description=text(values, "description"),
                     size=volume["size"], status="creating", **task(request))

    def undo(conn: Connection) -> bool:
        if not revert(db.backups, backup_id, "creating", "error")(conn):
            return False  # the watchdog won: it freed the volume and told the user
        return db.transition(conn, db.volumes, volume["id"], ("backing-up",), "available")

    start(request, scope, Work(SCHEDULER, "create_backup", Action.BACKUP_CREATE,
                               Resource.VOLUME_BACKUP, backup_id, undo,
                               {"backup_id": backup_id}))
    reply = views.backup(row, base)
    return JSONResponse({"backup": {"id": reply["id"], "links": reply["links"],
                                    "name": reply["name"]}}, status_code=202)


@router.get("/v3/{project_id}/backups")
def list_backups(request: Request, project_id: str) -> JSONResponse:
    _, rows = listed(request, project_id, db.backups)
    base = base_url(request, reader(request).settings)
    return JSONResponse({"backups": [
        {"id": r["id"], "name": r["name"],
         "links": views.links(base, r["project_id"], "backups", r["id"])} for r in rows]})


@router.get("/v3/{project_id}/backups/detail")
def list_backups_detail(request: Request, project_id: str) -> JSONResponse:
    _, rows = listed(request, project_id, db.backups)
    base = base_url(request, reader(request).settings)
    return JSONResponse({"backups": [views.backup(r, base) for r in rows]})


@router.get("/v3/{project_id}/backups/{backup_id}")
def show_backup(request: Request, project_id: str, backup_id: str) -> JSONResponse:
    scope = call(request, project_id)
    base = base_url(request, reader(request).settings)
    with runtime(request).engine.connect() as conn:
        return JSONResponse({"backup": views.backup(
            find(conn, db.backups, backup_id, scope, "Backup"), base)})


@router.delete("/v3/{project_id}/backups/{backup_id}", status_code=202)
def delete_backup(request: Request, project_id: str, backup_id: str) -> Response:
    scope = call(request, project_id)
    member(scope)
    with runtime(request).engine.begin() as conn:
        row = find(conn, db.backups, backup_id, scope, "Backup")
        if not db.transition(conn, db.backups, row["id"], ("available", "error"), "deleting",
                             **task(request)):
            raise BadRequest(f"Invalid backup: Backup status must be available or error; it is "
                             f"{row['status']}.")
    start(request, scope, Work("backup", "delete_backup", Action.BACKUP_DELETE,
                               Resource.VOLUME_BACKUP, row["id"],
                               revert(db.backups, row["id"], "deleting", row["status"]),
                               {"backup_id": row["id"]}))
    return Response(status_code=202)
