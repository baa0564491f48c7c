"""``messages-ext/messages/{id}``: a message with the way out of it, in the reader's language.

Cinder's message fields plus what the catalog advises for its detail:
``remediation``, ``action_required``, ``help_url`` and the ``language`` of
the texts. Kept out of ``/messages``, whose body tempest's schemas fix.
Read under the same rule as showing a message (``message:get``).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from usermessages.api.messages import begin
from usermessages.reader import Reader
from usermessages.translations import content_language
from usermessages.web.projections import advice

router = APIRouter()


def show_explained(request: Request, message_id: str,
                   project_id: str | None = None) -> JSONResponse:
    call = begin(request, project_id)
    reader: Reader = request.app.state.reader
    row = reader.get(call.scope, message_id)
    body = call.view.detail(row)
    advised = advice(row, call.view.catalog)
    body.update({
        "remediation": advised.remediation,
        "action_required": advised.action_required,
        "help_url": advised.help_url or None,
        "language": content_language(call.language),
    })
    return call.respond({"message": body})


def _show_any(request: Request, message_id: str) -> JSONResponse:
    return show_explained(request, message_id)


# Project-less first, so /v3/messages-ext/... never reads "messages-ext" as a project.
router.add_api_route("/v3/messages-ext/messages/{message_id}", _show_any, methods=["GET"],
                     summary="Show a message with its remediation", tags=["messages-ext"])
router.add_api_route("/v3/{project_id}/messages-ext/messages/{message_id}", show_explained,
                     methods=["GET"], summary="Show a message with its remediation",
                     tags=["messages-ext"])
