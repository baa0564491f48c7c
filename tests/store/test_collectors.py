"""Collectors' announcements: a real collector says who it is while it consumes; one row
per process, kept fresh, long-gone ones pruned; on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import os
import socket
import threading
import time
from dataclasses import replace
from importlib.metadata import version

from sqlalchemy import Engine, func, select

from usermessages import envelope
from usermessages.collector import Collector
from usermessages.store import collectors, migrate
from usermessages.store.messages import utcnow
from usermessages.store.schema import collectors as table


def _live(engine: Engine) -> list[collectors.Announcement]:
    with engine.connect() as conn:
        return collectors.seen_since(conn, utcnow() - collectors.LIVE)


def test_a_consuming_collector_announces_itself(engine: Engine) -> None:
    stop = threading.Event()
    collector = Collector("memory://", engine, ttl=3600)
    thread = threading.Thread(target=collector.run, args=(stop,), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not _live(engine):
            assert time.monotonic() < deadline, "no announcement"
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(10)
    [found] = _live(engine)
    assert found.name == f"{socket.gethostname()}:{os.getpid()}"
    assert (found.version, found.schema, found.reads) == (
        version("usermessages"), migrate.head(), envelope.READS)
    assert envelope.PACK_FORMAT in found.reads


def test_one_row_a_process_kept_fresh_and_the_long_gone_pruned(engine: Engine) -> None:
    now = utcnow()
    first = collectors.Announcement("h:1", "h", "0.1.0", "0008", envelope.READS, now, now)
    with engine.begin() as conn:
        collectors.announce(conn, replace(first, name="gone:9",
                                          seen_at=now - collectors.PRUNE_AFTER))
        collectors.announce(conn, first)
        later = now + dt.timedelta(seconds=60)
        collectors.announce(conn, replace(first, seen_at=later))
        assert conn.execute(select(func.count()).select_from(table)).scalar() == 1
        [found] = collectors.seen_since(conn, now)
    assert (found.name, found.started_at, found.seen_at) == ("h:1", now, later)
