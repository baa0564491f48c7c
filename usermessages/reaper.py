"""The reaper: deletes expired messages in batches, one node at a time.

Safe to enable on every node. On PostgreSQL a pass holds a session advisory
lock, so a second node that wakes up meanwhile skips its pass instead of
fighting over the same rows (Cinder's "transaction bouncing"); batches also
claim rows with SKIP LOCKED, so even without the lock no row is deleted twice.
On MariaDB a pass holds the ``reaper`` lease (store/leases.py): a Galera
cluster replicates neither GET_LOCK() nor table locks (two nodes would
each grant their own and reap the same rows, their deletes failing
certification against each other), but it certifies the lease row's
compare-and-set across the nodes, so exactly one takes it. A holder that
dies loses it when it lapses. SQLite has a single writer and needs neither.
On a partitioned table (migration 0004) a pass first drops the days that
expired whole. Given the message TTL, a pass also deletes the series last
seen longer ago than that (their rows are gone too), the storm windows
long closed, and the Event Viewer's sessions past their expiry.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from usermessages.store import leases, partitions, series, sessions
from usermessages.store import messages as store_messages
from usermessages.store.engine import is_deadlock, translated

LOG = logging.getLogger(__name__)

# pg_try_advisory_lock key: "usermsg" packed into a bigint, fixed forever.
ADVISORY_LOCK_KEY = 0x7573_6572_6D73_67
# MariaDB: the lease a pass holds; renewed as batches go, so only a holder
# that stopped (killed, or cut off from the cluster) lets it lapse.
LEASE = "reaper"
LEASE_SECONDS = 300.0


@dataclass(frozen=True)
class ReapResult:
    deleted: int
    skipped: bool = False  # another node held the lock


def reap(engine: Engine, batch_size: int, now: dt.datetime | None = None,
         ttl: int | None = None) -> ReapResult:
    """Run one pass: delete every row expired at ``now``, ``batch_size`` per transaction.

    With ``ttl`` (message_ttl), series last seen more than ``ttl`` seconds ago
    go too. Raises StoreError when the store cannot be reached or has no
    messages table.
    """
    now = now or store_messages.utcnow()
    with translated("cannot reap expired messages"):
        if engine.dialect.name == "postgresql":
            return _reap_locked(engine, batch_size, now, ttl)
        if engine.dialect.name == "mysql":
            return _reap_leased(engine, batch_size, now, ttl)
        return ReapResult(_reap_batches(engine, batch_size, now, ttl))


def _reap_locked(engine: Engine, batch_size: int, now: dt.datetime,
                 ttl: int | None) -> ReapResult:
    # The lock is the session's, not a transaction's: in autocommit the holder
    # is not left "idle in transaction" for the whole pass, which monitoring
    # flags and idle_in_transaction_session_timeout would end mid-pass.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as lock_conn:
        got = lock_conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": ADVISORY_LOCK_KEY})
        if not got.scalar():
            LOG.info("another node is reaping; skipping this pass")
            return ReapResult(0, skipped=True)
        try:
            # Whole expired days go as partitions; the partial day in batches.
            dropped = partitions.drop_expired(engine, now)
            return ReapResult(dropped + _reap_batches(engine, batch_size, now, ttl))
        finally:
            lock_conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_LOCK_KEY})


class Lease:
    """The reaper's lease, held by this pass (see the module docstring)."""

    def __init__(self, engine: Engine, seconds: float | None = None) -> None:
        self._engine = engine
        self._seconds = dt.timedelta(seconds=LEASE_SECONDS if seconds is None else seconds)
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._renewed = dt.datetime.min

    def take(self) -> bool:
        now = store_messages.utcnow()
        try:
            with self._engine.begin() as conn:
                taken = leases.take(conn, LEASE, self.holder, now, now + self._seconds)
        except DBAPIError as exc:
            if not is_deadlock(exc):
                raise
            taken = False  # another node's take won certification
        if taken:
            self._renewed = now
        return taken

    def keep(self) -> bool:
        """Renew once half the lease has passed; False if another holder took it."""
        now = store_messages.utcnow()
        if now - self._renewed < self._seconds / 2:
            return True
        with self._engine.begin() as conn:
            kept = leases.renew(conn, LEASE, self.holder, now + self._seconds)
        self._renewed = now
        return kept

    def release(self) -> None:
        with self._engine.begin() as conn:
            leases.release(conn, LEASE, self.holder)


def _reap_leased(engine: Engine, batch_size: int, now: dt.datetime,
                 ttl: int | None) -> ReapResult:
    lease = Lease(engine)
    if not lease.take():
        LOG.info("another node is reaping; skipping this pass")
        return ReapResult(0, skipped=True)
    try:
        dropped = partitions.drop_expired(engine, now)
        return ReapResult(dropped + _reap_batches(engine, batch_size, now, ttl, lease.keep))
    finally:
        lease.release()


def _reap_batches(engine: Engine, batch_size: int, now: dt.datetime, ttl: int | None,
                  keep: Callable[[], bool] = lambda: True) -> int:
    """Delete expired rows in batches while ``keep()`` says this pass may go on."""
    total = 0
    cursor = None
    while keep():
        # One short transaction per batch keeps locks brief for the API's readers.
        with engine.begin() as conn:
            deleted, cursor = store_messages.delete_expired(conn, now, batch_size, cursor)
        total += deleted
        if deleted < batch_size:
            break
    else:
        LOG.warning("the reaper's lease was taken over; leaving the rest to its new holder")
        return total
    LOG.info("Deleted %s expired messages.", total)
    if ttl is not None:
        _reap_series(engine, batch_size, now - dt.timedelta(seconds=ttl))
    with engine.begin() as conn:
        # Signed-in browsers: one row each, few; expired ones open nothing, but pile up.
        ended = sessions.delete_expired(conn, now)
    LOG.info("Deleted %s expired viewer sessions.", ended)
    return total


def _reap_series(engine: Engine, batch_size: int, before: dt.datetime) -> None:
    gone = 0
    while True:
        with engine.begin() as conn:
            deleted = series.delete_expired(conn, before, batch_size)
        gone += deleted
        if deleted < batch_size:
            break
    with engine.begin() as conn:
        # A window is only read while it lasts; a day is longer than any sane one.
        series.delete_storm_windows(conn, before)
    LOG.info("Deleted %s expired series.", gone)


class PeriodicReaper:
    """Runs ``reap`` now and then every ``interval`` seconds in a daemon thread."""

    def __init__(self, engine: Engine, interval: int, batch_size: int,
                 ttl: int | None = None) -> None:
        self._engine = engine
        self._ttl = ttl
        self._interval = interval
        self._batch_size = batch_size
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="reaper", daemon=True)

    def start(self) -> None:
        if self._interval > 0:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                reap(self._engine, self._batch_size, ttl=self._ttl)
            except Exception:  # a failed pass is retried at the next interval
                LOG.exception("reaper pass failed")
            self._stop.wait(self._interval)
