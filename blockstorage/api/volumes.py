"""Volumes: create (placed by the scheduler), list, show, delete."""

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
    find_type,
    json_body,
    member,
    reader,
    revert,
    runtime,
    section,
    size,
    start,
    task,
    text,
    type_name,
)
from blockstorage.scheduler import TOPIC as SCHEDULER
from blockstorage.scheduler import volume_topic
from usermessages import Action, Resource
from usermessages.errors import BadRequest
from usermessages.reader import Scope
from usermessages.web import base_url

router = APIRouter(tags=["block storage"])
DELETABLE = ("available", "error", "error_deleting", "error_extending", "error_restoring")


def volume_body(request: Request, scope: Scope, conn: Connection, row: dict,
                created: bool = False) -> dict:
    base = base_url(request, reader(request).settings)
    return views.volume(row, base, type_name(conn, row["volume_type_id"]),
                        is_admin=scope.all_projects, created=created)


@router.post("/v3/{project_id}/volumes", status_code=202)
def create_volume(request: Request, project_id: str,
                  body: dict = Depends(json_body)) -> JSONResponse:
    scope = call(request, project_id)
    member(scope)
    values = section(body, "volume")
    gigabytes = size(values.get("size"))
    with runtime(request).engine.begin() as conn:
        type_ref = values.get("volume_type")
        type_id = find_type(conn, str(type_ref))["id"] if type_ref else None
        group_ref = text(values, "group_id", 64)
        if group_ref:
            # The scheduler places the volume on the group's backend, or says why not.
            group = find(conn, db.groups, group_ref, scope, "Group")
            if group["status"] != "available":
                raise BadRequest(f"Invalid group: Group status must be available; it is "
                                 f"{group['status']}.")
        volume_id = str(uuid.uuid4())
        row = db.add(
            conn, db.volumes, id=volume_id, project_id=scope.caller.project_id,
            user_id=scope.caller.user_id, name=text(values, "name"),
            description=text(values, "description"), size=gigabytes, status="creating",
            volume_type_id=type_id, attach_status="detached",
            group_id=group["id"] if group_ref else None, **task(request),
        )
        reply = volume_body(request, scope, conn, row, created=True)
    start(request, scope, Work(SCHEDULER, "create_volume", Action.SCHEDULE_ALLOCATE_VOLUME,
                               Resource.VOLUME, volume_id,
                               revert(db.volumes, volume_id, "creating", "error"),
                               {"volume_id": volume_id}))
    return JSONResponse({"volume": reply}, status_code=202)


@router.get("/v3/{project_id}/volumes")
def list_volumes(request: Request, project_id: str) -> JSONResponse:
    scope = call(request, project_id)
    base = base_url(request, reader(request).settings)
    with runtime(request).engine.connect() as conn:
        rows = db.list_rows(conn, db.volumes, scope.project_id)
    return JSONResponse({"volumes": [views.volume_summary(r, base) for r in rows]})


@router.get("/v3/{project_id}/volumes/detail")
def list_volumes_detail(request: Request, project_id: str) -> JSONResponse:
    scope = call(request, project_id)
    with runtime(request).engine.connect() as conn:
        rows = db.list_rows(conn, db.volumes, scope.project_id)
        return JSONResponse({"volumes": [volume_body(request, scope, conn, r) for r in rows]})


@router.get("/v3/{project_id}/volumes/{volume_id}")
def show_volume(request: Request, project_id: str, volume_id: str) -> JSONResponse:
    scope = call(request, project_id)
    with runtime(request).engine.connect() as conn:
        row = find(conn, db.volumes, volume_id, scope, "Volume")
        return JSONResponse({"volume": volume_body(request, scope, conn, row)})


@router.delete("/v3/{project_id}/volumes/{volume_id}", status_code=202)
def delete_volume(request: Request, project_id: str, volume_id: str) -> Response:
    scope = call(request, project_id)
    member(scope)
    rt = runtime(request)
    with rt.engine.begin() as conn:
        row = find(conn, db.volumes, volume_id, scope, "Volume")
        if row["status"] not in DELETABLE:
            raise BadRequest(f"Invalid volume: Volume status must be one of "
                             f"{', '.join(DELETABLE)}; it is {row['status']}.")
        backend = rt.backend_of_host(row["host"])
        if backend is None:
            # Never placed: nothing on any backend to remove.
            db.delete_row(conn, db.volumes, row["id"])
            return Response(status_code=202)
        db.transition(conn, db.volumes, row["id"], DELETABLE, "deleting", **task(request))
    start(request, scope, Work(volume_topic(backend.name), "delete_volume",
                               Action.DELETE_VOLUME, Resource.VOLUME, row["id"],
                               revert(db.volumes, row["id"], "deleting", row["status"]),
                               {"volume_id": row["id"]}))
    return Response(status_code=202)
