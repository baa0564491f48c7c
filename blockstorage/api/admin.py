"""Admin only: service states (``os-services``) and fault injection (``os-faults``)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import select

from blockstorage import db, views
from blockstorage.api.common import admin, call, json_body, runtime, section, text
from blockstorage.config import OPERATIONS
from blockstorage.heartbeat import is_up
from usermessages.errors import BadRequest, NotFound

router = APIRouter(tags=["block storage"])


@router.get("/v3/{project_id}/os-services")
def list_services(request: Request, project_id: str) -> JSONResponse:
    admin(call(request, project_id), "volume_extension:services:index")
    rt = runtime(request)
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
    admin(call(request, project_id), "blockstorage:faults")
    with runtime(request).engine.connect() as conn:
        rows = conn.execute(select(db.faults)).mappings().all()
    return JSONResponse({"faults": [{"id": r["id"], "backend": r["backend"],
                                     "operation": r["operation"]} for r in rows]})


@router.post("/v3/{project_id}/os-faults", status_code=201)
def inject_fault(request: Request, project_id: str,
                 body: dict = Depends(json_body)) -> JSONResponse:
    """Make a backend (or ``backup``) fail an operation until the fault is removed."""
    admin(call(request, project_id), "blockstorage:faults")
    values = section(body, "fault")
    backend, operation = text(values, "backend", 64), text(values, "operation", 64)
    rt = runtime(request)
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
    admin(call(request, project_id), "blockstorage:faults")
    with runtime(request).engine.begin() as conn:
        if db.get(conn, db.faults, fault_id[:36]) is None:
            raise NotFound(f"Fault {fault_id[:64]} could not be found.")
        db.delete_row(conn, db.faults, fault_id[:36])
    return Response(status_code=204)
