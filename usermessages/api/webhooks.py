"""``/v3/{project_id}/messages-ext/webhooks``: a project's signed webhook subscriptions.

Create (the secret is in that answer only), list, show, delete, and each
subscription's delivery log. Delivery itself is ``usermessages.webhooks.deliverer``.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from usermessages.api.messages import begin
from usermessages.errors import BadRequest
from usermessages.reader import (
    WEBHOOKS_DELIVERIES,
    WEBHOOKS_GET,
    WEBHOOKS_GET_ALL,
    Reader,
    Scope,
)
from usermessages.store import webhooks as store_webhooks
from usermessages.web.views import timestamp
from usermessages.webhooks import subscriptions
from usermessages.webhooks.subscriptions import view

router = APIRouter()

MAX_BODY = 8192
DELIVERIES_DEFAULT, DELIVERIES_MAX = 50, 500


def _reader(request: Request) -> Reader:
    return request.app.state.reader


def _scope(request: Request, project_id: str, rule: str | None = None) -> Scope:
    """Authenticated as the messages routes are; authorized by ``rule`` (a read: creating
    and deleting authorize themselves, audited, in the reader)."""
    scope = begin(request, project_id).scope
    if rule is not None:
        _reader(request).policy.authorize(rule, scope.caller, project_id)
    return scope


def _fields(raw: bytes) -> dict[str, Any]:
    """The body ``{"webhook": {"url": ..., filters...}}``, checked; 400 for anything else."""
    if len(raw) > MAX_BODY:
        raise BadRequest(f"The request body must be at most {MAX_BODY} bytes.")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest("The request body must be JSON: "
                         '{"webhook": {"url": "https://..."}}.') from exc
    webhook = body.get("webhook") if isinstance(body, dict) else None
    if not isinstance(webhook, dict) or set(webhook) - set(subscriptions.FIELDS):
        raise BadRequest('The request body must be {"webhook": {...}} with only: '
                         + ", ".join(subscriptions.FIELDS) + ".")
    return webhook


def _create(request: Request, project_id: str, raw: bytes) -> dict[str, Any]:
    scope = _scope(request, project_id)
    row, secret = _reader(request).create_webhook(scope, project_id, _fields(raw))
    return {"webhook": {**view(row), "secret": secret}}


async def create_webhook(request: Request, project_id: str) -> JSONResponse:
    raw = b""
    async for chunk in request.stream():  # bounded: never buffer a huge body
        raw += chunk
        if len(raw) > MAX_BODY:
            raise BadRequest(f"The request body must be at most {MAX_BODY} bytes.")
    body = await run_in_threadpool(_create, request, project_id, raw)
    return JSONResponse(body, status_code=201)


def list_webhooks(request: Request, project_id: str) -> JSONResponse:
    _scope(request, project_id, WEBHOOKS_GET_ALL)
    with _reader(request).engine.connect() as conn:
        rows = store_webhooks.list_for_project(conn, project_id)
    return JSONResponse({"webhooks": [view(row) for row in rows]})


def show_webhook(request: Request, project_id: str, webhook_id: str) -> JSONResponse:
    _scope(request, project_id, WEBHOOKS_GET)
    with _reader(request).engine.connect() as conn:
        row = store_webhooks.get(conn, project_id, webhook_id)
    return JSONResponse({"webhook": view(row)})


def delete_webhook(request: Request, project_id: str, webhook_id: str) -> Response:
    _reader(request).delete_webhook(_scope(request, project_id), project_id, webhook_id)
    return Response(status_code=204)


def _delivery(row: dict[str, Any]) -> dict[str, Any]:
    return {"message_id": row["message_id"], "seq": row["seq"], "attempt": row["attempt"],
            "status_code": row["status_code"], "error": row["error"] or None,
            "outcome": row["outcome"], "created_at": timestamp(row["created_at"])}


def list_deliveries(request: Request, project_id: str, webhook_id: str) -> JSONResponse:
    _scope(request, project_id, WEBHOOKS_DELIVERIES)
    raw = request.query_params.get("limit", str(DELIVERIES_DEFAULT))
    if not raw.isdigit() or not 1 <= int(raw) <= DELIVERIES_MAX:
        raise BadRequest(f"limit must be a whole number from 1 to {DELIVERIES_MAX}.")
    with _reader(request).engine.connect() as conn:
        rows = store_webhooks.deliveries(conn, project_id, webhook_id, int(raw))
    return JSONResponse({"deliveries": [_delivery(row) for row in rows]})


_BASE = "/v3/{project_id}/messages-ext/webhooks"
router.add_api_route(_BASE, create_webhook, methods=["POST"], status_code=201,
                     summary="Subscribe a URL to the project's new messages", tags=["webhooks"])
router.add_api_route(_BASE, list_webhooks, methods=["GET"], summary="List webhooks",
                     tags=["webhooks"])
router.add_api_route(_BASE + "/{webhook_id}", show_webhook, methods=["GET"],
                     summary="Show a webhook", tags=["webhooks"])
router.add_api_route(_BASE + "/{webhook_id}", delete_webhook, methods=["DELETE"],
                     status_code=204, summary="Delete a webhook", tags=["webhooks"])
router.add_api_route(_BASE + "/{webhook_id}/deliveries", list_deliveries, methods=["GET"],
                     summary="A webhook's delivery log, newest first", tags=["webhooks"])
