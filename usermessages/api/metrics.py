"""/metrics on the API port: to anyone, to admins only, or not at all (its own listener).

With several API workers (``[api] workers``) each process writes its values to
files in ``PROMETHEUS_MULTIPROC_DIR`` (prometheus_client's multiprocess mode,
set up by usermessages.supervisor), and /metrics on any worker, or the
supervisor's own listener, reads them all: one answer for the node, however
the balancer or the kernel spread the requests. Counters of workers that died
stay in the sums; gauges count live processes only.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from fastapi import Request
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
    start_http_server,
)

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
        # Counters of this node's processes (API, collector...); never message data.
        return Response(generate_latest(registry()), media_type=CONTENT_TYPE_LATEST)

    return metrics


def registry() -> CollectorRegistry:
    """What /metrics shows: every process's values in multiprocess mode, else this one's."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    combined = CollectorRegistry()
    multiprocess.MultiProcessCollector(combined)
    return combined


def start_listener(settings: Settings, path: str | None = None) -> None:
    """Serve /metrics alone on [api] metrics_host:metrics_port, if set (a daemon thread).

    ``path``: the multiprocess directory whose files it serves (the supervisor's
    listener, for its workers); else this process's values.
    """
    if not settings.metrics_port:
        return
    served = REGISTRY
    if path is not None:
        served = CollectorRegistry()
        multiprocess.MultiProcessCollector(served, path=path)
    start_http_server(settings.metrics_port, addr=settings.metrics_host, registry=served)
