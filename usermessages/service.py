"""The embedded all-in-one: the API, a collector and the reaper in one process.

The composition root of ``usermessages serve``. The API package knows
nothing of the collector; only this module puts them side by side.
"""

from __future__ import annotations

import logging
import threading

import uvicorn
from sqlalchemy import Engine

from usermessages.api.app import create_app
from usermessages.collector import Collector
from usermessages.config import Settings
from usermessages.reaper import PeriodicReaper

LOG = logging.getLogger(__name__)


def serve(settings: Settings, engine: Engine) -> None:
    """Run until interrupted (Ctrl-C or SIGTERM, handled by uvicorn), then stop every part."""
    stop = threading.Event()
    threads: list[threading.Thread] = []
    if settings.collector_embedded:
        collector = Collector.from_settings(settings, engine)
        threads.append(threading.Thread(target=collector.run, args=(stop,),
                                        name="collector", daemon=True))
    reaper = PeriodicReaper(engine, settings.message_reap_interval,
                            settings.message_reap_batch_size)
    for thread in threads:
        thread.start()
    reaper.start()
    try:
        uvicorn.run(create_app(settings, engine=engine), host=settings.host, port=settings.port,
                    log_level="warning")
    finally:
        stop.set()
        reaper.stop()
        for thread in threads:
            thread.join(timeout=10)
