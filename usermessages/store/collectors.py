"""Collectors' announcements: who consumes the bus, on which release, reading what.

Each collector process upserts its row when it starts consuming and every
ANNOUNCE_INTERVAL while it does (``Collector``), so ``usermessages-status upgrade
check`` can tell, before an upgrade goes on, whether every live collector reads
the packs this release's producers send and was built for the schema the
database is at. Rows not seen for PRUNE_AFTER go at the next announcement.
Queries never commit: the caller owns the transaction.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Connection, delete, insert, select, update

from usermessages.store.schema import collectors

ANNOUNCE_INTERVAL = 60.0
# A collector not seen for this long is not running (three announcements missed).
LIVE = dt.timedelta(seconds=3 * ANNOUNCE_INTERVAL)
PRUNE_AFTER = dt.timedelta(days=7)


@dataclass(frozen=True)
class Announcement:
    """One collector process, as it last said."""

    name: str
    host: str
    version: str
    schema: str
    reads: tuple[str, ...]
    started_at: dt.datetime
    seen_at: dt.datetime


def announce(conn: Connection, found: Announcement) -> None:
    """Upsert ``found`` (one row per process name) and prune rows long unseen."""
    values = {"host": found.host, "version": found.version, "schema": found.schema,
              "reads": " ".join(found.reads), "started_at": found.started_at,
              "seen_at": found.seen_at}
    changed = conn.execute(update(collectors).where(collectors.c.name == found.name)
                           .values(**values)).rowcount
    if not changed:  # the name is its process's own: no other writer races for it
        conn.execute(insert(collectors).values(name=found.name, **values))
    conn.execute(delete(collectors).where(collectors.c.seen_at < found.seen_at - PRUNE_AFTER))


def seen_since(conn: Connection, since: dt.datetime) -> list[Announcement]:
    """The collectors that announced themselves at ``since`` or later, by name."""
    rows = conn.execute(select(collectors).where(collectors.c.seen_at >= since)
                        .order_by(collectors.c.name))
    return [Announcement(row.name, row.host, row.version, row.schema,
                         tuple(row.reads.split()), row.started_at, row.seen_at)
            for row in rows]
