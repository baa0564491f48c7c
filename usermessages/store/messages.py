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

from sqlalchemy import Connection, and_, delete, false, insert, or_, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.elements import ColumnElement

from usermessages.catalog import Kind
from usermessages.errors import MessageNotFound
from usermessages.store.schema import messages

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


def full_sort(sort: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """Append Cinder's tie-breakers (created_at, id) in the first key's direction."""
    keys = list(sort) or [("created_at", "desc")]
    first_direction = keys[0][1]
    present = {key for key, _ in keys}
    keys += [(key, first_direction) for key in TIE_BREAKERS if key not in present]
    return keys


def _not_deleted() -> ColumnElement[bool]:
    return messages.c.deleted == false()


def _project_scope(project_id: str) -> ColumnElement[bool]:
    # Project users only ever see their project's API messages.
    return and_(messages.c.project_id == project_id, messages.c.kind == Kind.API.value)


def _after_marker(sort: list[tuple[str, str]], marker: Mapping[str, Any]) -> ColumnElement[bool]:
    """Rows strictly after the marker row in this order (keyset pagination)."""
    directions = {direction for _, direction in sort}
    columns = [messages.c[key] for key, _ in sort]
    values = [marker[key] for key, _ in sort]
    if len(directions) == 1:
        # One direction: a row-value comparison, which the composite indexes serve.
        left, right = tuple_(*columns), tuple_(*values)
        return left > right if directions == {"asc"} else left < right
    clauses = []
    for i, (column, value) in enumerate(zip(columns, values)):
        step = column > value if sort[i][1] == "asc" else column < value
        clauses.append(and_(*[c == v for c, v in zip(columns[:i], values[:i])], step))
    return or_(*clauses)


def _list(conn: Connection, scope: ColumnElement[bool] | None, query: ListQuery) -> list[dict]:
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
    sort = full_sort(query.sort)
    if query.marker is not None:
        marker_conditions = [_not_deleted(), messages.c.id == query.marker]
        if scope is not None:
            marker_conditions.append(scope)
        marker = conn.execute(select(messages).where(*marker_conditions)).mappings().first()
        if marker is None:
            raise MessageNotFound(query.marker)
        conditions.append(_after_marker(sort, marker))
    order = [
        messages.c[key].asc() if direction == "asc" else messages.c[key].desc()
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
    return _list(conn, _project_scope(project_id), query)


def list_messages_all_projects(conn: Connection, query: ListQuery) -> list[dict]:
    """Every visible message of every kind, for admins."""
    return _list(conn, None, query)


def _get(conn: Connection, message_id: str, scope: ColumnElement[bool] | None) -> dict:
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


def insert_messages(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> int:
    """Insert rows, ignoring ids already stored, so redelivery stores nothing twice.

    Returns how many rows were new.
    """
    if not rows:
        return 0
    dialect = conn.engine.dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    statement = module.insert(messages).on_conflict_do_nothing(index_elements=["id"])
    result = conn.execute(statement, list(rows))
    return result.rowcount if result.rowcount is not None and result.rowcount >= 0 else len(rows)


def insert_message(conn: Connection, row: Mapping[str, Any]) -> None:
    """Insert one row (the SDK's direct sink; the id is fresh, so no conflict)."""
    conn.execute(insert(messages), [dict(row)])


def delete_expired(conn: Connection, now: dt.datetime, batch_size: int) -> int:
    """Hard-delete up to ``batch_size`` rows whose ``expires_at`` is before now.

    Soft-deleted rows go too, as in Cinder. On PostgreSQL the rows are
    claimed with SKIP LOCKED, so two reapers never wait on or double-count
    the same rows.
    """
    victims = (
        select(messages.c.id)
        .where(messages.c.expires_at < now)
        .order_by(messages.c.expires_at)
        .limit(batch_size)
    )
    if conn.engine.dialect.name == "postgresql":
        victims = victims.with_for_update(skip_locked=True)
    result = conn.execute(delete(messages).where(messages.c.id.in_(victims.scalar_subquery())))
    return result.rowcount
