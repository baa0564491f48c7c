"""Counts of messages: by a column, and by hour or day, one GROUP BY each.

Same scope and filters as a list (``messages.conditions_of``). On PostgreSQL
(and MariaDB) the GROUP BY runs over every expiry-day partition the filters do not prune;
the counts are exact either way.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy.sql.elements import ColumnElement

from usermessages.store.messages import ListQuery, conditions_of, project_scope
from usermessages.store.schema import messages

# The columns counts may be grouped by: what a user recognizes a failure by.
DIMENSIONS = ("event_id", "message_level", "resource_type")
BUCKETS = {"hour": dt.timedelta(hours=1), "day": dt.timedelta(days=1)}


def count_by(conn: Connection, project_id: str | None, query: ListQuery,
             dimension: str) -> list[tuple[str, int]]:
    """(value, count) for each value of ``dimension``, most frequent first.

    ``project_id`` None counts across projects (admins only; the caller decides).
    """
    if dimension not in DIMENSIONS:
        raise ValueError(f"unknown dimension {dimension}")
    column = messages.c[dimension]
    count = func.count().label("n")
    statement = (select(column, count)
                 .where(*conditions_of(project_scope(project_id), query))
                 .group_by(column)
                 .order_by(count.desc(), column))
    return [(row[0], row[1]) for row in conn.execute(statement)]


def _bucket_start(conn: Connection, bucket: str) -> ColumnElement[Any]:
    created = messages.c.created_at
    if conn.engine.dialect.name == "postgresql":
        return func.date_trunc(bucket, created)
    if conn.engine.dialect.name == "mysql":  # text, as on SQLite (MariaDB has no date_trunc)
        return func.date_format(created, "%Y-%m-%d %H:00:00" if bucket == "hour"
                                else "%Y-%m-%d 00:00:00")
    # SQLite stores the text "YYYY-MM-DD HH:MM:SS.ffffff": a prefix is the bucket.
    return func.strftime("%Y-%m-%d %H:00:00" if bucket == "hour" else "%Y-%m-%d 00:00:00",
                         created)


def truncate(value: dt.datetime, bucket: str) -> dt.datetime:
    """The start of the bucket holding ``value`` (naive UTC, as stored)."""
    value = value.replace(minute=0, second=0, microsecond=0)
    return value.replace(hour=0) if bucket == "day" else value


def count_by_time(conn: Connection, project_id: str | None, query: ListQuery,
                  bucket: str) -> list[tuple[dt.datetime, int]]:
    """(bucket start, count) for every bucket from created_since to created_before.

    Both ends must be set (the caller bounds how many buckets that makes);
    empty buckets are listed with 0, so a histogram needs nothing else.
    """
    if bucket not in BUCKETS or query.created_since is None or query.created_before is None:
        raise ValueError("count_by_time needs a bucket and both ends of the range")
    start = _bucket_start(conn, bucket).label("bucket")
    statement = (select(start, func.count())
                 .where(*conditions_of(project_scope(project_id), query))
                 .group_by(start))
    counts: dict[dt.datetime, int] = {}
    for when, n in conn.execute(statement):
        if isinstance(when, str):
            when = dt.datetime.fromisoformat(when)
        counts[when.replace(tzinfo=None)] = n
    step = BUCKETS[bucket]
    buckets = []
    at = truncate(query.created_since, bucket)
    while at < query.created_before:
        buckets.append((at, counts.get(at, 0)))
        at += step
    return buckets
