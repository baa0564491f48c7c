"""Series: repeats of one failure counted losslessly, and storm control.

A series is keyed by (kind, project, event, resource); its id derives from
that key, so every writer upserts the same row. Each batch adds to it in one
``INSERT ... ON CONFLICT DO UPDATE SET count = count + excluded.count``
statement, keys sorted so two writers lock rows in the same order. Only
occurrences a batch really adds are counted: rows stored as new (a
redelivered id is not) and rows storm control suppressed.

Storm control caps the rows stored per project and per (project, event) in a
fixed window. The decision is the database's, not a collector's: it runs
after the writer took the stored-order counter's row lock (see
``messages.reserve_seqs``), so writers decide one after another on the
committed windows, and two collectors together store no more than the limit.
Queries never commit: the caller owns the transaction.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, RowMapping, and_, delete, select, tuple_
from sqlalchemy.sql.elements import ColumnElement

from usermessages.catalog import Kind
from usermessages.config import DEFAULTS
from usermessages.errors import SeriesNotFound
from usermessages.store.schema import message_series, message_storm

# Fixed forever: series ids must not change between releases.
_NAMESPACE = uuid.UUID("5c7e0f5e-6d1b-4c55-9a8e-7365726965ff")
_SEP = "\x1f"
# What a series keeps of its latest occurrence, besides the key.
_LATEST = ("resource_type", "message_level", "action_id", "detail_id")


@dataclass(frozen=True)
class Storm:
    """Rows stored per ``window`` seconds: per project, per (project, event); 0 is no limit."""

    per_project: int = DEFAULTS.collector_storm_rows_per_project
    per_event: int = DEFAULTS.collector_storm_rows_per_event
    window: int = DEFAULTS.collector_storm_window

    @property
    def enabled(self) -> bool:
        return self.per_project > 0 or self.per_event > 0


@dataclass(frozen=True)
class Policy:
    """How a writer groups what it stores: exemplars kept, storm limits."""

    exemplars: int = DEFAULTS.collector_series_exemplars
    storm: Storm = Storm()


DEFAULT_POLICY = Policy()


def series_id(kind: str, project_id: str | None, event_id: str, resource_uuid: str) -> str:
    """The id of the series an occurrence belongs to ('' for no resource).

    ``uuid.uuid5(_NAMESPACE, key)``, written out: building the UUID object
    cost more than the hash on the collector's hot path (one per message).
    """
    key = _SEP.join((kind, project_id or "", event_id, resource_uuid))
    digest = bytearray(hashlib.sha1(_NAMESPACE.bytes + key.encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _key(row: Mapping[str, Any]) -> str:
    return series_id(row["kind"], row["project_id"], row["event_id"], row["resource_uuid"])


def record(conn: Connection, stored: Iterable[Mapping[str, Any]],
           suppressed: Iterable[Mapping[str, Any]] = (),
           exemplars: int = DEFAULTS.collector_series_exemplars) -> int:
    """Add occurrences to their series in one statement; returns how many series.

    ``stored`` and ``suppressed`` are message rows (as ``Message.to_row``).
    """
    groups: dict[str, list[tuple[Mapping[str, Any], bool]]] = defaultdict(list)
    for row in stored:
        groups[_key(row)].append((row, False))
    for row in suppressed:
        groups[_key(row)].append((row, True))
    if not groups:
        return 0
    values: list[tuple[Any, ...]] = []
    for sid in sorted(groups):  # one lock order for every writer: no deadlock
        members = sorted(groups[sid], key=lambda m: m[0]["created_at"], reverse=True)
        latest = members[0][0]
        recent = [row["request_id"] for row, _ in members if row["request_id"]][:exemplars]
        values.append((
            sid, latest["kind"], latest["project_id"], latest["event_id"],
            latest["resource_uuid"], *(latest[c] for c in _LATEST),
            len(members), sum(1 for _, s in members if s),
            members[-1][0]["created_at"], latest["created_at"], json.dumps(recent),
        ))
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        if conn.engine.dialect.name == "mysql":
            # executemany, which PyMySQL sends as multi-row INSERTs: a VALUES list
            # built by SQLAlchemy costs ten times more to compile than to run.
            cursor.executemany(_mysql_upsert_sql(exemplars), values)
        elif conn.engine.dialect.name != "postgresql":
            cursor.executemany(_upsert_sql(_values("?"), exemplars, postgresql=False),
                               [(*row[:-3], sqlite_value(row[-3]), sqlite_value(row[-2]),
                                 row[-1]) for row in values])  # first_seen, last_seen
        elif len(values) == 1:  # one statement, no temp table (the SDK's direct sink)
            cursor.execute(_upsert_sql(_values("%s"), exemplars, postgresql=True), values[0])
        else:
            _copy_upsert(cursor, values, exemplars)
    finally:
        cursor.close()
    return len(groups)


def _values(placeholder: str) -> str:
    return "VALUES (" + ", ".join(placeholder for _ in _COLUMNS) + ")"


def _copy_upsert(cursor: Any, values: list[tuple[Any, ...]], exemplars: int) -> None:
    """PostgreSQL: COPY the batch's series into a temp table, then one upsert from it.

    A VALUES list of thousands of rows cost more to build and parse than to
    run; COPY sends them as data. So would one upsert from unnest() of an
    array per column, but psycopg adapts a list element by element in
    Python: it ran at half COPY's rate for batches of 2,000 new series, and
    one JSON document (json_populate_recordset) at 0.64 (interleaved, batch
    by batch). Rows go in id order (the lock order).
    """
    cursor.execute("CREATE TEMP TABLE IF NOT EXISTS series_incoming "
                   "(LIKE message_series) ON COMMIT DELETE ROWS")
    with cursor.copy(f"COPY series_incoming ({', '.join(_COLUMNS)}) FROM STDIN") as copy:
        for row in values:
            copy.write_row(row)
    cursor.execute(_upsert_sql(f"SELECT {', '.join(_COLUMNS)} FROM series_incoming ORDER BY id",
                               exemplars, postgresql=True))
    cursor.execute("DELETE FROM series_incoming")


_COLUMNS = ("id", "kind", "project_id", "event_id", "resource_uuid", *_LATEST,
            "count", "suppressed", "first_seen", "last_seen", "request_ids")


def upsert_one_sql(rows: str, exemplars: int) -> str:
    """PostgreSQL: the upsert counting each row of ``rows`` (a CTE's name) once on its series.

    For one new row at most: its series id and exemplars come as the two
    parameters (``series_id`` of the row, and ``[request_id]`` as JSON).
    """
    latest = ", ".join(_LATEST)
    return _upsert_sql(
        f"SELECT %s, kind, project_id, event_id, resource_uuid, {latest}, 1, 0, created_at, "
        f"created_at, %s FROM {rows}", exemplars, postgresql=True)


def key_of(row: Mapping[str, Any]) -> str:
    """The id of the series a message row belongs to."""
    return _key(row)


def _upsert_sql(source: str, exemplars: int, postgresql: bool) -> str:
    """The upsert of the series rows ``source`` gives (a VALUES row or a SELECT)."""
    # Newest first: this batch's exemplars, then the stored ones, cut to N. A
    # batch that brings N of its own (a storm's series) keeps them and never
    # reads the stored ones; otherwise one JSON path slice, no subquery.
    if postgresql:
        merged = (
            f"CASE WHEN json_array_length(excluded.request_ids::json) >= {exemplars} "
            "THEN excluded.request_ids ELSE jsonb_path_query_array(excluded.request_ids::jsonb "
            f"|| message_series.request_ids::jsonb, '$[0 to {exemplars - 1}]')::text END"
        )
    else:
        merged = (
            f"CASE WHEN json_array_length(excluded.request_ids) >= {exemplars} "
            "THEN excluded.request_ids ELSE "
            "(SELECT json_group_array(value) FROM (SELECT value FROM "
            "(SELECT 0 AS src, key AS k, value FROM json_each(excluded.request_ids) "
            "UNION ALL SELECT 1, key, value FROM json_each(message_series.request_ids)) "
            f"ORDER BY src, k LIMIT {exemplars})) END"
        )
    latest = ", ".join(
        f"{c} = CASE WHEN excluded.last_seen >= message_series.last_seen "
        f"THEN excluded.{c} ELSE message_series.{c} END" for c in _LATEST)
    least, greatest = ("LEAST", "GREATEST") if postgresql else ("MIN", "MAX")
    return (
        f"INSERT INTO message_series ({', '.join(_COLUMNS)}) {source}"
        " ON CONFLICT (id) DO UPDATE SET "
        "count = message_series.count + excluded.count, "
        "suppressed = message_series.suppressed + excluded.suppressed, "
        f"first_seen = {least}(message_series.first_seen, excluded.first_seen), "
        f"last_seen = {greatest}(message_series.last_seen, excluded.last_seen), "
        f"{latest}, request_ids = {merged}"
    )


def _mysql_upsert_sql(exemplars: int) -> str:
    """MariaDB: the upsert of one series row, for executemany.

    ON DUPLICATE KEY UPDATE assigns left to right and each assignment sees
    the ones before it, so last_seen moves last: the latest occurrence's
    fields compare against the stored last_seen. JSON_EXTRACT with a range
    path (MariaDB 10.9+) keeps the newest ``exemplars``.
    """
    merged = ("COALESCE(JSON_EXTRACT(JSON_MERGE_PRESERVE(VALUES(request_ids), request_ids), "
              f"'$[0 to {exemplars - 1}]'), '[]')" if exemplars > 0 else "'[]'")
    latest = ", ".join(
        f"{c} = IF(VALUES(last_seen) >= last_seen, VALUES({c}), {c})" for c in _LATEST)
    return (
        f"INSERT INTO message_series ({', '.join(_COLUMNS)}) {_values('%s')}"
        f" ON DUPLICATE KEY UPDATE {latest}, request_ids = {merged}, "
        "count = count + VALUES(count), suppressed = suppressed + VALUES(suppressed), "
        "first_seen = LEAST(first_seen, VALUES(first_seen)), "
        "last_seen = GREATEST(last_seen, VALUES(last_seen))"
    )


def sqlite_value(value: Any) -> Any:
    """A value as SQLAlchemy stores it on SQLite (datetimes as text
    "YYYY-MM-DD HH:MM:SS.ffffff", so they compare and read back), for statements
    that go through the driver (isoformat's, for a naive one: three times faster
    than strftime)."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            return value.isoformat(" ", "microseconds")
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


def admit(conn: Connection, rows: Sequence[Mapping[str, Any]], storm: Storm,
          now: dt.datetime) -> tuple[list[Mapping[str, Any]], list[Mapping[str, Any]]]:
    """Split new rows into (stored, suppressed) by the storm windows, and advance them.

    The caller holds the stored-order counter's lock (see the module's
    docstring), so the windows read here are the committed ones and no other
    writer changes them before this transaction ends. Two statements: one
    read of the batch's windows, one upsert of those this batch advanced (a
    window it stored nothing in is left as it was: absent, or expired, it
    reads as a fresh one next time).
    """
    if not storm.enabled or not rows:
        return list(rows), []
    scopes = sorted({scope for row in rows for scope in _scopes(row)})
    window = dt.timedelta(seconds=storm.window)
    state: dict[str, list[Any]] = {scope: [now, 0] for scope in scopes}
    for scope, start, stored in _windows(conn, scopes):
        if now - start < window:
            state[scope] = [start, stored]
    kept: list[Mapping[str, Any]] = []
    suppressed: list[Mapping[str, Any]] = []
    advanced: set[str] = set()
    for row in rows:
        project, event = _scopes(row)
        if ((storm.per_project and state[project][1] >= storm.per_project)
                or (storm.per_event and state[event][1] >= storm.per_event)):
            suppressed.append(row)
            continue
        state[project][1] += 1
        state[event][1] += 1
        advanced.update((project, event))
        kept.append(row)
    if advanced:
        _advance(conn, [(scope, state[scope][0], state[scope][1])
                        for scope in scopes if scope in advanced])
    return kept, suppressed


_STORM_UPSERT = ("ON CONFLICT (scope) DO UPDATE SET window_start = excluded.window_start, "
                 "stored = excluded.stored")


def _windows(conn: Connection, scopes: list[str]) -> list[tuple[str, dt.datetime, int]]:
    """The stored windows of these scopes.

    On PostgreSQL and SQLite the scopes go as one JSON document (json.dumps is
    C; psycopg adapts a list parameter element by element in Python, and
    SQLAlchemy renders an IN list of thousands of parameters). MariaDB's
    JSON_TABLE is not worth it there: an IN list its driver formats at once.
    """
    dialect = conn.engine.dialect.name
    if dialect == "mysql":
        return [(scope, start, stored) for scope, start, stored in conn.execute(
            select(message_storm).where(message_storm.c.scope.in_(scopes)))]
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute("SELECT scope, window_start, stored FROM message_storm WHERE scope IN "
                       + ("(SELECT json_array_elements_text(%s::json))" if dialect == "postgresql"
                          else "(SELECT value FROM json_each(?))"), (json.dumps(scopes),))
        return [(scope, dt.datetime.fromisoformat(start) if isinstance(start, str) else start,
                 stored)  # SQLite's, read through the driver, is text
                for scope, start, stored in cursor.fetchall()]
    finally:
        cursor.close()


def _advance(conn: Connection, windows: list[tuple[str, dt.datetime, int]]) -> None:
    """Upsert these windows in one statement."""
    dialect = conn.engine.dialect.name
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        if dialect == "mysql":
            cursor.executemany(
                "INSERT INTO message_storm (scope, window_start, stored) VALUES (%s, %s, %s) "
                "ON DUPLICATE KEY UPDATE window_start = VALUES(window_start), "
                "stored = VALUES(stored)", windows)
            return
        changed = json.dumps([[scope, sqlite_value(start), stored]
                              for scope, start, stored in windows])
        cursor.execute(
            "INSERT INTO message_storm (scope, window_start, stored) "
            + ("SELECT e->>0, (e->>1)::timestamp, (e->>2)::int "
               "FROM json_array_elements(%s::json) AS e " if dialect == "postgresql"
               else "SELECT value->>0, value->>1, value->>2 FROM json_each(?) WHERE true ")
            + _STORM_UPSERT, (changed,))
    finally:
        cursor.close()


def _scopes(row: Mapping[str, Any]) -> tuple[str, str]:
    project = _SEP.join(("p", row["project_id"] or ""))
    return project, _SEP.join((project, row["event_id"]))


def counts(conn: Connection, ids: Sequence[str]) -> dict[str, int]:
    """The count of each of these series (absent ones left out)."""
    found: dict[str, int] = {}
    for start in range(0, len(ids), 500):  # SQLite caps bound parameters
        chunk = list(ids[start:start + 500])
        found.update((sid, count) for sid, count in conn.execute(
            select(message_series.c.id, message_series.c.count)
            .where(message_series.c.id.in_(chunk))))
    return found


def delete_storm_windows(conn: Connection, before: dt.datetime) -> int:
    """Forget windows that started before ``before`` (they no longer limit anything)."""
    return conn.execute(
        delete(message_storm).where(message_storm.c.window_start < before)).rowcount


def delete_expired(conn: Connection, before: dt.datetime, batch_size: int) -> int:
    """Hard-delete up to ``batch_size`` series last seen before ``before``; across projects."""
    expired = message_series.c.last_seen < before
    if conn.engine.dialect.name == "mysql":  # no LIMIT in an IN subquery: DELETE ... LIMIT
        return conn.execute(delete(message_series).where(expired)
                            .with_dialect_options(mysql_limit=batch_size)).rowcount
    victims = (select(message_series.c.id).where(expired)
               .order_by(message_series.c.last_seen, message_series.c.id).limit(batch_size))
    if conn.engine.dialect.name == "postgresql":
        victims = victims.with_for_update(skip_locked=True)
    return conn.execute(delete(message_series).where(message_series.c.id.in_(victims))).rowcount


@dataclass(frozen=True, slots=True)
class StoredSeries:
    """One row of the series table as readers receive it: typed, built once, frozen.

    Its catalog ids, level and resource type are its latest occurrence's; what
    an audience may see of it is decided in ``usermessages.web.projections``.
    """

    id: str
    kind: str
    project_id: str | None
    event_id: str
    resource_uuid: str
    resource_type: str
    message_level: str
    action_id: str | None
    detail_id: str | None
    count: int
    suppressed: int
    first_seen: dt.datetime
    last_seen: dt.datetime
    # The most recent request ids, newest first (at most the writer's exemplars).
    request_ids: tuple[str, ...]

    @classmethod
    def from_row(cls, row: RowMapping) -> StoredSeries:
        """The row of ``select(message_series)``, its JSON exemplars decoded."""
        return cls(**{**row, "request_ids": tuple(json.loads(row["request_ids"]))})


@dataclass(frozen=True)
class SeriesQuery:
    """A validated series list request: exact filters, a page after ``marker``."""

    filters: Mapping[str, str]
    limit: int
    marker: str | None = None


SERIES_FILTERS = frozenset({"event_id", "resource_uuid", "resource_type", "project_id"})


def _project_scope(project_id: str) -> ColumnElement[bool]:
    return and_(message_series.c.project_id == project_id,
                message_series.c.kind == Kind.API.value)


def _list(conn: Connection, scope: ColumnElement[bool] | None,
          query: SeriesQuery) -> list[StoredSeries]:
    conditions = [] if scope is None else [scope]
    for key, value in query.filters.items():
        conditions.append(message_series.c[key] == value)
    order = (message_series.c.last_seen, message_series.c.id)
    if query.marker is not None:
        marker = _get(conn, query.marker, scope)
        conditions.append(tuple_(*order) < tuple_(marker.last_seen, marker.id))
    statement = (select(message_series).where(*conditions)
                 .order_by(*(c.desc() for c in order)).limit(query.limit))
    return [StoredSeries.from_row(row) for row in conn.execute(statement).mappings()]


def list_series(conn: Connection, project_id: str, query: SeriesQuery) -> list[StoredSeries]:
    """A project's series, last seen first."""
    return _list(conn, _project_scope(project_id), query)


def list_series_all_projects(conn: Connection, query: SeriesQuery) -> list[StoredSeries]:
    """Every series of every kind, last seen first, for admins."""
    return _list(conn, None, query)


def _get(conn: Connection, sid: str, scope: ColumnElement[bool] | None) -> StoredSeries:
    if "\x00" in sid:
        raise SeriesNotFound(sid)
    conditions = [message_series.c.id == sid] + ([] if scope is None else [scope])
    row = conn.execute(select(message_series).where(*conditions)).mappings().first()
    if row is None:
        raise SeriesNotFound(sid)
    return StoredSeries.from_row(row)


def get_series(conn: Connection, sid: str, project_id: str) -> StoredSeries:
    """One of a project's series; SeriesNotFound if absent or elsewhere."""
    return _get(conn, sid, _project_scope(project_id))


def get_series_all_projects(conn: Connection, sid: str) -> StoredSeries:
    """Any series, for admins."""
    return _get(conn, sid, None)
