"""Refuse cross-site POSTs to the viewer before any route sees them.

Browsers send Sec-Fetch-Site (and Origin) on form posts: a post from
another site is refused even if it carried a valid form token. Requests
without either header (curl, old browsers) still need the form token.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

ALLOWED_FETCH_SITES = ("same-origin", "none")


def _same_host(origin: str, headers: Headers) -> bool:
    # Hosts only: behind a TLS-terminating proxy the scheme seen here differs.
    hosts = {headers.get("host", "")}
    if headers.get("x-forwarded-host"):
        hosts.add(headers["x-forwarded-host"].split(",")[-1].strip())
    return urlsplit(origin).netloc in hosts


class SameOriginPosts:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in ("GET", "HEAD", "OPTIONS"):
            headers = Headers(scope=scope)
            site = headers.get("sec-fetch-site")
            origin = headers.get("origin")
            # Sec-Fetch-Site is the browser's own verdict; Origin where it is missing.
            refused = site not in ALLOWED_FETCH_SITES if site is not None else (
                origin is not None and not _same_host(origin, headers))
            if refused:
                response = PlainTextResponse("Cross-site request refused.", status_code=403)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
