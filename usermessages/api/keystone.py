"""Keystone in front of the API: each versioned request's token validated by auth_token.

The validation itself is the reader's (``reader.keystone.TokenValidator``);
this is the ASGI side: which paths it guards, where the validated Caller goes,
and the answer when it refuses (auth_token's own 401 as it is, as Cinder's;
Keystone failing as a Cinder fault, never webob's HTML page).
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from usermessages.reader.keystone import Refusal, TokenValidator
from usermessages.web.faults import INTERNAL_ERROR_TEXT, fault_body

KEYSTONE_UNAVAILABLE_TEXT = "The Keystone service is temporarily unavailable."
_JSON = [(b"content-type", b"application/json")]


def is_protected(path: str) -> bool:
    """Every versioned path, except the version document keystoneauth discovers."""
    return path.startswith("/v3/") and path != "/v3/"


def answer(refusal: Refusal) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """The response to a refused request: status, headers, body."""
    if refusal.status < 500:
        return refusal.status, refusal.headers, refusal.body
    text = KEYSTONE_UNAVAILABLE_TEXT if refusal.status == 503 else INTERNAL_ERROR_TEXT
    return refusal.status, _JSON, fault_body(refusal.status, text)


class KeystoneMiddleware:
    """Puts the validated Caller in scope["state"]["caller"], or answers the refusal."""

    def __init__(self, app: ASGIApp, validator: TokenValidator,
                 protected: Callable[[str], bool] = is_protected) -> None:
        self.app = app
        self.validator = validator
        self.protected = protected

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.protected(scope["path"]):
            await self.app(scope, receive, send)
            return
        result = await self.validator.validate_async(scope["headers"])
        if isinstance(result, Refusal):
            status, headers, body = answer(result)
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        scope.setdefault("state", {})["caller"] = result
        await self.app(scope, receive, send)
