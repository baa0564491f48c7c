"""Queries on the Event Viewer's server-side sessions (see viewer/sessions.py).

A row is a session's sealed data under the hash of its cookie's id, until it
expires; what the data says is the viewer's business. Queries never commit:
the caller owns the transaction.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, delete, func, insert, select, update

from usermessages.store.schema import viewer_sessions


def load(conn: Connection, key: str, now: dt.datetime) -> str | None:
    """The session's data, or None: never stored, dropped, or expired."""
    return conn.execute(select(viewer_sessions.c.data).where(
        viewer_sessions.c.id == key, viewer_sessions.c.expires_at > now)).scalar_one_or_none()


def create(conn: Connection, key: str, data: str, expires_at: dt.datetime) -> None:
    conn.execute(insert(viewer_sessions).values(id=key, data=data, expires_at=expires_at))


def update_live(conn: Connection, key: str, data: str, now: dt.datetime,
                expires_at: dt.datetime) -> bool:
    """Replace a session's data while it is stored and not expired; whether it was."""
    result = conn.execute(update(viewer_sessions).where(
        viewer_sessions.c.id == key, viewer_sessions.c.expires_at > now)
        .values(data=data, expires_at=expires_at))
    return result.rowcount == 1


def drop(conn: Connection, key: str) -> bool:
    """Forget a session; whether it was stored."""
    return conn.execute(delete(viewer_sessions).where(viewer_sessions.c.id == key)).rowcount == 1


def live(conn: Connection, now: dt.datetime) -> int:
    """How many sessions are live now."""
    return int(conn.execute(select(func.count()).select_from(viewer_sessions)
                            .where(viewer_sessions.c.expires_at > now)).scalar_one())


def delete_expired(conn: Connection, now: dt.datetime) -> int:
    """Sessions past their expiry (the reaper's); how many."""
    return conn.execute(delete(viewer_sessions)
                        .where(viewer_sessions.c.expires_at <= now)).rowcount
