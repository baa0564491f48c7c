"""The small HTTP toolkit shared by every front end: microversions, faults, Cinder's time
format, and what each audience sees of a stored message (``projections``).

Routes mounted beside the messages API (the reference block-storage service)
use these and ``usermessages.reader``, never ``usermessages.api`` internals.
"""

from __future__ import annotations

from fastapi import Request

from usermessages.config import Settings
from usermessages.errors import NOT_FOUND_TEXT, NotFound
from usermessages.web.faults import fault_body
from usermessages.web.microversion import MAX_VERSION, MIN_VERSION, APIVersion
from usermessages.web.views import timestamp

__all__ = [
    "APIVersion", "MAX_VERSION", "MIN_VERSION", "NOT_FOUND_TEXT", "api_version", "base_url",
    "fault_body", "require_version", "timestamp",
]


def api_version(request: Request) -> APIVersion:
    """The microversion the API middleware negotiated for this request."""
    return request.state.api_version


def require_version(request: Request, minimum: APIVersion) -> APIVersion:
    """The request's microversion; a route older than asked for is Cinder's 404."""
    version = api_version(request)
    if version < minimum:
        raise NotFound(NOT_FOUND_TEXT)
    return version


def base_url(request: Request, settings: Settings) -> str:
    """The endpoint as the client reached it (or ``public_endpoint``), for links."""
    if settings.public_endpoint:
        return settings.public_endpoint.rstrip("/")
    base = str(request.base_url).rstrip("/")
    forwarded = request.headers.get("x-forwarded-host")
    if forwarded:
        host = forwarded.split(",")[-1].strip()
        scheme, _, rest = base.partition("://")
        path = rest.partition("/")[2]
        base = f"{scheme}://{host}" + (f"/{path}" if path else "")
    return base
