"""Queries on the slot leases of the stream and export caps (see web/limits.py).

A lease is one open stream or running export, held by one process until a
time it keeps pushing forward. Counts only see leases that have not lapsed,
so a process that died gives its slots back by itself. Queries never commit:
the caller owns the transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection

from sqlalchemy import Connection, delete, func, insert, select, update

from usermessages.store.schema import slot_kinds, slot_leases


def take_turn(conn: Connection, kind: str) -> None:
    """Bump ``kind``'s row: it stays locked until this transaction ends, so the
    counts read next cannot change under it (another taker waits for its turn)."""
    bumped = conn.execute(update(slot_kinds).where(slot_kinds.c.kind == kind)
                          .values(acquired=slot_kinds.c.acquired + 1))
    if bumped.rowcount == 0:  # a kind no migration created a row for
        conn.execute(insert(slot_kinds).values(kind=kind, acquired=1))


def held(conn: Connection, kind: str, now: dt.datetime, project_id: str | None = None) -> int:
    """Live leases of ``kind``: everyone's, or ``project_id``'s."""
    query = select(func.count()).select_from(slot_leases).where(
        slot_leases.c.kind == kind, slot_leases.c.expires_at > now)
    if project_id is not None:
        query = query.where(slot_leases.c.project_id == project_id)
    return int(conn.execute(query).scalar_one())


def add(conn: Connection, lease_id: str, kind: str, project_id: str, holder: str,
        expires_at: dt.datetime) -> None:
    conn.execute(insert(slot_leases).values(id=lease_id, kind=kind, project_id=project_id,
                                            holder=holder, expires_at=expires_at))


def renew(conn: Connection, lease_ids: Collection[str], expires_at: dt.datetime) -> int:
    """Push the leases' end to ``expires_at``; how many still existed."""
    if not lease_ids:
        return 0
    result = conn.execute(update(slot_leases).where(slot_leases.c.id.in_(list(lease_ids)))
                          .values(expires_at=expires_at))
    return result.rowcount


def remove(conn: Connection, lease_ids: Collection[str]) -> None:
    if lease_ids:
        conn.execute(delete(slot_leases).where(slot_leases.c.id.in_(list(lease_ids))))


def remove_holder(conn: Connection, holder: str) -> int:
    """Every lease of one holder (a process known to be gone); how many there were."""
    return conn.execute(delete(slot_leases).where(slot_leases.c.holder == holder)).rowcount


def delete_lapsed(conn: Connection, now: dt.datetime, kind: str | None = None) -> int:
    """Leases whose holder stopped renewing them (of ``kind``, or of every kind)."""
    statement = delete(slot_leases).where(slot_leases.c.expires_at <= now)
    if kind is not None:
        statement = statement.where(slot_leases.c.kind == kind)
    return conn.execute(statement).rowcount
