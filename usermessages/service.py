"""The embedded shape: the API, the viewer, a collector and the reaper in one process.

The composition root of ``usermessages serve`` (and of the reference
service's all-in-one, which adds its own routes and components). The API
package knows nothing of the viewer or the collector; only this module puts
them side by side, above both front ends, over one ``Reader``.
"""

from __future__ import annotations

import errno
import logging
import signal
import socket
import threading
from collections.abc import Callable, Sequence

import uvicorn
from fastapi import FastAPI
from sqlalchemy import Engine

from usermessages.api.app import create_api
from usermessages.api.metrics import start_listener as start_metrics_listener
from usermessages.catalog import Catalog
from usermessages.collector import Collector
from usermessages.config import Settings
from usermessages.errors import UserMessagesError
from usermessages.notifications import sources_from_settings
from usermessages.reader import Reader
from usermessages.reaper import PeriodicReaper
from usermessages.viewer import create_viewer
from usermessages.web.limits import Limits

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
    """Run until interrupted (Ctrl-C or SIGTERM, handled by uvicorn), then stop every part.

    ``background`` are extra ``(name, run(stop))`` components run in threads;
    ``sock`` is the already bound socket from ``listen`` (else one is bound here).
    """
    sock = sock or listen(settings.host, settings.port)
    if threading.current_thread() is threading.main_thread():
        # uvicorn re-raises the SIGTERM it handled once it has stopped: by default that
        # kills the process before the finally below (threads joined, reaper stopped).
        signal.signal(signal.SIGTERM, _exit_cleanly)
    stop = threading.Event()
    parts = list(background)
    if settings.collector_embedded:
        collector = Collector.from_settings(settings, engine, sources_from_settings(settings))
        parts.insert(0, ("collector", collector.run))
    if settings.webhooks_embedded:
        from usermessages.webhooks.deliverer import Deliverer

        parts.append(("webhooks", Deliverer(settings, engine).run))
    threads = [threading.Thread(target=run, args=(stop,), name=name, daemon=True)
               for name, run in parts]
    reaper = PeriodicReaper(engine, settings.message_reap_interval,
                            settings.message_reap_batch_size, settings.message_ttl)
    for thread in threads:
        thread.start()
    reaper.start()
    start_metrics_listener(settings)
    try:
        app = app or create_app(settings, engine=engine)
        config = uvicorn.Config(app, host=settings.host, port=settings.port,
                                log_level="warning")
        try:
            Server(config, app.state.limits).run(sockets=[sock])
        finally:
            app.state.limits.keeper.close()
    finally:
        stop.set()
        reaper.stop()
        for thread in threads:
            thread.join(timeout=10)


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
