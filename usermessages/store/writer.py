"""The one way a message reaches the store.

Every way in (the bus collector, the Zaqar collector, the SDK's direct
sink) hands its messages to a ``Writer``, which owns what they share:

* one transaction per batch, "on conflict do nothing" on the producer's id,
  so redelivery stores nothing twice;
* a store-assigned ``seq`` in commit order (``reserve_seqs``);
* series and storm control, by the policy the writer was made with;
* isolation: a batch the store refuses (a value it judges bad) is written
  row by row, and each refused row comes back with the reason a dead
  letter carries; a store that is down or broken is an outage, never a
  refusal (``refused``);
* the counters (stored, duplicates, suppressed, outages).

Transports keep only what is theirs: acknowledging, claiming, deleting and
dead-lettering on their own queues, and whether to retry after an outage.

``insert`` is the statement level under the Writer, for a caller that owns
its transaction (migrations' tests, benchmarks, legacy rows no ``Message``
can be). Queries never commit: the caller owns the transaction.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, DateTime, Engine, func, select, update
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, SQLAlchemyError

from usermessages import metrics
from usermessages.errors import StoreError, StoreUnavailable
from usermessages.message import Message
from usermessages.retry import Backoff
from usermessages.store import partitions, series
from usermessages.store.engine import is_deadlock
from usermessages.store.schema import message_seq, messages

if TYPE_CHECKING:
    from usermessages.config import Settings

_COLUMNS = [column.name for column in messages.columns]
# Every column but these comes from the message (Message.to_row): the store
# fills in no field of a message. These are the store's own: a stored-order
# number (reserve_seqs) and the life cycle of a new row.
_NEW_ROW: dict[str, Any] = {"deleted": False, "deleted_at": None}
MESSAGE_COLUMNS = frozenset(_COLUMNS) - {"seq", *_NEW_ROW}
# What series.record needs of a stored row.
_RETURNED = ("kind", "project_id", "event_id", "resource_uuid", "resource_type", "message_level",
             "action_id", "detail_id", "request_id", "created_at")


# Times a batch the database aborted for another transaction is run again
# at once (after a random pause of up to 10, 20, 40... ms, 200 ms at most)
# before it is an outage (then the collector backs off and retries).
DEADLOCK_RETRIES = 8
DEADLOCK_PAUSE_FIRST, DEADLOCK_PAUSE_CAP = 0.01, 0.2


@dataclass(frozen=True)
class Stored:
    """What one insert did: rows stored as new, occurrences storm control suppressed."""

    new: int
    suppressed: int = 0


@dataclass(frozen=True)
class Refusal:
    """A message of the batch the store refused, and why (what its dead letter says)."""

    index: int
    reason: str


@dataclass(frozen=True)
class Written:
    """What a write did with a batch.

    ``settled`` messages, from the start of the batch, are done with: stored,
    found already stored, suppressed or refused. It is less than the batch
    only after an ``outage``: the rest were not written, and the transport
    keeps them (unacknowledged, or its claim released) to retry.
    """

    settled: int
    new: int = 0
    duplicates: int = 0
    suppressed: int = 0
    refused: tuple[Refusal, ...] = ()
    outage: StoreUnavailable | None = None

    def plus(self, other: Written) -> Written:
        """This result followed by ``other``'s, which continues the batch where this one ends."""
        return Written(
            settled=self.settled + other.settled,
            new=self.new + other.new,
            duplicates=self.duplicates + other.duplicates,
            suppressed=self.suppressed + other.suppressed,
            refused=self.refused + tuple(Refusal(self.settled + r.index, r.reason)
                                         for r in other.refused),
            outage=other.outage,
        )


def refused(exc: BaseException) -> bool:
    """Did the store refuse the data (isolate the row) rather than fail itself (an outage)?

    DataError and IntegrityError are the store judging a value. Any other
    SQLAlchemy error (connection lost, table missing, pool timeout) or an
    OSError is the store being unavailable. Anything else was raised while
    the driver adapted a value (UnicodeEncodeError, OverflowError...).
    """
    if isinstance(exc, (DataError, IntegrityError)):
        return True
    return not isinstance(exc, (SQLAlchemyError, OSError))


def _cause(exc: BaseException) -> str:
    return type(getattr(exc, "orig", None) or exc).__name__


def policy_of(settings: Settings) -> series.Policy:
    """How the settings group and limit what is stored (``[collector]``), on every path."""
    return series.Policy(
        exemplars=settings.collector_series_exemplars,
        storm=series.Storm(per_project=settings.collector_storm_rows_per_project,
                           per_event=settings.collector_storm_rows_per_event,
                           window=settings.collector_storm_window),
    )


class Writer:
    """Writes batches of messages under one policy; safe to share between threads."""

    def __init__(self, engine: Engine, policy: series.Policy = series.DEFAULT_POLICY) -> None:
        self._engine = engine
        self.policy = policy

    @classmethod
    def from_settings(cls, engine: Engine, settings: Settings) -> Writer:
        return cls(engine, policy_of(settings))

    def write(self, batch: Sequence[Message]) -> Written:
        """Store a batch in one transaction; isolate the rows the store refuses.

        Never raises for what the store does: an outage comes back in
        ``Written.outage`` with the messages settled before it.
        """
        if not batch:
            return Written(0)
        try:
            stored = self._insert(batch)
        except Exception as exc:
            if not refused(exc):
                return self._outage(Written(0), exc)
            return self._isolate(batch)
        return self._counted(Written(len(batch), stored.new, len(batch) - stored.new
                                     - stored.suppressed, stored.suppressed))

    def write_one(self, message: Message) -> None:
        """Store one message (the SDK's direct sink): raise if it was not stored.

        StoreUnavailable if the store is down; StoreError if it refused the row.
        """
        written = self.write([message])
        if written.outage is not None:
            raise written.outage
        if written.refused:
            raise StoreError(written.refused[0].reason)

    def _insert(self, batch: Sequence[Message]) -> Stored:
        """One transaction for the batch, run again where running again is the answer.

        At once, once, on a fresh connection when the server dropped ours (it
        restarted; on Galera, HAProxy moved us off a dead node: 2006/2013, even
        during COMMIT, where the commit may or may not have happened). After a
        short random pause, up to DEADLOCK_RETRIES times, when the database
        aborted the transaction for another one (a deadlock; on Galera, a
        lost certification). Idempotent on the ids, under the seq counter's
        lock, so a transaction that did commit stores nothing twice, and its
        series are not counted again. Anything else is the caller's.
        """
        rows = [message.to_row() for message in batch]
        reconnected, deadlocks = False, 0
        # The one retry rhythm (0.01 s doubling to 0.2 s), each pause drawn below it:
        # writers that collided once do not collide again in step.
        pause = Backoff(DEADLOCK_PAUSE_CAP, first=DEADLOCK_PAUSE_FIRST)
        while True:
            try:
                return self._transaction(rows)
            except DBAPIError as exc:
                if exc.connection_invalidated and not reconnected:
                    reconnected = True
                elif is_deadlock(exc) and deadlocks < DEADLOCK_RETRIES:
                    metrics.DEADLOCK_RETRIES.inc()
                    time.sleep(random.uniform(0, pause.advance()))
                    deadlocks += 1
                else:
                    raise

    def _transaction(self, rows: Sequence[Mapping[str, Any]]) -> Stored:
        # insert commits (commit=True): a lone row on PostgreSQL then costs one
        # round trip, its COMMIT pipelined with its statements.
        with self._engine.connect() as conn:
            return insert(conn, rows, self.policy, commit=True)

    def _isolate(self, batch: Sequence[Message]) -> Written:
        """Write the batch row by row: each refused row alone, the rest stored."""
        done = Written(0)
        for i, message in enumerate(batch):
            try:
                stored = self._insert([message])
            except Exception as exc:
                if not refused(exc):
                    return self._outage(done, exc)
                row = Written(1, refused=(Refusal(0, f"store refused the row: {_cause(exc)}"),))
            else:
                row = Written(1, stored.new, 1 - stored.new - stored.suppressed, stored.suppressed)
            done = done.plus(self._counted(row))
            assert done.settled == i + 1
        return done

    def _outage(self, done: Written, exc: BaseException) -> Written:
        metrics.DB_RETRIES.inc()
        outage = StoreUnavailable(f"store unavailable: {_cause(exc)}")
        outage.__cause__ = exc
        return done.plus(Written(0, outage=outage))

    @staticmethod
    def _counted(written: Written) -> Written:
        metrics.STORED.inc(written.new)
        metrics.DUPLICATES.inc(written.duplicates)
        metrics.SUPPRESSED.inc(written.suppressed)
        return written


def insert(conn: Connection, rows: Sequence[Mapping[str, Any]],
           policy: series.Policy = series.DEFAULT_POLICY, *, commit: bool = False) -> Stored:
    """Insert complete rows (every column of MESSAGE_COLUMNS), ignoring ids already stored.

    Each new row and each suppressed one is counted on its series. A row may
    set ``deleted``/``deleted_at``; a missing message column is a StoreError,
    not a default. Statements are built once and handed to the driver
    (COPY on PostgreSQL, executemany on SQLite and MariaDB), skipping
    per-row compilation. The caller owns the transaction, unless it hands it
    over with ``commit=True`` (the Writer): insert then commits it, on
    PostgreSQL for a lone row in the same round trip as the row's statements.
    """
    if not rows:
        return Stored(0)
    for row in rows:
        if not row.keys() >= MESSAGE_COLUMNS:
            raise StoreError(f"a row lacks {sorted(MESSAGE_COLUMNS - row.keys())}")
    partitions.ensure(conn, (row["expires_at"] for row in rows))
    try:
        new: Sequence[Mapping[str, Any]]
        suppressed: Sequence[Mapping[str, Any]]
        if conn.engine.dialect.name == "postgresql":
            if not policy.storm.enabled and len(rows) == 1:
                return _insert_one(conn, rows[0], policy.exemplars, commit)
            new, suppressed = _copy_insert(conn, rows, policy.storm)
        else:
            # From here to commit, writers take turns (reserve_seqs): storm
            # control decides on committed windows, series see every new row.
            first = reserve_seqs(conn, len(rows))
            new, suppressed = series.admit(conn, _fresh(conn, rows), policy.storm, _utcnow())
            _executemany_insert(conn, new, first)
        series.record(conn, new, suppressed, policy.exemplars)
        if commit:
            conn.commit()
        return Stored(len(new), len(suppressed))
    except conn.dialect.dbapi.Error as exc:  # type: ignore[union-attr]
        partitions.forget(conn)  # a partition the reaper dropped is made again next time
        # The driver was used directly: translate as SQLAlchemy would (DataError,
        # IntegrityError, OperationalError...), so callers see one exception tree.
        raise DBAPIError.instance("INSERT INTO messages", None, exc,
                                  conn.dialect.dbapi.Error) from exc  # type: ignore[union-attr]


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _fresh(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """SQLite and MariaDB: the rows whose id is not stored yet (nor earlier in the batch)."""
    if conn.engine.dialect.name == "mysql":
        ids = list({row["id"] for row in rows})
        found: set[str] = set()
        for start in range(0, len(ids), 500):
            found.update(conn.execute(select(messages.c.id)
                                      .where(messages.c.id.in_(ids[start:start + 500])))
                         .scalars())
        return _unseen(rows, found)
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute("SELECT id FROM messages WHERE id IN (SELECT value FROM json_each(?))",
                       (json.dumps([row["id"] for row in rows]),))
        stored = {found for (found,) in cursor.fetchall()}
    finally:
        cursor.close()
    return _unseen(rows, stored)


def _unseen(rows: Sequence[Mapping[str, Any]], stored: set[str]) -> list[Mapping[str, Any]]:
    """The rows whose id is not in ``stored`` nor earlier in the batch."""
    fresh = []
    for row in rows:
        if row["id"] not in stored:
            stored.add(row["id"])
            fresh.append(row)
    return fresh


def _executemany_insert(conn: Connection, rows: Sequence[Mapping[str, Any]], first: int) -> None:
    """SQLite and MariaDB: one executemany of a statement built once (the rows are
    all fresh: ``_fresh``, under the seq counter's lock).

    Rows are numbered from ``first`` (reserve_seqs) in batch order. Tuples
    are built by position; on SQLite datetimes formatted as SQLAlchemy stores
    them (per-value conversion was a third of the batch's time in Python).
    SQLite's ON CONFLICT covers its single writer anyway. MariaDB's primary
    key is (id, expires_at), so no clause could refuse an id stored with
    another expiry: the check under the lock is what does, as NOT EXISTS does
    on PostgreSQL, and a row that still collides is an IntegrityError (the
    Writer isolates the batch and finds it stored). PyMySQL sends the
    executemany as multi-row INSERTs.
    """
    mysql = conn.engine.dialect.name == "mysql"
    marks = ", ".join("%s" if mysql else "?" for _ in _COLUMNS)
    sql = f"INSERT INTO messages ({', '.join(_COLUMNS)}) VALUES ({marks})"
    if not mysql:
        sql += " ON CONFLICT (id) DO NOTHING"
    values = []
    for i, row in enumerate(rows):
        value = [row[c] if c in MESSAGE_COLUMNS else row.get(c, _NEW_ROW.get(c))
                 for c in _COLUMNS]
        value[_SEQ] = first + i
        if not mysql:
            for k in _DATETIMES:
                if value[k] is not None:
                    value[k] = series.sqlite_value(value[k])
        values.append(value)
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(sql, values)
    finally:
        cursor.close()


_SEQ = _COLUMNS.index("seq")
_DATETIMES = [k for k, column in enumerate(messages.columns)
              if isinstance(column.type, DateTime)]


# Idempotent on the id alone. Partitioned (migration 0004), the primary key is
# (id, expires_at), and one id can come with two expiries: the SDK's direct
# sink and the collector, or two collectors, may run with different
# message_ttl. NOT EXISTS is exact here: the transaction took the seq
# counter's row lock in an earlier statement (reserve_seqs), so any inserter
# of the same id has committed before this statement's snapshot. ON CONFLICT
# covers a batch that holds an id twice.
_NOT_STORED = "WHERE NOT EXISTS (SELECT 1 FROM messages WHERE messages.id = incoming.id)"


def _insert_one(conn: Connection, row: Mapping[str, Any], exemplars: int,
                commit: bool) -> Stored:
    """PostgreSQL, one row (the direct sink): one round trip, no temp table.

    Two statements pipelined: the seq counter's bump, which takes its row
    lock (so the next statement's snapshot sees every inserter of the same
    id, as in _copy_insert), then the row and its series in one statement
    that reads its seq back from the counter; and the COMMIT, if the caller
    handed its transaction over (a row is then stored in one round trip
    where it took two).
    """
    driver = conn.connection.driver_connection
    with driver.cursor() as cursor:  # type: ignore[union-attr]
        with driver.pipeline():  # type: ignore[union-attr]
            cursor.execute("UPDATE message_seq SET value = value + 1")
            cursor.execute(
                _insert_one_sql(conn.dialect, exemplars),
                [*(row.get(c, _NEW_ROW.get(c)) for c in _COLUMNS if c != "seq"),
                 series.key_of(row),
                 json.dumps([row["request_id"]] if row["request_id"] and exemplars else [])])
            if commit:
                driver.commit()  # type: ignore[union-attr]
        return Stored(len(cursor.fetchall()))


@functools.lru_cache(maxsize=8)
def _insert_one_sql(dialect: Dialect, exemplars: int) -> str:
    """_insert_one's statement, built once (compiling 20 column types took 0.1 ms a row)."""
    columns = ", ".join(_COLUMNS)
    # Typed as the columns are: a NULL parameter would otherwise be text. A
    # cast takes no COLLATE: the columns' own (migration 0008) applies.
    values = ", ".join(
        "(SELECT value FROM message_seq)" if c == "seq"
        else f"CAST(%s AS {messages.c[c].type.compile(dialect=dialect).split(' COLLATE ')[0]})"
        for c in _COLUMNS)
    return (f"WITH new AS (INSERT INTO messages ({columns}) SELECT * FROM (VALUES ({values}))"
            f" AS incoming ({columns}) {_NOT_STORED} "
            f"ON CONFLICT DO NOTHING RETURNING {', '.join(_RETURNED)}) "
            f"{series.upsert_one_sql('new', exemplars)} RETURNING 1")


def _copy_insert(conn: Connection, rows: Sequence[Mapping[str, Any]],
                 storm: series.Storm | None = None
                 ) -> tuple[list[dict[str, Any]], list[Mapping[str, Any]]]:
    """PostgreSQL: COPY the batch into a session temp table, then insert what is new.

    Returns what the series need of each new row (``_RETURNED``), and the
    rows storm control suppressed.

    COPY is PostgreSQL's fastest way in; the INSERT ... SELECT keeps "on
    conflict do nothing" on the real table. Rows not numbered yet are
    numbered only after the COPY: numbering locks the seq counter until
    commit (reserve_seqs), so another collector's COPY overlaps ours and only
    what follows waits: storm control's decision (on the ids not stored yet,
    found by one join of the temp table) and the INSERT. The temp table
    empties itself at commit, and is emptied after each batch, so nothing is
    left behind.
    """
    columns = ", ".join(_COLUMNS)
    numbered = bool(rows) and "seq" in rows[0]
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute("CREATE TEMP TABLE IF NOT EXISTS messages_incoming "
                       "(LIKE messages INCLUDING DEFAULTS) ON COMMIT DELETE ROWS")
        with cursor.copy(f"COPY messages_incoming ({columns}) FROM STDIN") as copy:
            for i, row in enumerate(rows):  # unnumbered: seq holds the place in the batch
                copy.write_row([(row["seq"] if numbered else i) if c == "seq"
                                else row.get(c, _NEW_ROW.get(c)) for c in _COLUMNS])
        # Rows a caller numbered keep their seq; storm control still takes the lock.
        locked = not numbered or (storm is not None and storm.enabled)
        first = reserve_seqs(conn, len(rows)) if locked else 0
        offset = 0 if numbered else first
        suppressed: list[Mapping[str, Any]] = []
        where, params = _NOT_STORED, None
        if storm is not None and storm.enabled:
            cursor.execute("SELECT DISTINCT id FROM messages_incoming AS incoming WHERE EXISTS "
                           "(SELECT 1 FROM messages WHERE messages.id = incoming.id)")
            skip = {found for (found,) in cursor.fetchall()}
            suppressed = series.admit(conn, _unseen(rows, set(skip)), storm, _utcnow())[1]
            # Under the lock, the ids stored are known exactly: the INSERT need
            # not probe every partition's key for each row again.
            skip.update(row["id"] for row in suppressed)
            where, params = (
                ("WHERE incoming.id NOT IN (SELECT json_array_elements_text(%s::json))",
                 [json.dumps(sorted(skip))]) if skip else ("", None))
        selected = ", ".join(f"seq + {int(offset)}" if c == "seq" else c for c in _COLUMNS)
        cursor.execute(f"INSERT INTO messages ({columns}) SELECT {selected} "
                       f"FROM messages_incoming AS incoming {where} "
                       f"ON CONFLICT DO NOTHING RETURNING {', '.join(_RETURNED)}", params)
        new = [dict(zip(_RETURNED, values, strict=True)) for values in cursor.fetchall()]
        cursor.execute("DELETE FROM messages_incoming")
        return new, suppressed
    finally:
        cursor.close()


def reserve_seqs(conn: Connection, count: int) -> int:
    """Take ``count`` stored-order numbers; returns the first.

    Commit order is seq order, so a reader paging by seq never skips a row
    that commits late: bumping the one counter row locks it until this
    transaction ends, so a concurrent inserter waits here and numbers its
    rows after ours (a PostgreSQL sequence would not: seq 101 could commit
    before 100). SQLite has one writer anyway. The price is that inserting
    transactions serialize from here to commit; the collector batches, so
    that is one short wait per batch. Numbers of rows ignored as already
    stored are skipped: gaps are harmless, order is what counts. On Galera
    (whose AUTO_INCREMENT steps by the cluster size, in no commit order)
    writers on one node wait here as on one server; writers on two nodes
    both change this row, so one of them loses certification (1213) and
    the Writer runs its transaction again.
    """
    if conn.engine.dialect.name == "mysql":
        # No UPDATE ... RETURNING on MariaDB: LAST_INSERT_ID(expr) hands the new value
        # back in the statement's own answer, as MySQL's counters do (one round trip).
        bumped = conn.execute(update(message_seq).values(
            value=func.last_insert_id(message_seq.c.value + count)))
        last = int(bumped.lastrowid)
    else:
        last = conn.execute(update(message_seq).values(value=message_seq.c.value + count)
                            .returning(message_seq.c.value)).scalar_one()
    return last - count + 1


def rows_of(batch: Sequence[Message]) -> list[dict[str, Any]]:
    """The rows ``insert`` takes for these messages."""
    return [message.to_row() for message in batch]


