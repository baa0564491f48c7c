"""Queries on the messages table.

Every query that serves a user takes the project as a required argument;
the ones that cross projects (for admins and the reaper) say so in their
names. Queries never commit: the caller owns the transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    Connection,
    and_,
    delete,
    false,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.elements import ColumnElement

from usermessages.catalog import Kind
from usermessages.errors import MessageNotFound, StoreError
from usermessages.message import Message
from usermessages.store import partitions, series
from usermessages.store.schema import message_seq, messages, sortable

# What lists may be sorted by: stored columns, as in Cinder, minus internals.
SORT_KEYS = frozenset({
    "id", "event_id", "message_level", "resource_type", "resource_uuid",
    "request_id", "created_at", "expires_at", "project_id", "action_id", "detail_id",
})
# What lists may be filtered on (exact match). The API narrows this per caller.
FILTER_KEYS = frozenset({
    "resource_uuid", "resource_type", "event_id", "request_id", "message_level",
    "project_id", "action_id", "detail_id", "host", "kind", "user_id", "id",
})
TIE_BREAKERS = ("created_at", "id")


def utcnow() -> dt.datetime:
    """Naive UTC, the form Cinder stores and shows."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class ListQuery:
    """A validated list request: the API builds it, the store runs it."""

    filters: Mapping[str, str] = field(default_factory=dict)
    like_filters: Mapping[str, str] = field(default_factory=dict)
    sort: Sequence[tuple[str, str]] = (("created_at", "desc"),)
    limit: int | None = None
    marker: str | None = None
    offset: int = 0
    created_since: dt.datetime | None = None
    created_before: dt.datetime | None = None
    # Live updates: rows stored after this seq, in stored order (sort and marker ignored).
    after_seq: int | None = None


def full_sort(sort: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """Append Cinder's tie-breakers (created_at, id) in the first key's direction.

    The order ends at ``id``: it is unique, so a later or repeated key could
    never decide between two rows, and would only keep an index ending in id
    from serving the order (a sort by id would need a Sort node).
    """
    requested = list(sort) or [("created_at", "desc")]
    first_direction = requested[0][1]
    keys: list[tuple[str, str]] = []
    for key, direction in [*requested, *((k, first_direction) for k in TIE_BREAKERS)]:
        if all(key != seen for seen, _ in keys):
            keys.append((key, direction))
        if key == "id":
            return keys
    return keys


def _not_deleted() -> ColumnElement[bool]:
    return messages.c.deleted == false()


def _project_scope(project_id: str) -> ColumnElement[bool]:
    # Project users only ever see their project's API messages.
    return and_(messages.c.project_id == project_id, messages.c.kind == Kind.API.value)


def _sort_column(key: str) -> ColumnElement[Any]:
    """The expression a list sorts on (NULL as '', see schema.sortable)."""
    return sortable(messages.c[key])


def _sort_value(key: str, marker: Mapping[str, Any]) -> Any:
    value = marker[key]
    return "" if value is None and messages.c[key].nullable else value


def _after_marker(sort: list[tuple[str, str]], marker: Mapping[Any, Any]) -> ColumnElement[bool]:
    """Rows strictly after the marker row in this order (keyset pagination)."""
    directions = {direction for _, direction in sort}
    columns = [_sort_column(key) for key, _ in sort]
    values = [_sort_value(key, marker) for key, _ in sort]
    if len(directions) == 1:
        # One direction: a row-value comparison, which the composite indexes serve.
        left, right = tuple_(*columns), tuple_(*values)
        return left > right if directions == {"asc"} else left < right
    clauses = []
    for i, (column, value) in enumerate(zip(columns, values, strict=False)):
        step = column > value if sort[i][1] == "asc" else column < value
        clauses.append(and_(*[c == v for c, v in zip(columns[:i], values[:i], strict=False)], step))
    return or_(*clauses)


def _list(conn: Connection, scope: ColumnElement[bool] | None, query: ListQuery,
          scoped_keys: frozenset[str] = frozenset()) -> list[dict]:
    conditions: list[ColumnElement[bool]] = [_not_deleted()]
    if scope is not None:
        conditions.append(scope)
    for key, value in query.filters.items():
        conditions.append(messages.c[key] == value)
    for key, value in query.like_filters.items():
        escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        conditions.append(messages.c[key].like(f"%{escaped}%", escape="\\"))
    if query.created_since is not None:
        conditions.append(messages.c.created_at >= query.created_since)
    if query.created_before is not None:
        conditions.append(messages.c.created_at < query.created_before)
    if query.after_seq is not None:
        statement = (select(messages).where(*conditions, messages.c.seq > query.after_seq)
                     .order_by(messages.c.seq))
        if query.limit is not None:
            statement = statement.limit(query.limit)
        return [dict(row) for row in conn.execute(statement).mappings()]
    # A key every row shares (the scope's project, an exact filter) orders
    # nothing; left in, it would keep the planner from the index the other
    # keys match (project_id is sorted as coalesce(), which it cannot see is fixed).
    fixed = scoped_keys | query.filters.keys()
    sort = [(key, direction) for key, direction in full_sort(query.sort) if key not in fixed]
    if query.marker is not None:
        if "\x00" in query.marker:
            raise MessageNotFound(query.marker)
        marker_conditions = [_not_deleted(), messages.c.id == query.marker]
        if scope is not None:
            marker_conditions.append(scope)
        marker = conn.execute(select(messages).where(*marker_conditions)).mappings().first()
        if marker is None:
            raise MessageNotFound(query.marker)
        conditions.append(_after_marker(sort, marker))
    order = [
        _sort_column(key).asc() if direction == "asc" else _sort_column(key).desc()
        for key, direction in sort
    ]
    statement = select(messages).where(*conditions).order_by(*order)
    if query.limit is not None:
        statement = statement.limit(query.limit)
    if query.offset:
        statement = statement.offset(query.offset)
    return [dict(row) for row in conn.execute(statement).mappings()]


def list_messages(conn: Connection, project_id: str, query: ListQuery) -> list[dict]:
    """A project's visible messages, in the query's order and page."""
    return _list(conn, _project_scope(project_id), query, frozenset({"project_id"}))


def list_messages_all_projects(conn: Connection, query: ListQuery) -> list[dict]:
    """Every visible message of every kind, for admins."""
    return _list(conn, None, query)


def _get(conn: Connection, message_id: str, scope: ColumnElement[bool] | None) -> dict:
    if "\x00" in message_id:
        raise MessageNotFound(message_id)  # no id holds NUL; PostgreSQL would refuse it
    conditions = [messages.c.id == message_id, _not_deleted()]
    if scope is not None:
        conditions.append(scope)
    row = conn.execute(select(messages).where(*conditions)).mappings().first()
    if row is None:
        raise MessageNotFound(message_id)
    return dict(row)


def get_message(conn: Connection, message_id: str, project_id: str) -> dict:
    """One of a project's messages; MessageNotFound if absent, deleted or elsewhere."""
    return _get(conn, message_id, _project_scope(project_id))


def get_message_all_projects(conn: Connection, message_id: str) -> dict:
    """Any visible message, for admins."""
    return _get(conn, message_id, None)


def soft_delete_message(conn: Connection, message_id: str) -> bool:
    """Mark a message deleted (as Cinder does); the reaper removes it at expiry.

    Callers look the message up in the caller's scope first, so this takes
    an id already known to be visible.
    """
    result = conn.execute(
        update(messages)
        .where(messages.c.id == message_id, _not_deleted())
        .values(deleted=True, deleted_at=utcnow())
    )
    return result.rowcount == 1


_COLUMNS = [column.name for column in messages.columns]
# Every column but these comes from the message (Message.to_row): the store
# fills in no field of a message. These are the store's own: a stored-order
# number (reserve_seqs) and the life cycle of a new row.
_NEW_ROW: dict[str, Any] = {"deleted": False, "deleted_at": None}
MESSAGE_COLUMNS = frozenset(_COLUMNS) - {"seq", *_NEW_ROW}


@dataclass(frozen=True)
class Stored:
    """What a batch did: rows stored as new, occurrences storm control suppressed."""

    new: int
    suppressed: int = 0


def insert_messages(conn: Connection, batch: Sequence[Message],
                    policy: series.Policy = series.DEFAULT_POLICY) -> int:
    """Insert messages, ignoring ids already stored, so redelivery stores nothing twice.

    Returns how many were new (suppressed ones are not: see ``store_batch``).
    """
    return store_batch(conn, batch, policy).new


def store_batch(conn: Connection, batch: Sequence[Message],
                policy: series.Policy = series.DEFAULT_POLICY) -> Stored:
    """Store a batch and count it on its series. This is the collector's hot path."""
    return _insert(conn, [message.to_row() for message in batch], policy)


def insert_rows(conn: Connection, rows: Sequence[Mapping[str, Any]],
                policy: series.Policy = series.DEFAULT_POLICY) -> int:
    """Insert complete rows (every column of MESSAGE_COLUMNS), ignoring ids already stored.

    ``insert_messages`` is the way in for messages; rows serve what no
    ``Message`` can be, like a legacy row without an action id. A row may set
    ``deleted``/``deleted_at``; a missing message column is a StoreError, not
    a default. The statement is built once and handed to the driver's
    executemany (psycopg pipelines it), skipping per-row SQL compilation.
    """
    return store_rows(conn, rows, policy).new


def store_rows(conn: Connection, rows: Sequence[Mapping[str, Any]],
               policy: series.Policy = series.DEFAULT_POLICY) -> Stored:
    """``insert_rows`` telling what storm control suppressed as well."""
    return _insert(conn, rows, policy)


def _insert(conn: Connection, rows: Sequence[Mapping[str, Any]], policy: series.Policy) -> Stored:
    if not rows:
        return Stored(0)
    for row in rows:
        if not row.keys() >= MESSAGE_COLUMNS:
            raise StoreError(f"a row lacks {sorted(MESSAGE_COLUMNS - row.keys())}")
    partitions.ensure(conn, (row["expires_at"] for row in rows))
    try:
        postgresql = conn.engine.dialect.name == "postgresql"
        new: Sequence[Mapping[str, Any]]
        suppressed: list[Mapping[str, Any]] = []
        if postgresql and not policy.storm.enabled:
            # Nothing to admit: COPY first, number after (see _copy_insert).
            new = _copy_insert(conn, rows)
        else:
            # From here to commit, writers take turns (reserve_seqs): storm
            # control decides on committed windows, series see every new row.
            numbered: Sequence[Mapping[str, Any]] = _numbered(conn, rows)
            if policy.storm.enabled or not postgresql:
                numbered, suppressed = series.admit(conn, _fresh(conn, numbered), policy.storm,
                                                    utcnow())
            new = (_copy_insert(conn, numbered) if postgresql
                   else _executemany_insert(conn, numbered))
        series.record(conn, new, suppressed, policy.exemplars)
        return Stored(len(new), len(suppressed))
    except conn.dialect.dbapi.Error as exc:  # type: ignore[union-attr]
        partitions.forget(conn)  # a partition the reaper dropped is made again next time
        # The driver was used directly: translate as SQLAlchemy would (DataError,
        # IntegrityError, OperationalError...), so callers see one exception tree.
        raise DBAPIError.instance("INSERT INTO messages", None, exc,
                                  conn.dialect.dbapi.Error) from exc  # type: ignore[union-attr]


def _fresh(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The rows whose id is not stored yet (nor earlier in the batch)."""
    ids = list({row["id"] for row in rows})
    stored: set[str] = set()
    for start in range(0, len(ids), 500):  # SQLite caps bound parameters
        chunk = ids[start:start + 500]
        stored.update(conn.execute(select(messages.c.id).where(messages.c.id.in_(chunk)))
                      .scalars())
    fresh = []
    for row in rows:
        if row["id"] not in stored:
            stored.add(row["id"])
            fresh.append(row)
    return fresh


def _executemany_insert(conn: Connection, rows: Sequence[Mapping[str, Any]]
                        ) -> Sequence[Mapping[str, Any]]:
    """SQLite: one executemany of a statement built once; returns the rows (all fresh)."""
    sql = (f"INSERT INTO messages ({', '.join(_COLUMNS)}) VALUES "
           f"({', '.join('?' for _ in _COLUMNS)}) ON CONFLICT (id) DO NOTHING")
    values = [tuple(_sqlite_value(row[c]) for c in _COLUMNS)
              for row in rows]
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(sql, values)
        return rows
    finally:
        cursor.close()


def _copy_insert(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """PostgreSQL: COPY the batch into a session temp table, then insert what is new.

    Returns what the series need of each new row (``_RETURNED``).

    COPY is PostgreSQL's fastest way in; the INSERT ... SELECT keeps "on
    conflict do nothing" on the real table. Rows not numbered yet are
    numbered only after the COPY: numbering locks the seq counter until
    commit (reserve_seqs), so another collector's COPY overlaps ours and only
    the INSERT waits. The temp table empties itself at commit, and is emptied
    after each batch, so nothing is left behind.
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
        first = 0 if numbered else reserve_seqs(conn, len(rows))
        selected = ", ".join(f"seq + {int(first)}" if c == "seq" else c for c in _COLUMNS)
        # Idempotent on the id alone. Partitioned (migration 0004), the
        # primary key is (id, expires_at), and one id can come with two
        # expiries: the SDK's direct sink and the collector, or two collectors,
        # may run with different message_ttl. NOT EXISTS is exact here: this
        # transaction took the seq counter's row lock first (reserve_seqs), so
        # any inserter of the same id has committed before this statement's
        # snapshot. ON CONFLICT covers a batch that holds an id twice.
        cursor.execute(f"INSERT INTO messages ({columns}) SELECT {selected} "
                       "FROM messages_incoming AS incoming WHERE NOT EXISTS "
                       "(SELECT 1 FROM messages WHERE messages.id = incoming.id) "
                       f"ON CONFLICT DO NOTHING RETURNING {', '.join(_RETURNED)}")
        new = [dict(zip(_RETURNED, values, strict=True)) for values in cursor.fetchall()]
        cursor.execute("DELETE FROM messages_incoming")
        return new
    finally:
        cursor.close()


# What series.record needs of a stored row.
_RETURNED = ("kind", "project_id", "event_id", "resource_uuid", "resource_type", "message_level",
             "action_id", "detail_id", "request_id", "created_at")


def _sqlite_value(value: Any) -> Any:
    # SQLite stores datetimes as the text SQLAlchemy writes: "YYYY-MM-DD HH:MM:SS.ffffff".
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


def insert_message(conn: Connection, message: Message,
                   policy: series.Policy = series.DEFAULT_POLICY) -> None:
    """Insert one message (the SDK's direct sink), counted on its series like a batch."""
    store_batch(conn, [message], policy)


def reserve_seqs(conn: Connection, count: int) -> int:
    """Take ``count`` stored-order numbers; returns the first.

    Commit order is seq order, so a reader paging by seq never skips a row
    that commits late: bumping the one counter row locks it until this
    transaction ends, so a concurrent inserter waits here and numbers its
    rows after ours (a PostgreSQL sequence would not: seq 101 could commit
    before 100). SQLite has one writer anyway. The price is that inserting
    transactions serialize from here to commit; the collector batches, so
    that is one short wait per batch. Numbers of rows ignored as already
    stored are skipped: gaps are harmless, order is what counts.
    """
    last = conn.execute(
        update(message_seq).values(value=message_seq.c.value + count).returning(message_seq.c.value)
    ).scalar_one()
    return last - count + 1


def _numbered(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    first = reserve_seqs(conn, len(rows))
    return [{**_NEW_ROW, **row, "seq": first + i} for i, row in enumerate(rows)]


def last_seq(conn: Connection) -> int:
    """The newest stored-order number handed out (0 for an empty store)."""
    return conn.execute(select(message_seq.c.value)).scalar_one()


ReapCursor = tuple[dt.datetime, str]


def delete_expired(
    conn: Connection, now: dt.datetime, batch_size: int, after: ReapCursor | None = None
) -> tuple[int, ReapCursor | None]:
    """Hard-delete up to ``batch_size`` rows whose ``expires_at`` is before now.

    Soft-deleted rows go too, as in Cinder. Rows are taken in (expires_at, id)
    order after ``after``, the cursor the previous batch returned: starting
    each batch from the beginning would step over every index entry the
    earlier batches left behind (not yet vacuumed), making a large reap
    quadratic. On PostgreSQL rows are claimed with SKIP LOCKED, so two reapers
    never wait on or double-count the same rows.
    """
    conditions = [messages.c.expires_at < now]
    if after is not None:
        conditions.append(tuple_(messages.c.expires_at, messages.c.id) > tuple_(*after))
    victims = (
        select(messages.c.expires_at, messages.c.id)
        .where(*conditions)
        .order_by(messages.c.expires_at, messages.c.id)
        .limit(batch_size)
    )
    if conn.engine.dialect.name == "postgresql":
        victims = victims.with_for_update(skip_locked=True)
    # By (expires_at, id): on a partitioned table that prunes to the partition.
    rows = conn.execute(
        delete(messages)
        .where(tuple_(messages.c.expires_at, messages.c.id).in_(victims))
        .returning(messages.c.expires_at, messages.c.id)
    ).all()
    if not rows:
        return 0, after
    return len(rows), max((row.expires_at, row.id) for row in rows)
