"""Service heartbeats, and the admin-only messages when a service stops or comes back.

Each service process updates its row every ``report_interval``; the monitor
announces a service silent for ``service_down_time`` with a SERVICE message,
and again when it reports once more. The announcement is a compare-and-set
on ``reported_down``, so several monitors (one per API process) say it once.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine, insert, select, update

from blockstorage import db
from usermessages import Action, Detail, Messenger

LOG = logging.getLogger(__name__)


def is_up(service: Mapping[Any, Any], down_time: float) -> bool:
    return db.utcnow() - service["updated_at"] < dt.timedelta(seconds=down_time)


def report(engine: Engine, binary: str, host: str) -> None:
    """Record that ``binary`` on ``host`` is alive now."""
    now = db.utcnow()
    with engine.begin() as conn:
        updated = conn.execute(
            update(db.services)
            .where(db.services.c.binary == binary, db.services.c.host == host)
            .values(updated_at=now)
        ).rowcount
        if not updated:
            conn.execute(insert(db.services).values(
                binary=binary, host=host, created_at=now, updated_at=now, reported_down=False
            ))


class Reporter:
    """Reports one service's heartbeat every ``interval`` seconds in a thread."""

    def __init__(self, engine: Engine, binary: str, host: str, interval: float) -> None:
        self._engine, self._binary, self._host, self._interval = engine, binary, host, interval

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                report(self._engine, self._binary, self._host)
            except Exception:  # a missed beat is retried at the next interval
                LOG.exception("heartbeat of %s failed", self._binary)
            stop.wait(self._interval)


def check(engine: Engine, messenger: Messenger, down_time: float) -> None:
    """One monitor pass: announce services that went silent or came back."""
    with engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(select(db.services)).mappings()]
    for service in rows:
        up = is_up(service, down_time)
        if up == (not service["reported_down"]):
            continue
        with engine.begin() as conn:
            changed = conn.execute(
                update(db.services)
                .where(db.services.c.id == service["id"],
                       db.services.c.reported_down == service["reported_down"])
                .values(reported_down=not up)
            ).rowcount
        if changed:
            where = f"{service['binary']}@{service['host']}"
            LOG.warning("service %s is %s", where, "back" if up else "down")
            messenger.create_service_message(
                Action.SERVICE_STATUS, Detail.SERVICE_UP if up else Detail.SERVICE_DOWN,
                host=where,
            )
