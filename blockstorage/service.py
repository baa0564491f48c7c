"""Putting the reference service together: which components run in this process.

``api`` (the Cinder-compatible endpoint with the messages API beside it,
plus the watchdog and heartbeat monitor), ``scheduler``, ``volume`` (one
worker per backend) and ``backup``. The default runs them all, with the
messages collector and reaper embedded: the one-command all-in-one.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Sequence

import anyio
from fastapi import FastAPI
from sqlalchemy import Engine

from blockstorage import busstatus, db, heartbeat, watchdog
from blockstorage.api import router
from blockstorage.config import StorageSettings
from blockstorage.rpc import Caster, Server
from blockstorage.runtime import Runtime
from blockstorage.scheduler import TOPIC as SCHEDULER
from blockstorage.scheduler import Scheduler, volume_topic
from blockstorage.workers import BackupWorker, VolumeWorker
from usermessages import Messenger
from usermessages.config import Settings
from usermessages.service import create_app
from usermessages.store import engine as store_engine

COMPONENTS = ("api", "scheduler", "volume", "backup")
Run = Callable[[threading.Event], None]


def build_runtime(settings: Settings, storage: StorageSettings) -> Runtime:
    engine = store_engine.connect(storage.connection)
    db.create_schema(engine)
    host = socket.gethostname()
    messenger = Messenger.from_settings(settings.replace(sdk_sink=storage.message_sink),
                                        host=host)

    def on_bus_change(down: bool) -> None:
        busstatus.announce(engine, messenger, host, down)

    return Runtime(settings=storage, engine=engine, messenger=messenger,
                   caster=Caster(settings.bus_url, settings.bus_timeout, on_bus_change))


def build_app(settings: Settings, messages_engine: Engine, runtime: Runtime) -> FastAPI:
    """One endpoint, as in Cinder: the messages API and the block-storage API."""
    app = create_app(settings, engine=messages_engine)
    app.state.blockstorage = runtime
    app.include_router(router)
    app.router.on_startup.append(_widen_threadpool)
    return app


# Sync endpoints share anyio's thread limiter (40 by default). A cast may wait up to
# its bound for the publisher; enough threads keep reads answering meanwhile.
API_THREADS = 400


async def _widen_threadpool() -> None:
    anyio.to_thread.current_default_thread_limiter().total_tokens = API_THREADS


def components(runtime: Runtime, settings: Settings, names: Sequence[str]) -> list[tuple[str, Run]]:
    """The background parts of the named components, as ``(name, run(stop))``."""
    host = socket.gethostname()
    url, timeout = settings.bus_url, settings.bus_timeout
    interval = runtime.settings.report_interval
    parts: list[tuple[str, Run]] = []

    def serving(binary: str, topic: str, handlers: dict, beat_host: str) -> None:
        parts.append((topic, Server(url, topic, handlers, timeout).run))
        parts.append((f"{binary}-heartbeat",
                      heartbeat.Reporter(runtime.engine, binary, beat_host, interval).run))

    if "api" in names:
        parts.append(("watchdog", lambda stop: watchdog.run(runtime, stop)))
    if "scheduler" in names:
        serving("blockstorage-scheduler", SCHEDULER, Scheduler(runtime).handlers(), host)
    if "volume" in names:
        for backend in runtime.settings.backends:
            serving("blockstorage-volume", volume_topic(backend.name),
                    VolumeWorker(runtime, backend.name).handlers(), f"{host}@{backend.name}")
    if "backup" in names:
        serving("blockstorage-backup", "backup", BackupWorker(runtime).handlers(), host)
    return parts
