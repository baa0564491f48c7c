"""Generic volume groups (API 3.13): create, list, show, add volumes."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from blockstorage import db, views
from blockstorage.api.common import (
    Work,
    call,
    find,
    find_type,
    json_body,
    listed,
    member,
    revert,
    runtime,
    section,
    start,
    task,
    text,
)
from blockstorage.scheduler import TOPIC as SCHEDULER
from blockstorage.scheduler import volume_topic
from usermessages import Action, Resource
from usermessages.errors import BadRequest
from usermessages.web import APIVersion

router = APIRouter(tags=["block storage"])
GROUPS = APIVersion(3, 13)


@router.post("/v3/{project_id}/groups", status_code=202)
def create_group(request: Request, project_id: str,
                 body: dict = Depends(json_body)) -> JSONResponse:
    scope = call(request, project_id)
    member(scope)
    values = section(body, "group")
    refs = values.get("volume_types") or []
    if not isinstance(refs, list) or not refs or len(refs) > 16:
        raise BadRequest("Invalid input received: volume_types must list 1 to 16 types")
    with runtime(request).engine.begin() as conn:
        type_ids = [find_type(conn, str(ref))["id"] for ref in refs]
        group_id = str(uuid.uuid4())
        row = db.add(conn, db.groups, id=group_id, project_id=scope.caller.project_id,
                     user_id=scope.caller.user_id, name=text(values, "name"),
                     description=text(values, "description"),
                     group_type=text(values, "group_type"), volume_types=type_ids,
                     status="creating", **task(request))
    start(request, scope, Work(SCHEDULER, "create_group", Action.SCHEDULE_ALLOCATE_VOLUME,
                               Resource.VOLUME, group_id,
                               revert(db.groups, group_id, "creating", "error"),
                               {"group_id": group_id}))
    return JSONResponse({"group": {"id": row["id"], "name": row["name"]}}, status_code=202)


@router.get("/v3/{project_id}/groups")
def list_groups(request: Request, project_id: str) -> JSONResponse:
    _, rows = listed(request, project_id, db.groups, GROUPS)
    return JSONResponse({"groups": [{"id": r["id"], "name": r["name"]} for r in rows]})


@router.get("/v3/{project_id}/groups/detail")
def list_groups_detail(request: Request, project_id: str) -> JSONResponse:
    _, rows = listed(request, project_id, db.groups, GROUPS)
    return JSONResponse({"groups": [views.group(r) for r in rows]})


@router.get("/v3/{project_id}/groups/{group_id}")
def show_group(request: Request, project_id: str, group_id: str) -> JSONResponse:
    scope = call(request, project_id)
    with runtime(request).engine.connect() as conn:
        return JSONResponse({"group": views.group(
            find(conn, db.groups, group_id, scope, "Group"))})


@router.put("/v3/{project_id}/groups/{group_id}", status_code=202)
def update_group(request: Request, project_id: str, group_id: str,
                 body: dict = Depends(json_body)) -> Response:
    scope = call(request, project_id)
    member(scope)
    values = section(body, "group")
    add = text(values, "add_volumes", 4096) or ""
    volume_ids = [v.strip() for v in add.split(",") if v.strip()]
    rt = runtime(request)
    with rt.engine.begin() as conn:
        row = find(conn, db.groups, group_id, scope, "Group")
        for volume_id in volume_ids:
            find(conn, db.volumes, volume_id, scope, "Volume")
        backend = rt.backend_of_host(row["host"])
        if backend is None or not db.transition(conn, db.groups, row["id"], ("available",),
                                                "updating", **task(request)):
            raise BadRequest(f"Invalid group: Group status must be available; it is "
                             f"{row['status']}.")
    start(request, scope, Work(volume_topic(backend.name), "add_to_group",
                               Action.GROUP_ADD_VOLUME, Resource.VOLUME,
                               volume_ids[0] if volume_ids else row["id"],
                               revert(db.groups, row["id"], "updating", "available"),
                               {"group_id": row["id"], "volume_ids": volume_ids}))
    return Response(status_code=202)
