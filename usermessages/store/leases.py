"""Leases: a job only one node may run at a time, taken by a compare-and-set of one row.

A lease is held until ``expires_at``: a holder that dies loses it when that
passes, with nothing to clean up. Taking it is one UPDATE that matches only
a free or lapsed row; on a Galera cluster two nodes taking it at once both
match locally, and certification lets one commit through and aborts the
other (a deadlock error, 1213), which counts as not taken. GET_LOCK() and
table locks would not do: Galera replicates neither, so each node would
grant its own. Times are the caller's clock (naive UTC); a lease lasts far
longer than any clock skew between nodes. Queries never commit: the caller
owns the transaction.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, or_, update

from usermessages.store.schema import leases


def take(conn: Connection, name: str, holder: str, now: dt.datetime,
         until: dt.datetime) -> bool:
    """Take the lease ``name`` until ``until`` if it is free, lapsed, or already ours."""
    result = conn.execute(update(leases).where(
        leases.c.name == name,
        or_(leases.c.expires_at.is_(None), leases.c.expires_at <= now,
            leases.c.holder == holder),
    ).values(holder=holder, expires_at=until))
    return result.rowcount == 1


def renew(conn: Connection, name: str, holder: str, until: dt.datetime) -> bool:
    """Keep our lease until ``until``; False when another holder has taken it."""
    result = conn.execute(update(leases).where(
        leases.c.name == name, leases.c.holder == holder).values(expires_at=until))
    return result.rowcount == 1


def release(conn: Connection, name: str, holder: str) -> None:
    """Free our lease now (no-op if another holder has it)."""
    conn.execute(update(leases).where(leases.c.name == name, leases.c.holder == holder)
                 .values(expires_at=None))
