"""Snapshots: create and delete on the volume's backend; show and list."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from blockstorage import db, views
from blockstorage.api.common import (
    Work,
    call,
    find,
    json_body,
    listed,
    member,
    placed,
    revert,
    runtime,
    section,
    start,
    task,
    text,
)
from usermessages import Action, Resource
from usermessages.errors import BadRequest

router = APIRouter(tags=["block storage"])


@router.post("/v3/{project_id}/snapshots", status_code=202)
def create_snapshot(request: Request, project_id: str,
                    body: dict = Depends(json_body)) -> JSONResponse:
    scope = call(request, project_id)
    member(scope)
    values = section(body, "snapshot")
    with runtime(request).engine.begin() as conn:
        volume = find(conn, db.volumes, str(values.get("volume_id", "")), scope, "Volume")
        if volume["status"] not in ("available", "in-use"):
            raise BadRequest(f"Invalid volume: Volume {volume['id']} status must be available "
                             f"or in-use; it is {volume['status']}.")
        topic = placed(request, volume)
        snapshot_id = str(uuid.uuid4())
        row = db.add(conn, db.snapshots, id=snapshot_id, project_id=scope.caller.project_id,
                     user_id=scope.caller.user_id, volume_id=volume["id"],
                     name=text(values, "name"), description=text(values, "description"),
                     size=volume["size"], status="creating", **task(request))
    start(request, scope, Work(topic, "create_snapshot", Action.SNAPSHOT_CREATE,
                               Resource.VOLUME_SNAPSHOT, snapshot_id,
                               revert(db.snapshots, snapshot_id, "creating", "error"),
                               {"snapshot_id": snapshot_id}))
    return JSONResponse({"snapshot": views.snapshot(row)}, status_code=202)


@router.get("/v3/{project_id}/snapshots/detail")
def list_snapshots_detail(request: Request, project_id: str) -> JSONResponse:
    _, rows = listed(request, project_id, db.snapshots)
    # Horizon's volume page lists a volume's snapshots with ?volume_id=.
    volume_id = request.query_params.get("volume_id")
    if volume_id is not None:
        rows = [r for r in rows if r["volume_id"] == volume_id]
    return JSONResponse({"snapshots": [views.snapshot(r) for r in rows]})


@router.get("/v3/{project_id}/snapshots/{snapshot_id}")
def show_snapshot(request: Request, project_id: str, snapshot_id: str) -> JSONResponse:
    scope = call(request, project_id)
    with runtime(request).engine.connect() as conn:
        return JSONResponse({"snapshot": views.snapshot(
            find(conn, db.snapshots, snapshot_id, scope, "Snapshot"))})


@router.get("/v3/{project_id}/snapshots")
def list_snapshots(request: Request, project_id: str) -> JSONResponse:
    scope = call(request, project_id)
    with runtime(request).engine.connect() as conn:
        rows = db.list_rows(conn, db.snapshots, scope.project_id)
    return JSONResponse({"snapshots": [views.snapshot(r) for r in rows]})


@router.delete("/v3/{project_id}/snapshots/{snapshot_id}", status_code=202)
def delete_snapshot(request: Request, project_id: str, snapshot_id: str) -> Response:
    scope = call(request, project_id)
    member(scope)
    with runtime(request).engine.begin() as conn:
        row = find(conn, db.snapshots, snapshot_id, scope, "Snapshot")
        if row["status"] == "error":
            db.delete_row(conn, db.snapshots, row["id"])
            return Response(status_code=202)
        volume = db.get(conn, db.volumes, row["volume_id"])
        if volume is None or not db.transition(conn, db.snapshots, row["id"],
                                               ("available", "error_deleting"), "deleting",
                                               **task(request)):
            raise BadRequest(f"Invalid snapshot: Snapshot status must be available or error; "
                             f"it is {row['status']}.")
        topic = placed(request, volume)
    start(request, scope, Work(topic, "delete_snapshot", Action.SNAPSHOT_DELETE,
                               Resource.VOLUME_SNAPSHOT, row["id"],
                               revert(db.snapshots, row["id"], "deleting", row["status"]),
                               {"snapshot_id": row["id"]}))
    return Response(status_code=202)
