"""/metrics on the API port: to anyone, to admins only, or not at all (its own listener)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest, start_http_server

from usermessages.api.keystone import is_protected
from usermessages.config import Settings
from usermessages.errors import Forbidden
from usermessages.reader.identity import identify


def keystone_protected(settings: Settings) -> Callable[[str], bool]:
    """The paths auth_token validates: /v3/..., and /metrics when it is for admins."""
    if settings.metrics == "admin":
        return lambda path: is_protected(path) or path == "/metrics"
    return is_protected


def metrics_route(settings: Settings) -> Callable[[Request], Response]:
    def metrics(request: Request) -> Response:
        if settings.metrics == "admin":
            caller = identify(request.headers, request.state, settings)
            if not request.app.state.reader.policy.is_admin(caller):
                raise Forbidden("Policy doesn't allow metrics to be read.")
        # Counters of this process (SDK, collector) only; never message data.
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return metrics


def start_listener(settings: Settings) -> None:
    """Serve /metrics alone on [api] metrics_host:metrics_port, if set (a daemon thread)."""
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr=settings.metrics_host)
