"""The composition root of ``usermessages serve``: the API with the viewer, and the
background parts (collector, reaper, webhook deliverer), in one process or in workers.

``serve`` runs it all in one process (``[api] workers = 1``, and the reference
service's all-in-one, which adds its own routes and components);
``serve_workers`` runs N API workers on one port and the background parts once,
in a process of their own, under ``usermessages.supervisor``. The API package
knows nothing of the viewer or the collector; only this module puts them side
by side, above both front ends, over one ``Reader``.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import logging
import os
import secrets
import shutil
import signal
import socket
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence

import uvicorn
from fastapi import FastAPI
from sqlalchemy import Engine

from usermessages import logs
from usermessages.api.app import create_api
from usermessages.api.metrics import start_listener as start_metrics_listener
from usermessages.catalog import Catalog
from usermessages.collector import Collector
from usermessages.config import Settings
from usermessages.errors import UserMessagesError
from usermessages.notifications import sources_from_settings
from usermessages.reader import Reader
from usermessages.reaper import PeriodicReaper
from usermessages.store import engine as store_engine
from usermessages.supervisor import Child, Supervisor
from usermessages.viewer import create_viewer
from usermessages.web.limits import Limits, new_holder, release_holder
from usermessages.webhooks.deliverer import Deliverer

LOG = logging.getLogger(__name__)

Background = Callable[[threading.Event], None]


class ListenError(UserMessagesError):
    """The API's address cannot be bound (in use, not ours, no such address)."""


def create_app(
    settings: Settings,
    *,
    engine: Engine | None = None,
    catalog: Catalog | None = None,
    holder: str | None = None,
) -> FastAPI:
    """The API with the Event Viewer at /viewer, over one reader.

    Building the reader loads the catalog and policy: a bad file is a start-up error.
    The viewer is mounted inside the API app, so its middlewares (request ids,
    security headers, the store deadline) cover the viewer's pages too.
    ``holder``: this process's name on the stream and export slots it takes.
    """
    reader = Reader.from_settings(settings, engine=engine, catalog=catalog)
    # One count of streams and exports for both front ends, in the store: the caps
    # hold across every worker and node.
    limits = Limits.from_settings(settings, reader.engine, holder)
    app = create_api(reader, limits)
    app.mount("/viewer", create_viewer(reader, settings.viewer_secret_key, limits))
    return app


def listen(host: str, port: int) -> socket.socket:
    """Bind and listen before saying "serving", so the banner is never a lie."""
    try:
        family, kind, proto, _, _ = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        # With getaddrinfo's proto (IPPROTO_TCP), not 0: asyncio sets TCP_NODELAY only on
        # sockets that say TCP, and without it every response waited ~40 ms (Nagle against
        # the client's delayed ACK).
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        hint = ""
        if exc.errno == errno.EADDRINUSE:
            hint = (": the address is already in use (is another server running? "
                    "choose another with --port)")
        elif exc.errno == errno.EACCES:
            hint = ": permission denied (ports below 1024 need privileges)"
        raise ListenError(f"cannot listen on {host}:{port}{hint or f': {exc}'}") from exc
    sock.set_inheritable(True)
    return sock


def serve(
    settings: Settings,
    engine: Engine,
    *,
    app: FastAPI | None = None,
    background: Sequence[tuple[str, Background]] = (),
    sock: socket.socket | None = None,
) -> None:
    """Everything in this one process (``[api] workers = 1``, and the reference service's
    all-in-one): run until interrupted (Ctrl-C or SIGTERM, handled by uvicorn), then
    stop every part.

    ``background`` are extra ``(name, run(stop))`` components run in threads;
    ``sock`` is the already bound socket from ``listen`` (else one is bound here).
    """
    sock = sock or listen(settings.host, settings.port)
    if threading.current_thread() is threading.main_thread():
        # uvicorn re-raises the SIGTERM it handled once it has stopped: by default that
        # kills the process before the finally below (threads joined, reaper stopped).
        signal.signal(signal.SIGTERM, _exit_cleanly)
    with running(settings, engine, background):
        start_metrics_listener(settings)
        app = app or create_app(settings, engine=engine)
        _serve_app(app, sock)


def running_parts(settings: Settings) -> list[str]:
    """The background parts ``running`` starts for ``settings``, by name."""
    return [name for name, wanted in (("collector", settings.collector_embedded),
                                      ("reaper", settings.message_reap_interval > 0),
                                      ("webhooks", settings.webhooks_embedded)) if wanted]


@contextlib.contextmanager
def running(settings: Settings, engine: Engine,
            extra: Sequence[tuple[str, Background]] = ()) -> Iterator[None]:
    """The parts that run once per node, beside the API, until the block ends: the
    embedded collector and webhook deliverer (as configured), the reaper, and ``extra``."""
    stop = threading.Event()
    parts = list(extra)
    if settings.collector_embedded:
        collector = Collector.from_settings(settings, engine, sources_from_settings(settings))
        parts.insert(0, ("collector", collector.run))
    if settings.webhooks_embedded:
        parts.append(("webhooks", Deliverer(settings, engine).run))
    threads = [threading.Thread(target=run, args=(stop,), name=name, daemon=True)
               for name, run in parts]
    reaper = PeriodicReaper(engine, settings.message_reap_interval,
                            settings.message_reap_batch_size, settings.message_ttl)
    for thread in threads:
        thread.start()
    reaper.start()
    try:
        yield
    finally:
        stop.set()
        reaper.stop()
        for thread in threads:
            thread.join(timeout=10)


def serve_workers(settings: Settings, engine: Engine, sock: socket.socket, workers: int, *,
                  log_level: int, log_format: str) -> None:
    """``workers`` API processes on ``sock`` and, when any part is on, one process running
    the background parts, supervised (usermessages.supervisor) until SIGTERM or SIGINT.

    Every worker gets one ``[viewer] secret_key`` (a random one when none is set, so
    sign-ins and forms hold across this node's workers) and the same settings.
    """
    settings = settings.replace(viewer_secret_key=settings.viewer_secret_key
                                or secrets.token_hex(32))
    # Each worker's slots are named after its pid under this node's prefix, so the
    # supervisor gives back a dead worker's slots at once.
    prefix = new_holder()
    children = [Child(f"api-{index}", run_worker, (settings, sock, prefix),
                      on_exit=functools.partial(_release_worker, engine, prefix))
                for index in range(workers)]
    if running_parts(settings):
        children.append(Child("background", run_background, (settings,)))
    metrics_dir = tempfile.mkdtemp(prefix="usermessages-metrics-")
    try:
        start_metrics_listener(settings, path=metrics_dir)
        Supervisor(children, metrics_dir=metrics_dir, log_level=log_level,
                   log_format=log_format).run()
    finally:
        sock.close()
        shutil.rmtree(metrics_dir, ignore_errors=True)


def run_worker(settings: Settings, sock: socket.socket, prefix: str) -> None:
    """One API worker (a supervised child): the app on the shared socket until SIGTERM;
    no background part."""
    for signum in (signal.SIGTERM, signal.SIGINT):  # a terminal's Ctrl-C reaches every child
        signal.signal(signum, _exit_cleanly)
    _log_as_configured(settings)
    engine = store_engine.connect(settings.database_connection, timeout=settings.database_timeout)
    _serve_app(create_app(settings, engine=engine, holder=f"{prefix}:{os.getpid()}"), sock)


def run_background(settings: Settings) -> None:
    """The background parts (a supervised child), until SIGTERM or SIGINT."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    _log_as_configured(settings)
    engine = store_engine.connect(settings.database_connection, timeout=settings.database_timeout)
    LOG.info("background parts: %s", ", ".join(running_parts(settings)))
    with running(settings, engine):
        stop.wait()


def _log_as_configured(settings: Settings) -> None:
    """A spawned child logs as the serve command does: oslo.log from the file's options
    (log_file, log_dir, debug...), at the level the supervisor passed on (``-v``)."""
    logs.setup(settings, verbose=logging.getLogger().isEnabledFor(logging.INFO))


def _release_worker(engine: Engine, prefix: str, pid: int) -> None:
    released = release_holder(engine, f"{prefix}:{pid}")
    if released:
        LOG.warning("gave back %d stream or export slot(s) of a worker that ended", released)


def _serve_app(app: FastAPI, sock: socket.socket) -> None:
    """uvicorn on ``sock`` until it is told to stop; the app's slots given back after."""
    # log_config=None: uvicorn's lines go through the handlers usermessages.logs set.
    config = uvicorn.Config(app, log_level="warning", log_config=None)
    try:
        Server(config, app.state.limits).run(sockets=[sock])
    finally:
        app.state.limits.keeper.close()


class Server(uvicorn.Server):
    """uvicorn's server, which first tells open event streams to end.

    Its graceful shutdown waits for every response to finish: an open stream
    would hold it up to its five minutes, and with it the process.
    """

    def __init__(self, config: uvicorn.Config, limits: Limits) -> None:
        super().__init__(config)
        self.limits = limits

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.limits.closing.set()
        await super().shutdown(sockets)


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)
