"""Daily partitions of the messages table, by expiry day (PostgreSQL and MariaDB).

Reaping a day that has fully expired is then dropping its partition: no row
locks, no dead tuples, no index entries to vacuum or purge. The partition key
is ``expires_at``, which the collector derives from the envelope (created_at
+ message_ttl), so a redelivered envelope lands in the same partition and
the primary key (id, expires_at) still refuses it.

PostgreSQL: partitions are made on demand by whoever inserts (the collector,
the SDK's database sink), one short transaction of their own per new day,
remembered per connection. A partition is made standalone and then
ATTACHed: ATTACH takes SHARE UPDATE EXCLUSIVE on the parent, which neither
listings nor inserts conflict with (CREATE TABLE ... PARTITION OF would take
ACCESS EXCLUSIVE and stall every listing).

MariaDB: RANGE COLUMNS(expires_at), one partition per day, then
``messages_pmax`` (MAXVALUE) for every later expiry, so an insert never
fails for want of a partition. Days are split off pmax ahead of need
(REORGANIZE PARTITION, cheap while pmax is empty; ADD PARTITION is refused
while it exists): an inserter meeting a day past the last one makes that day
and AHEAD_DAYS more, so this DDL (a cluster-wide pause on Galera, as all DDL
is there) runs about once a week, from a connection of its own (DDL commits).
Expiries further than HORIZON_DAYS ahead (a TTL of years) stay in pmax
rather than making years of partitions, and are reaped in batches. SQLite
keeps one table and skips all this.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Iterable

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

from usermessages.store.engine import is_lock_wait, translated

LOG = logging.getLogger(__name__)

PREFIX = "messages_p"
_NAME = re.compile(r"^messages_p(\d{8})$")
# pg_advisory lock key serialising partition DDL between collectors and the reaper.
PARTITION_LOCK_KEY = 0x7573_6572_6D73_70
_CACHE = "usermessages.partitions"  # conn.info key: the days known to be attached
# MariaDB: the partition taking every expiry after the last day's.
PMAX = "messages_pmax"
# Writers (MariaDB) and `usermessages db upgrade` make the partitions of this many days of
# inserts ahead, so a database user who may not make them (see can_make) finds them made.
AHEAD_DAYS = 7
HORIZON_DAYS = 400
_LAST_DAY = "usermessages.partitions.last_day"  # conn.info key: MariaDB's last day made
_UNPARTITIONED = dt.date.min  # ... or this, before migration 0004
# Seconds partition DDL waits for the table's metadata lock: while it waits,
# every query arriving after it queues too, so it gives up early.
DDL_LOCK_WAIT = 5


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
    # Anything but a datetime is left for the insert to refuse.
    days = {day_of(e) for e in expiries if isinstance(e, dt.datetime)}
    if conn.engine.dialect.name == "mysql":
        _ensure_mariadb(conn, days)
    if conn.engine.dialect.name != "postgresql":
        return
    known: set[dt.date] = conn.info.setdefault(_CACHE, set())
    missing = days - known
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
    conn.info.pop(_LAST_DAY, None)


def mariadb_days(conn: Connection) -> list[dt.date] | None:
    """MariaDB: the days messages has a partition of, in order; None if unpartitioned."""
    names = conn.execute(text(
        "SELECT partition_name FROM information_schema.partitions "
        "WHERE table_schema = DATABASE() AND table_name = 'messages'")).scalars().all()
    if not names or names == [None]:
        return None
    return sorted(day for day in map(day_of_name, names) if day is not None)


def _ensure_mariadb(conn: Connection, days: set[dt.date]) -> None:
    """Split the days these expiries need (and AHEAD_DAYS more) off pmax, unless made.

    Best effort: a row with no day of its own yet goes to pmax (or to the
    first day, if older), never lost, and moves to its day when that is split
    off. So the DDL is skipped, for a later insert to do, when it would wait
    on the caller's own open transaction (which may hold messages' metadata
    lock: the DDL runs on a connection of its own, since DDL commits), and
    gives up when the table stays busy for DDL_LOCK_WAIT seconds.
    """
    horizon = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=HORIZON_DAYS)
    wanted = {day for day in days if day <= horizon}
    last = conn.info.get(_LAST_DAY)
    if not wanted or last == _UNPARTITIONED or (last is not None and max(wanted) <= last):
        return
    if conn.execute(text("SELECT @@in_transaction")).scalar():
        return
    with conn.engine.connect() as ddl:
        ddl.execute(text(f"SET SESSION lock_wait_timeout = {DDL_LOCK_WAIT}"))
        for attempt in range(2):
            made = mariadb_days(ddl)
            if made is None:  # before migration 0004
                conn.info[_LAST_DAY] = _UNPARTITIONED
                return
            top = max(wanted)
            if made and top <= made[-1]:
                break
            first = made[-1] + dt.timedelta(days=1) if made else min(wanted)
            # A burst of odd expiries makes at most a year of days; the older
            # rows go to the first one made (a range partition takes all below).
            first = max(first, top - dt.timedelta(days=HORIZON_DAYS))
            new = [first + dt.timedelta(days=i)
                   for i in range((top - first).days + AHEAD_DAYS + 1)]
            try:
                ddl.execute(text(
                    f"ALTER TABLE messages REORGANIZE PARTITION {PMAX} INTO ("
                    + "".join(f"PARTITION {name_of(day)} VALUES LESS THAN "
                              f"('{_bounds(day)[1]}'), " for day in new)
                    + f"PARTITION {PMAX} VALUES LESS THAN (MAXVALUE))"))
                break
            except DBAPIError as exc:
                if is_lock_wait(exc):
                    LOG.warning("messages stayed busy; new days wait in %s for now", PMAX)
                    return
                if attempt:
                    raise
                # Another inserter split the same days first (duplicate partition
                # name): look again, once.
        conn.info[_LAST_DAY] = mariadb_days(ddl)[-1]  # type: ignore[index]


def drop_expired(engine: Engine, now: dt.datetime) -> int:
    """Detach and drop every partition whose whole day expired before ``now``.

    Returns how many rows went with them. DETACH ... CONCURRENTLY takes only
    SHARE UPDATE EXCLUSIVE on messages and waits for the queries already
    reading the partition, so listings never queue behind it; the DROP then
    locks only the detached table. Runs in autocommit (CONCURRENTLY refuses a
    transaction block), under the partition lock the inserters take.
    """
    if engine.dialect.name == "mysql":
        return _drop_expired_mariadb(engine, now)
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


def _drop_expired_mariadb(engine: Engine, now: dt.datetime) -> int:
    """MariaDB: take every day partition whose day ended by ``now`` out of messages, then
    count and drop it; returns how many rows went.

    CONVERT PARTITION ... TO TABLE is a rename under messages' metadata lock;
    the count and the DROP (which deletes the files) then run on a table of
    their own, so listings wait only for the rename: DROP PARTITION would hold
    the lock while it removes the files. The lock's wait is short
    (DDL_LOCK_WAIT: queries arriving meanwhile queue behind it); a pass that
    could not get it leaves the day to the batches and the next pass. A
    table left by a pass that stopped between the two (named as its
    partition was) is dropped first. The caller holds the reaper's lease.
    """
    gone = 0
    with engine.connect() as conn:
        leftovers = [name for name in conn.execute(text(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() "
            "AND table_name LIKE 'messages\\_p%'")).scalars() if day_of_name(name)]
        days = mariadb_days(conn)
        doomed = [name_of(day) for day in days or ()
                  if dt.datetime.combine(day + dt.timedelta(days=1), dt.time()) <= now]
        conn.execute(text(f"SET SESSION lock_wait_timeout = {DDL_LOCK_WAIT}"))
        for name in doomed:
            try:
                conn.execute(text(f"ALTER TABLE messages CONVERT PARTITION {name} TO TABLE {name}"))
            except DBAPIError as exc:
                if not is_lock_wait(exc):
                    raise
                LOG.warning("could not lock messages to take %s out; its rows go in batches",
                            name)
                break
            leftovers.append(name)
        for name in leftovers:
            gone += int(conn.execute(text(f"SELECT count(*) FROM {name}")).scalar_one())
            conn.execute(text(f"DROP TABLE {name}"))
    return gone
