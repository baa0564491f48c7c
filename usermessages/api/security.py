"""Security headers on every API and viewer response.

The viewer loads only its own script and stylesheet, so the CSP forbids
inline script and framing everywhere; the Swagger page at /api-docs, which
needs its CDN and an inline script, gets the other headers only.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
ALWAYS = {
    "X-Content-Type-Options": "nosniff",
    # Not no-referrer: with it, browsers send "Origin: null" on same-origin form posts.
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}
NO_CSP = ("/api-docs",)


def _private(path: str) -> bool:
    """Pages that show a caller's data must not be kept by browsers or proxies."""
    return path.startswith(("/v3/", "/viewer/", "/metrics")) and not path.startswith(
        "/viewer/static/")


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in ALWAYS.items():
                    headers.setdefault(name, value)
                if not path.startswith(NO_CSP):
                    headers.setdefault("Content-Security-Policy", CSP)
                if _private(path):
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)
