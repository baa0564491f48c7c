"""Queries on the messages table, and the typed row they read: ``StoredMessage``.

Every query that serves a user takes the project as a required argument;
the ones that cross projects (for admins and the reaper) say so in their
names. Queries never commit: the caller owns the transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from sqlalchemy import (
    Connection,
    Select,
    and_,
    delete,
    false,
    func,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.sql.elements import ColumnElement

from usermessages.catalog import Kind
from usermessages.errors import MessageNotFound
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


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """One row of the messages table as every reader receives it: typed, built once, frozen.

    It holds every column, internals included (``host``, ``exception_class``,
    ``global_request_id``, and the owner: ``project_id``, ``kind``); what an
    audience may see of it is decided in one place, ``usermessages.web.projections``.
    """

    id: str
    kind: str
    project_id: str | None
    user_id: str
    request_id: str
    resource_type: str
    resource_uuid: str
    event_id: str
    message_level: str
    action_id: str | None
    detail_id: str | None
    host: str
    exception_class: str
    global_request_id: str
    created_at: dt.datetime
    expires_at: dt.datetime
    deleted: bool
    deleted_at: dt.datetime | None
    # The stored order. Every row has one (migration 0002 numbered the older
    # rows); the column is nullable only because SQLite could not add it otherwise.
    seq: int


# What a read selects: a StoredMessage's columns in the order of its fields, so each
# row builds one positionally (by name, through the row's mapping, took a quarter of
# an export's CPU time). A field without a column fails here, at import.
_STORED = tuple(messages.c[f.name] for f in fields(StoredMessage))


def _read(conn: Connection, statement: Select[Any]) -> list[StoredMessage]:
    return [StoredMessage(*row) for row in conn.execute(statement)]


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
    # Keyset from a row already read (an export's previous page), instead of
    # looking the marker up by id: a row deleted meanwhile cannot end the walk.
    after_row: StoredMessage | None = None
    # Free-text search on the rendered summary, resolved to catalog ids first.
    summary: SummaryMatch | None = None


@dataclass(frozen=True)
class SummaryMatch:
    """The stored ids whose rendered text holds a search term (see reader.search).

    The summary is composed at read time from ids, so SQL cannot search its
    text; the catalog says which ids render to a match, and SQL filters on them.
    """

    action_ids: frozenset[str] = frozenset()
    detail_ids: frozenset[str] = frozenset()
    # Matches only across the "action:detail" seam (a term holding the colon).
    pairs: frozenset[tuple[str, str]] = frozenset()
    # Actions whose rows without a detail id match (those render detail "001");
    # legacy rows (no action id) render by event id.
    null_detail_actions: frozenset[str] = frozenset()
    legacy_event_ids: frozenset[str] = frozenset()

    def condition(self) -> ColumnElement[bool]:
        action, detail = messages.c.action_id, messages.c.detail_id
        clauses: list[ColumnElement[bool]] = []
        if self.action_ids:
            clauses.append(action.in_(sorted(self.action_ids)))
        if self.detail_ids:
            clauses.append(and_(action.is_not(None), detail.in_(sorted(self.detail_ids))))
        if self.null_detail_actions:
            clauses.append(and_(action.in_(sorted(self.null_detail_actions)), detail.is_(None)))
        if self.pairs:
            clauses.append(tuple_(action, detail).in_(sorted(self.pairs)))
        if self.legacy_event_ids:
            clauses.append(and_(action.is_(None),
                                messages.c.event_id.in_(sorted(self.legacy_event_ids))))
        return or_(*clauses) if clauses else false()


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


def _sort_value(key: str, marker: StoredMessage) -> Any:
    value = getattr(marker, key)
    return "" if value is None and messages.c[key].nullable else value


def keyset_after(columns: Sequence[ColumnElement[Any]], values: Sequence[Any],
                 directions: Sequence[str], row_values: bool) -> ColumnElement[bool]:
    """Rows strictly after ``values`` in this order of ``columns`` (keyset pagination).

    In one direction, with ``row_values``, a row-value comparison, which
    PostgreSQL's and SQLite's planners read as a range of the composite index.
    MariaDB's do not (measured on 10.11: a page of 10 at 20,000 deep read the
    20,011 rows before it), so there, as for mixed directions, the comparison
    is spelt out key by key, which its range optimizer does read as ranges.
    """
    if row_values and len(set(directions)) == 1:
        left, right = tuple_(*columns), tuple_(*values)
        return left > right if directions[0] == "asc" else left < right
    clauses = []
    for i, (column, value) in enumerate(zip(columns, values, strict=True)):
        step = column > value if directions[i] == "asc" else column < value
        clauses.append(and_(*[c == v for c, v in zip(columns[:i], values[:i], strict=True)], step))
    return or_(*clauses)


def row_values(conn: Connection) -> bool:
    """Does this store's planner turn a row-value comparison into an index range?"""
    return conn.dialect.name != "mysql"


def _after_marker(conn: Connection, sort: list[tuple[str, str]],
                  marker: StoredMessage) -> ColumnElement[bool]:
    """Rows strictly after the marker row in this order."""
    return keyset_after([_sort_column(key) for key, _ in sort],
                        [_sort_value(key, marker) for key, _ in sort],
                        [direction for _, direction in sort], row_values(conn))


def conditions_of(scope: ColumnElement[bool] | None,
                  query: ListQuery) -> list[ColumnElement[bool]]:
    """The WHERE of a query: scope, filters, time range, summary search (no paging)."""
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
    if query.summary is not None:
        conditions.append(query.summary.condition())
    return conditions


def _list(conn: Connection, scope: ColumnElement[bool] | None, query: ListQuery,
          scoped_keys: frozenset[str] = frozenset()) -> list[StoredMessage]:
    conditions = conditions_of(scope, query)
    if query.after_seq is not None:
        statement = (select(*_STORED).where(*conditions, messages.c.seq > query.after_seq)
                     .order_by(messages.c.seq))
        if query.limit is not None:
            statement = statement.limit(query.limit)
        return _read(conn, statement)
    # A key every row shares (the scope's project, an exact filter) orders
    # nothing; left in, it would keep the planner from the index the other
    # keys match (project_id is sorted as coalesce(), which it cannot see is fixed).
    fixed = scoped_keys | query.filters.keys()
    sort = [(key, direction) for key, direction in full_sort(query.sort) if key not in fixed]
    if query.after_row is not None:
        conditions.append(_after_marker(conn, sort, query.after_row))
    elif query.marker is not None:
        if "\x00" in query.marker:
            raise MessageNotFound(query.marker)
        marker_conditions = [_not_deleted(), messages.c.id == query.marker]
        if scope is not None:
            marker_conditions.append(scope)
        found = _read(conn, select(*_STORED).where(*marker_conditions))
        if not found:
            raise MessageNotFound(query.marker)
        conditions.append(_after_marker(conn, sort, found[0]))
    order = [
        _sort_column(key).asc() if direction == "asc" else _sort_column(key).desc()
        for key, direction in sort
    ]
    if query.limit is not None and conn.engine.dialect.name == "postgresql":
        # The page's keys first, then its rows. ix_messages_project_created
        # holds every column a project's list names (schema.PROJECT_LIST_COLUMNS),
        # so PostgreSQL finds the page in it alone (an index-only scan), in
        # any order and under any filter, and reads the table for the page's
        # rows only, by primary key.
        page = (select(messages.c.id, messages.c.expires_at).where(*conditions)
                .order_by(*order).limit(query.limit).offset(query.offset or None).subquery())
        statement = (select(*_STORED)
                     .join(page, and_(messages.c.id == page.c.id,
                                      messages.c.expires_at == page.c.expires_at))
                     .order_by(*order))
        return _read(conn, statement)
    statement = select(*_STORED).where(*conditions).order_by(*order)
    if query.limit is not None:
        statement = statement.limit(query.limit)
    if query.offset:
        statement = statement.offset(query.offset)
    return _read(conn, statement)


def list_messages(conn: Connection, project_id: str, query: ListQuery) -> list[StoredMessage]:
    """A project's visible messages, in the query's order and page."""
    return _list(conn, _project_scope(project_id), query, frozenset({"project_id"}))


def list_messages_all_projects(conn: Connection, query: ListQuery) -> list[StoredMessage]:
    """Every visible message of every kind, for admins."""
    return _list(conn, None, query)


def project_scope(project_id: str | None) -> ColumnElement[bool] | None:
    """What a project's queries are limited to; None (no limit) across projects."""
    return None if project_id is None else _project_scope(project_id)


def count_messages(conn: Connection, project_id: str, query: ListQuery) -> int:
    """How many of a project's messages match the query's filters (paging ignored)."""
    return _count(conn, _project_scope(project_id), query)


def count_messages_all_projects(conn: Connection, query: ListQuery) -> int:
    """How many visible messages of every project match, for admins."""
    return _count(conn, None, query)


def _count(conn: Connection, scope: ColumnElement[bool] | None, query: ListQuery) -> int:
    statement = select(func.count()).select_from(messages).where(*conditions_of(scope, query))
    return conn.execute(statement).scalar_one()


def _get(conn: Connection, message_id: str,
         scope: ColumnElement[bool] | None) -> StoredMessage:
    if "\x00" in message_id:
        raise MessageNotFound(message_id)  # no id holds NUL; PostgreSQL would refuse it
    conditions = [messages.c.id == message_id, _not_deleted()]
    if scope is not None:
        conditions.append(scope)
    found = _read(conn, select(*_STORED).where(*conditions))
    if not found:
        raise MessageNotFound(message_id)
    return found[0]


def get_message(conn: Connection, message_id: str, project_id: str) -> StoredMessage:
    """One of a project's messages; MessageNotFound if absent, deleted or elsewhere."""
    return _get(conn, message_id, _project_scope(project_id))


def get_message_all_projects(conn: Connection, message_id: str) -> StoredMessage:
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


# The distinct projects of the messages table as a loose index scan on
# ix_messages_project_created (project_id leads it): one index probe per project,
# not a scan of every row.
_STORED_PROJECTS = text("""
    WITH RECURSIVE p(id) AS (
        SELECT min(project_id) FROM messages
        UNION ALL
        SELECT (SELECT min(project_id) FROM messages WHERE project_id > p.id)
        FROM p WHERE p.id IS NOT NULL
    )
    SELECT id FROM p WHERE id IS NOT NULL
""")


def stored_projects_all_projects(conn: Connection) -> list[str]:
    """Every project that has messages in the store (the Zaqar collector's queues to visit)."""
    return list(conn.execute(_STORED_PROJECTS).scalars())


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
    keys = (messages.c.expires_at, messages.c.id)
    if conn.engine.dialect.name == "mysql":
        # MariaDB takes no LIMIT in an IN subquery, but its DELETE has ORDER BY,
        # LIMIT and RETURNING of its own (SQLAlchemy's has no ORDER BY). The
        # range is expires_at >= the cursor's; the row value only filters (spelt
        # out as for a listing, the optimizer merged the expiry index with the
        # primary key and sorted their union).
        resume = "" if after is None else " AND expires_at >= :e AND (expires_at, id) > (:e, :i)"
        rows = conn.execute(text(
            f"DELETE FROM messages WHERE expires_at < :now{resume} ORDER BY expires_at, id "
            f"LIMIT {int(batch_size)} RETURNING expires_at, id"),
            {"now": now, **({} if after is None else {"e": after[0], "i": after[1]})}).all()
    else:
        conditions = [messages.c.expires_at < now]
        if after is not None:
            conditions.append(tuple_(*keys) > tuple_(*after))
        victims = select(*keys).where(*conditions).order_by(*keys).limit(batch_size)
        if conn.engine.dialect.name == "postgresql":
            victims = victims.with_for_update(skip_locked=True)
        # By (expires_at, id): on a partitioned table that prunes to the partition.
        rows = conn.execute(
            delete(messages).where(tuple_(*keys).in_(victims)).returning(*keys)).all()
    if not rows:
        return 0, after
    return len(rows), max((row.expires_at, row.id) for row in rows)
