"""Daily partitions of the messages table on PostgreSQL, by expiry day.

Reaping a day that has fully expired is then detaching and dropping its
partition: no row locks, no dead tuples, no index entries to vacuum. The
partition key is ``expires_at``, which the collector derives from the
envelope (created_at + message_ttl), so a redelivered envelope lands in the
same partition and the primary key (id, expires_at) still refuses it.

Partitions are made on demand by whoever inserts (the collector, the SDK's
database sink), one short transaction of their own per new day, remembered
per connection. A partition is made standalone and then ATTACHed: ATTACH
takes SHARE UPDATE EXCLUSIVE on the parent, which neither listings nor
inserts conflict with (CREATE TABLE ... PARTITION OF would take ACCESS
EXCLUSIVE and stall every listing). SQLite keeps one table and skips all this.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable

from sqlalchemy import Connection, Engine, text

from usermessages.store.engine import translated

PREFIX = "messages_p"
_NAME = re.compile(r"^messages_p(\d{8})$")
# pg_advisory lock key serialising partition DDL between collectors and the reaper.
PARTITION_LOCK_KEY = 0x7573_6572_6D73_70
_CACHE = "usermessages.partitions"  # conn.info key: the days known to be attached
# `usermessages db upgrade` makes the partitions of this many days of inserts ahead, so
# a database user who may not make them (see can_make) finds them made.
AHEAD_DAYS = 7


def day_of(expires_at: dt.datetime) -> dt.date:
    return expires_at.date()


def name_of(day: dt.date) -> str:
    return f"{PREFIX}{day:%Y%m%d}"


def day_of_name(name: str) -> dt.date | None:
    """The day a partition holds, or None for a table that is not one of ours."""
    match = _NAME.match(name)
    return dt.datetime.strptime(match.group(1), "%Y%m%d").date() if match else None


def _bounds(day: dt.date) -> tuple[str, str]:
    start = dt.datetime.combine(day, dt.time())
    return start.isoformat(sep=" "), (start + dt.timedelta(days=1)).isoformat(sep=" ")


def is_partitioned(conn: Connection) -> bool:
    if conn.engine.dialect.name != "postgresql":
        return False
    kind = conn.execute(text("SELECT relkind FROM pg_class WHERE oid = to_regclass('messages')"))
    return kind.scalar() == "p"


def attached(conn: Connection) -> list[str]:
    """The partitions attached to messages (a detach in progress excluded)."""
    return list(conn.execute(text(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'messages'::regclass AND NOT i.inhdetachpending "
        "ORDER BY c.relname")).scalars())


def create(conn: Connection, day: dt.date) -> None:
    """Attach the partition of ``day`` unless it is; the caller holds PARTITION_LOCK_KEY."""
    name = name_of(day)
    state = conn.execute(text(
        "SELECT to_regclass(:n) IS NOT NULL, EXISTS (SELECT 1 FROM pg_inherits "
        "WHERE inhrelid = to_regclass(:n) AND inhparent = 'messages'::regclass)"),
        {"n": name}).one()
    exists, is_attached = state
    if is_attached:
        return
    if exists:  # left detached by a reaper that stopped between detach and drop: expired rows
        conn.execute(text(f'DROP TABLE "{name}"'))
    low, high = _bounds(day)
    conn.execute(text(f'CREATE TABLE "{name}" (LIKE messages INCLUDING DEFAULTS)'))
    # The CHECK lets ATTACH skip scanning the (empty) table under its lock.
    conn.execute(text(f'ALTER TABLE "{name}" ADD CONSTRAINT "{name}_range" CHECK '
                      f"(expires_at >= '{low}' AND expires_at < '{high}')"))
    conn.execute(text(f"ALTER TABLE messages ATTACH PARTITION \"{name}\" "
                      f"FOR VALUES FROM ('{low}') TO ('{high}')"))


def ensure(conn: Connection, expiries: Iterable[dt.datetime]) -> None:
    """Make sure the partitions these expiries fall in exist, before inserting them.

    Runs on a connection of its own, committed at once, so the caller's
    transaction holds no DDL lock; a lock_timeout bounds the wait on the
    reaper (which holds the same advisory lock while it drops a day).
    """
    if conn.engine.dialect.name != "postgresql":
        return
    known: set[dt.date] = conn.info.setdefault(_CACHE, set())
    # Anything but a datetime is left for the insert to refuse.
    missing = {day_of(e) for e in expiries if isinstance(e, dt.datetime)} - known
    if not missing:
        return
    with conn.engine.connect() as ddl, ddl.begin():
        if ddl.execute(text("SELECT relkind FROM pg_class WHERE oid = "
                            "to_regclass('messages')")).scalar() != "p":
            known.update(missing)  # an unpartitioned table (before migration 0004)
            return
        ddl.execute(text("SET LOCAL lock_timeout = '10s'"))
        ddl.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": PARTITION_LOCK_KEY})
        for day in sorted(missing):
            create(ddl, day)
    known.update(missing)


def expiry_days(now: dt.datetime, ttl: int, days: int) -> list[dt.date]:
    """The days messages created from ``now`` through ``days`` days later expire on."""
    first = now + dt.timedelta(seconds=ttl)
    return sorted({day_of(first + dt.timedelta(days=n)) for n in range(days + 1)})


def make_ahead(engine: Engine, now: dt.datetime, ttl: int, days: int = AHEAD_DAYS) -> None:
    """Make the partitions of the next ``days`` days of inserts now (PostgreSQL)."""
    if engine.dialect.name != "postgresql":
        return
    with translated("cannot make the partitions ahead"), engine.connect() as conn:
        ensure(conn, [dt.datetime.combine(day, dt.time()) for day in
                      expiry_days(now, ttl, days)])


def can_make(conn: Connection) -> bool:
    """May this connection's user make a partition (create a table in the messages
    table's schema, and attach it, which needs the messages table's owner's rights)?"""
    return bool(conn.execute(text(
        "SELECT has_schema_privilege(current_user, c.relnamespace, 'CREATE') "
        "AND pg_has_role(current_user, c.relowner, 'USAGE') "
        "FROM pg_class c WHERE c.oid = 'messages'::regclass")).scalar())


def forget(conn: Connection) -> None:
    """Drop the connection's memory of partitions (after the reaper dropped one)."""
    conn.info.pop(_CACHE, None)


def drop_expired(engine: Engine, now: dt.datetime) -> int:
    """Detach and drop every partition whose whole day expired before ``now``.

    Returns how many rows went with them. DETACH ... CONCURRENTLY takes only
    SHARE UPDATE EXCLUSIVE on messages and waits for the queries already
    reading the partition, so listings never queue behind it; the DROP then
    locks only the detached table. Runs in autocommit (CONCURRENTLY refuses a
    transaction block), under the partition lock the inserters take.
    """
    if engine.dialect.name != "postgresql":
        return 0
    total = 0
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if not is_partitioned(conn):
            return 0
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": PARTITION_LOCK_KEY})
        # Counting a day's rows is a scan of it. Run in parallel (a leader and
        # two workers), it took every core of a two-core server from the API
        # for its ~0.2 s per million rows: the listing p99 during a reap was
        # 2.4x idle (docs/benchmarks.md). One process leaves the API a core.
        conn.execute(text("SET max_parallel_workers_per_gather = 0"))
        try:
            # A detach a stopped reaper left half done is finished first.
            for name in conn.execute(text(
                    "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                    "WHERE i.inhparent = 'messages'::regclass AND i.inhdetachpending")).scalars():
                conn.execute(text(f'ALTER TABLE messages DETACH PARTITION "{name}" FINALIZE'))
                total += _drop(conn, name)
            for name in attached(conn):
                day = day_of_name(name)
                if day is None or dt.datetime.combine(day + dt.timedelta(days=1), dt.time()) > now:
                    continue
                conn.execute(text(f'ALTER TABLE messages DETACH PARTITION "{name}" CONCURRENTLY'))
                total += _drop(conn, name)
        finally:
            conn.execute(text("RESET max_parallel_workers_per_gather"))  # a pooled connection
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": PARTITION_LOCK_KEY})
    return total


def _drop(conn: Connection, name: str) -> int:
    rows = conn.execute(text(f'SELECT count(*) FROM "{name}"')).scalar_one()
    conn.execute(text(f'DROP TABLE "{name}"'))
    return rows
