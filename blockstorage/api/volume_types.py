"""Volume types and their extra specs (admin-managed; anyone lists them)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import select

from blockstorage import db, views
from blockstorage.api.common import (
    HTTPConflict,
    admin,
    call,
    find_type,
    json_body,
    runtime,
    section,
    text,
)
from usermessages.errors import BadRequest

router = APIRouter(tags=["block storage"])


def _string_map(specs: object, limit: int | None = None) -> bool:
    return isinstance(specs, dict) and all(
        isinstance(k, str) and isinstance(v, str)
        and (limit is None or (len(k) <= limit and len(v) <= limit))
        for k, v in specs.items()
    )


@router.post("/v3/{project_id}/types")
def create_type(request: Request, project_id: str, body: dict = Depends(json_body)) -> JSONResponse:
    scope = call(request, project_id)
    admin(scope, "volume_extension:types_manage")
    values = section(body, "volume_type")
    name = text(values, "name")
    if not name:
        raise BadRequest("Invalid input received: a volume type needs a name")
    specs = values.get("extra_specs") or {}
    if not _string_map(specs, 255):
        raise BadRequest("Invalid input received: extra_specs must map strings to strings")
    public = values.get("os-volume-type-access:is_public", values.get("is_public", True))
    with runtime(request).engine.begin() as conn:
        if conn.execute(select(db.volume_types.c.id).where(
                db.volume_types.c.name == name)).first():
            raise HTTPConflict(f"Volume Type {name} already exists.")
        row = db.add(conn, db.volume_types, id=str(uuid.uuid4()), name=name,
                     description=text(values, "description"), is_public=bool(public),
                     extra_specs=specs)
    return JSONResponse({"volume_type": views.volume_type(row)})


@router.get("/v3/{project_id}/types")
def list_types(request: Request, project_id: str) -> JSONResponse:
    call(request, project_id)
    with runtime(request).engine.connect() as conn:
        rows = conn.execute(select(db.volume_types).order_by(db.volume_types.c.name)).mappings()
        return JSONResponse({"volume_types": [views.volume_type(dict(r)) for r in rows]})


@router.get("/v3/{project_id}/types/{type_id}")
def show_type(request: Request, project_id: str, type_id: str) -> JSONResponse:
    call(request, project_id)
    with runtime(request).engine.connect() as conn:
        return JSONResponse({"volume_type": views.volume_type(find_type(conn, type_id))})


@router.delete("/v3/{project_id}/types/{type_id}", status_code=202)
def delete_type(request: Request, project_id: str, type_id: str) -> Response:
    scope = call(request, project_id)
    admin(scope, "volume_extension:types_manage")
    with runtime(request).engine.begin() as conn:
        row = find_type(conn, type_id)
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
    scope = call(request, project_id)
    admin(scope, "volume_extension:types_extra_specs:create")
    specs = section(body, "extra_specs")
    if not _string_map(specs):
        raise BadRequest("Invalid input received: extra_specs must map strings to strings")
    with runtime(request).engine.begin() as conn:
        row = find_type(conn, type_id)
        merged = {**row["extra_specs"], **specs}
        conn.execute(db.volume_types.update().where(db.volume_types.c.id == row["id"])
                     .values(extra_specs=merged))
    return JSONResponse({"extra_specs": specs})
