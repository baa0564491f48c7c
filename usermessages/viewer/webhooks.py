"""The viewer's webhooks page: list the project's subscriptions, create one (its secret
shown on that answer only), delete one. Same rules as the API (``webhooks.subscriptions``).
"""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from usermessages.catalog import Level, Resource
from usermessages.errors import BadRequest, Forbidden
from usermessages.reader import WEBHOOKS_GET_ALL, Caller
from usermessages.store import webhooks as store_webhooks
from usermessages.viewer import csrf
from usermessages.viewer.routes import _caller, _reader, _render
from usermessages.webhooks import subscriptions

router = APIRouter(include_in_schema=False)


def _member(request: Request) -> Caller:
    """A caller who may see the page: it lists the project's webhooks."""
    caller = _caller(request)
    if not caller.project_id:
        # A system-scoped token has no project (the API answers it 400 on a project's URL).
        raise Forbidden("Webhooks belong to a project: switch to one of your projects to "
                        "manage its webhooks.")
    _reader(request).policy.authorize(WEBHOOKS_GET_ALL, caller, caller.project_id)
    return caller


def _page(request: Request, caller: Caller, status: int = 200, **context: object) -> HTMLResponse:
    with _reader(request).engine.connect() as conn:
        rows = store_webhooks.list_for_project(conn, caller.project_id)
    return _render(request, "webhooks.html", status=status,
                   webhooks=[subscriptions.view(row) for row in rows],
                   levels=[level.value for level in Level],
                   resource_types=[resource.value for resource in Resource],
                   flash=request.session.pop("flash", None),
                   **context)


@router.get("/webhooks")
def webhooks_page(request: Request) -> HTMLResponse:
    return _page(request, _member(request))


@router.post("/webhooks")
def create(request: Request, url: str = Form(""), message_level: str = Form(""),
           event_id: str = Form(""), resource_type: str = Form(""),
           form_token: str = Form("", alias="csrf")) -> HTMLResponse:
    caller = _member(request)
    csrf.check(request, form_token)
    fields = {"url": url.strip(), "message_level": message_level,
              "event_id": event_id.strip(), "resource_type": resource_type}
    reader = _reader(request)
    try:
        row, secret = reader.create_webhook(reader.scope(caller), caller.project_id, fields)
    except BadRequest as exc:
        return _page(request, caller, status=400, error=exc.message, form=fields)
    # Rendered, not redirected: the secret is never stored, in the session or anywhere.
    return _page(request, caller, status=201, created=subscriptions.view(row), secret=secret)


@router.post("/webhooks/{webhook_id}/delete")
def delete(request: Request, webhook_id: str,
           form_token: str = Form("", alias="csrf")) -> Response:
    caller = _member(request)
    csrf.check(request, form_token)
    reader = _reader(request)
    reader.delete_webhook(reader.scope(caller), caller.project_id, webhook_id)
    request.session["flash"] = f"Webhook {webhook_id} deleted."
    return RedirectResponse("/viewer/webhooks", status_code=303)
