"""``/v3/{project_id}/messages-ext/webhooks``: a project's signed webhook subscriptions.

Create (the secret is in that answer only), list, show, delete, and each
subscription's delivery log. Delivery itself is ``usermessages.webhooks.deliverer``.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from usermessages.api.messages import begin
from usermessages.catalog import Level, Resource
from usermessages.errors import BadRequest, HTTPError
from usermessages.reader import WEBHOOKS, Reader, Scope
from usermessages.store import messages as store
from usermessages.store import webhooks as store_webhooks
from usermessages.web.views import timestamp
from usermessages.webhooks import signing
from usermessages.webhooks.targets import Targets

router = APIRouter()

MAX_PER_PROJECT = 20
MAX_BODY = 8192
DELIVERIES_DEFAULT, DELIVERIES_MAX = 50, 500
FIELDS = ("url", "message_level", "event_id", "resource_type")


class OverLimit(HTTPError):
    status = 413


def _reader(request: Request) -> Reader:
    return request.app.state.reader


def _scope(request: Request, project_id: str) -> Scope:
    """Authenticated as the messages routes are; the project's members manage its webhooks."""
    scope = begin(request, project_id).scope
    _reader(request).policy.authorize(WEBHOOKS, scope.caller, project_id)
    return scope


def view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"], "url": row["url"],
        "message_level": row["message_level"] or None, "event_id": row["event_id"] or None,
        "resource_type": row["resource_type"] or None,
        "enabled": row["enabled"], "disabled_reason": row["disabled_reason"] or None,
        "consecutive_failures": row["failures"], "created_at": timestamp(row["created_at"]),
    }


def _fields(raw: bytes) -> dict[str, str]:
    """The body ``{"webhook": {"url": ..., filters...}}``, checked; 400 for anything else."""
    if len(raw) > MAX_BODY:
        raise BadRequest(f"The request body must be at most {MAX_BODY} bytes.")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest("The request body must be JSON: "
                         '{"webhook": {"url": "https://..."}}.') from exc
    webhook = body.get("webhook") if isinstance(body, dict) else None
    if not isinstance(webhook, dict) or set(webhook) - set(FIELDS):
        raise BadRequest('The request body must be {"webhook": {...}} with only: '
                         + ", ".join(FIELDS) + ".")
    values = {key: webhook.get(key) or "" for key in FIELDS}
    if not all(isinstance(v, str) for v in values.values()):
        raise BadRequest("Every webhook field must be a string.")
    if not values["url"]:
        raise BadRequest("A webhook needs a url.")
    levels = [level.value for level in Level]
    if values["message_level"] and values["message_level"] not in levels:
        raise BadRequest("message_level must be one of " + ", ".join(levels) + ".")
    types = [resource.value for resource in Resource]
    if values["resource_type"] and values["resource_type"] not in types:
        raise BadRequest("resource_type must be one of " + ", ".join(types) + ".")
    event = values["event_id"]
    if event and (len(event) > 255 or not event.isascii() or not event.isprintable()):
        raise BadRequest("event_id must be printable ASCII of at most 255 characters.")
    return values


def _create(request: Request, project_id: str, raw: bytes) -> dict[str, Any]:
    scope = _scope(request, project_id)
    values = _fields(raw)
    reader = _reader(request)
    Targets.from_settings(reader.settings).check(values["url"])
    secret = signing.new_secret()
    with reader.engine.begin() as conn:
        if store_webhooks.count(conn, project_id) >= MAX_PER_PROJECT:
            raise OverLimit(f"A project may have at most {MAX_PER_PROJECT} webhooks.")
        row = {"id": str(uuid.uuid4()), "project_id": project_id,
               "user_id": scope.caller.user_id, "secret": secret, "enabled": True,
               "disabled_reason": "", "failures": 0, "created_at": store.utcnow(),
               # From now on: messages stored before the subscription are not sent.
               "cursor": store.last_seq(conn), **values}
        store_webhooks.create(conn, row)
    return {"webhook": {**view(row), "secret": secret}}


async def create_webhook(request: Request, project_id: str) -> JSONResponse:
    raw = await request.body()
    body = await run_in_threadpool(_create, request, project_id, raw)
    return JSONResponse(body, status_code=201)


def list_webhooks(request: Request, project_id: str) -> JSONResponse:
    _scope(request, project_id)
    with _reader(request).engine.connect() as conn:
        rows = store_webhooks.list_for_project(conn, project_id)
    return JSONResponse({"webhooks": [view(row) for row in rows]})


def show_webhook(request: Request, project_id: str, webhook_id: str) -> JSONResponse:
    _scope(request, project_id)
    with _reader(request).engine.connect() as conn:
        row = store_webhooks.get(conn, project_id, webhook_id)
    return JSONResponse({"webhook": view(row)})


def delete_webhook(request: Request, project_id: str, webhook_id: str) -> Response:
    _scope(request, project_id)
    with _reader(request).engine.begin() as conn:
        store_webhooks.remove(conn, project_id, webhook_id)
    return Response(status_code=204)


def _delivery(row: dict[str, Any]) -> dict[str, Any]:
    return {"message_id": row["message_id"], "seq": row["seq"], "attempt": row["attempt"],
            "status_code": row["status_code"], "error": row["error"] or None,
            "outcome": row["outcome"], "created_at": timestamp(row["created_at"])}


def list_deliveries(request: Request, project_id: str, webhook_id: str) -> JSONResponse:
    _scope(request, project_id)
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
