"""Logging as every OpenStack service logs: oslo.log, and a request context per API call.

The service's commands call ``setup`` once their settings are loaded; oslo.log's
own options in the file (``[DEFAULT] debug``, ``log_file``, ``log_dir``,
``log_config_append``, ``use_journal``, ``use_syslog``, ``use_json``...) decide
where lines go and how they look. With no destination configured, lines go to
stderr, not to oslo.log's stdout (a command's stdout is its output), and only
warnings and errors unless ``-v`` (info) or ``debug`` (everything). With
``debug``, the first lines are every option's value, as oslo services log them
(secret ones masked).

The API begins an oslo.context ``RequestContext`` per request (its request id,
the caller's global request id), and the reader adds the user and project once
it knows them, so every line logged while the request runs carries them
(oslo.log's context format: ``[global_request_id request_id user project ...]``).
oslo.context keeps its current context in a thread-local, which a request served
partly in the event loop and partly in worker threads would lose; here a
ContextVar holds it (anyio copies it into each worker thread) and a filter on
every handler puts it on the record, where oslo.log's formatter looks first.
"""

from __future__ import annotations

import contextvars
import logging
import re
import sys
from importlib.metadata import version

from oslo_context import context as oslo_context
from oslo_log import log as oslo_log

from usermessages import config
from usermessages.config import Settings

LOG = logging.getLogger(__name__)
PROGRAM = "usermessages"
# Libraries whose info lines say nothing to an operator, beside oslo.log's own list.
# sqlalchemy.pool: a connection the server dropped fails its rollback on the way back to
# the pool, and the pool logs that with a traceback; the outage itself is logged once,
# in words, by whoever met it (the collector's "store unavailable", the API's 503 line).
QUIET = ("alembic=WARN", "uvicorn=WARN", "httpx=WARN", "httpcore=WARN", "a2wsgi=WARN",
         "sqlalchemy.pool=CRITICAL")
# What oslo.middleware's request_id middleware accepts as an inbound global request id.
GLOBAL_REQUEST_ID = re.compile(r"req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-"
                               r"[0-9a-f]{12}")
# Options that send lines somewhere: without any, they go to the console (stderr).
_DESTINATIONS = ("log_file", "log_dir", "log_config_append", "use_journal", "use_syslog")

_CURRENT: contextvars.ContextVar[oslo_context.RequestContext | None] = contextvars.ContextVar(
    "usermessages_request_context", default=None)


def begin(request_id: str, global_request_id: str | None = None) -> contextvars.Token:
    """Start a request's context; ``end`` it with the token returned. An inbound
    global request id that is not oslo's ``req-<uuid>`` is ignored, as oslo.middleware
    ignores it."""
    if global_request_id is not None and not GLOBAL_REQUEST_ID.fullmatch(global_request_id):
        global_request_id = None
    # overwrite=False: never the thread-local "current" context (see the module's doc).
    context = oslo_context.RequestContext(request_id=request_id,
                                          global_request_id=global_request_id,
                                          overwrite=False)
    return _CURRENT.set(context)


def end(token: contextvars.Token) -> None:
    _CURRENT.reset(token)


def current() -> oslo_context.RequestContext | None:
    """The context of the request being served here, if any."""
    return _CURRENT.get()


def identify(user_id: str, project_id: str | None, roles: tuple[str, ...] = (), *,
             system_scope: str | None = None, domain_id: str | None = None) -> None:
    """Name the current request's caller, once verified. The context object is shared
    with the event loop's part of the request, so it is updated in place."""
    context = _CURRENT.get()
    if context is None:
        return
    context.user_id = user_id
    context.project_id = project_id or None
    context.roles = list(roles)
    context.system_scope = system_scope
    context.domain_id = domain_id


class _RequestContext(logging.Filter):
    """Puts the current request's context on each record (oslo.log's formatter reads it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if "context" not in record.__dict__:
            context = _CURRENT.get()
            if context is not None:
                record.context = context
        return True


class _Console(logging.StreamHandler):  # type: ignore[type-arg]
    """stderr as it is when a line is written (a test runner swaps it per command)."""

    @property  # type: ignore[override]
    def stream(self) -> object:
        return sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:
        pass


def setup(settings: Settings, *, verbose: bool = False) -> None:
    """Configure logging from the file's oslo.log options (see the module's doc)."""
    conf = config.oslo_conf(settings)
    written = {name for _, _, name, _ in settings.library_options}
    if "default_log_levels" not in written:
        conf.set_default("default_log_levels", [*conf.default_log_levels, *QUIET])
    oslo_log.setup(conf, PROGRAM, version=version("usermessages"))
    root = logging.getLogger()
    if "use_stderr" not in written and not any(conf[name] for name in _DESTINATIONS):
        # oslo.log fell back to stdout: the console is stderr here, and quieter.
        for handler in list(root.handlers):
            if isinstance(handler, logging.StreamHandler) and handler.stream is sys.stdout:
                root.removeHandler(handler)
                console = _Console()
                console.setFormatter(handler.formatter)
                root.addHandler(console)
        level = logging.DEBUG if conf.debug else logging.INFO if verbose else logging.WARNING
        for handler in root.handlers:
            if isinstance(handler, _Console):
                handler.setLevel(level)
    for handler in root.handlers:
        if not any(isinstance(f, _RequestContext) for f in handler.filters):
            handler.addFilter(_RequestContext())
    # As every oslo service: with debug, every option's value first (secrets masked).
    conf.log_opt_values(LOG, logging.DEBUG)
