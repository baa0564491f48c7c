"""The embedded shape: the API, a collector and the reaper in one process.

The composition root of ``usermessages serve`` (and of the reference
service's all-in-one, which adds its own routes and components). The API
package knows nothing of the collector; only this module puts them side by
side.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

import uvicorn
from fastapi import FastAPI
from sqlalchemy import Engine

from usermessages.api.app import create_app
from usermessages.api.metrics import start_listener as start_metrics_listener
from usermessages.collector import Collector
from usermessages.config import Settings
from usermessages.notifications import sources_from_settings
from usermessages.reaper import PeriodicReaper

LOG = logging.getLogger(__name__)

Background = Callable[[threading.Event], None]


def serve(
    settings: Settings,
    engine: Engine,
    *,
    app: FastAPI | None = None,
    background: Sequence[tuple[str, Background]] = (),
) -> None:
    """Run until interrupted (Ctrl-C or SIGTERM, handled by uvicorn), then stop every part.

    ``background`` are extra ``(name, run(stop))`` components run in threads.
    """
    stop = threading.Event()
    parts = list(background)
    if settings.collector_embedded:
        collector = Collector.from_settings(settings, engine, sources_from_settings(settings))
        parts.insert(0, ("collector", collector.run))
    threads = [threading.Thread(target=run, args=(stop,), name=name, daemon=True)
               for name, run in parts]
    reaper = PeriodicReaper(engine, settings.message_reap_interval,
                            settings.message_reap_batch_size)
    for thread in threads:
        thread.start()
    reaper.start()
    start_metrics_listener(settings)
    try:
        uvicorn.run(app or create_app(settings, engine=engine), host=settings.host,
                    port=settings.port, log_level="warning")
    finally:
        stop.set()
        reaper.stop()
        for thread in threads:
            thread.join(timeout=10)
