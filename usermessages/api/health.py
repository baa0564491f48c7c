"""``/healthcheck``: oslo.middleware's healthcheck, what HAProxy and kolla probe.

200 (204 to HEAD) while every backend of ``[healthcheck] backends`` is available,
503 with their reasons otherwise. The backends are the database and the bus
(usermessages.health) unless the file lists others, e.g. oslo's
``disable_by_file`` to drain a node before maintenance. No token is needed (a
load balancer has none), and Keystone being down changes nothing here.

oslo.middleware shows details (each backend's, the threads' stacks, the
Python version) to everyone when ``[healthcheck] detailed`` is on; here only an
admin gets them (a token the ``context_is_admin`` rule passes, in either auth
mode), and anyone else gets the reasons alone, whatever the setting. The
middleware is WSGI; a2wsgi runs it in a small pool of threads of its own.
"""

from __future__ import annotations

from typing import Any

import anyio
from a2wsgi import WSGIMiddleware
from oslo_middleware import healthcheck
from starlette.datastructures import Headers
from starlette.types import Receive, Scope, Send

from usermessages import config
from usermessages.errors import NOT_FOUND_TEXT, UserMessagesError
from usermessages.reader import Reader
from usermessages.web.faults import fault_body

PATH = "/healthcheck"
DEFAULT_BACKENDS = ["usermessages_database", "usermessages_bus"]
# Requests served at once, per audience (they share each backend's probe); more wait.
WORKERS = 16


def _not_found(environ: dict, start_response: Any) -> list[bytes]:
    """Where oslo's middleware passes a request it ignores (``allowed_source_ranges``,
    ``ignore_proxied_requests``): no such route, as for any other unknown path."""
    start_response("404 Not Found", [("Content-Type", "application/json")])
    return [fault_body(404, NOT_FOUND_TEXT)]


def _healthcheck(settings: config.Settings, *, detailed: bool) -> Any:
    conf = config.oslo_conf(settings)
    conf.set_default("backends", DEFAULT_BACKENDS, group="healthcheck")
    if not detailed:
        conf.set_override("detailed", False, group="healthcheck")
    return healthcheck.Healthcheck(_not_found, conf)


class Healthcheck:
    """The ASGI endpoint: picks the answer for the caller, then runs oslo's."""

    def __init__(self, reader: Reader) -> None:
        self._reader = reader
        self._plain = WSGIMiddleware(_healthcheck(reader.settings, detailed=False),
                                     workers=WORKERS)
        self._detailed = self._plain
        if config.oslo_conf(reader.settings).healthcheck.detailed:
            self._detailed = WSGIMiddleware(_healthcheck(reader.settings, detailed=True),
                                            workers=WORKERS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        answer = self._plain
        if self._detailed is not self._plain and await self._is_admin(scope):
            answer = self._detailed
        await answer(scope, receive, send)  # type: ignore[arg-type]

    async def _is_admin(self, scope: Scope) -> bool:
        token = Headers(scope=scope).get("x-auth-token")
        if not token:
            return False
        try:
            caller = await anyio.to_thread.run_sync(self._reader.session_caller, token)
        except UserMessagesError:  # refused, or Keystone cannot say: no details
            return False
        return self._reader.policy.is_admin(caller)
