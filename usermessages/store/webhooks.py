"""Queries on webhook subscriptions and their delivery log.

Queries that serve a user take the project; the deliverer's cross the
projects and say so. Queries never commit: the caller owns the transaction.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, and_, delete, insert, or_, select, true, update

from usermessages.errors import NotFound
from usermessages.store.messages import StoredMessage
from usermessages.store.schema import webhook_deliveries, webhooks

# The columns a user may see: never the secret, nor the deliverer's bookkeeping.
PUBLIC_COLUMNS = ("id", "project_id", "user_id", "url", "message_level", "event_id",
                  "resource_type", "enabled", "disabled_reason", "created_at", "failures")
FILTERS = ("message_level", "event_id", "resource_type")


class WebhookNotFound(NotFound):
    def __init__(self, webhook_id: str) -> None:
        super().__init__(f"Webhook {webhook_id[:64]} could not be found.")


def create(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(insert(webhooks).values(**row))


def count(conn: Connection, project_id: str) -> int:
    rows = conn.execute(select(webhooks.c.id).where(webhooks.c.project_id == project_id))
    return len(rows.all())


def list_for_project(conn: Connection, project_id: str) -> list[dict]:
    statement = (select(*(webhooks.c[c] for c in PUBLIC_COLUMNS))
                 .where(webhooks.c.project_id == project_id)
                 .order_by(webhooks.c.created_at, webhooks.c.id))
    return [dict(row) for row in conn.execute(statement).mappings()]


def get(conn: Connection, project_id: str, webhook_id: str) -> dict:
    if len(webhook_id) > 36 or "\x00" in webhook_id:
        raise WebhookNotFound(webhook_id)  # no id is longer; PostgreSQL would refuse a NUL
    statement = select(*(webhooks.c[c] for c in PUBLIC_COLUMNS)).where(
        webhooks.c.id == webhook_id, webhooks.c.project_id == project_id)
    row = conn.execute(statement).mappings().first()
    if row is None:
        raise WebhookNotFound(webhook_id)
    return dict(row)


def remove(conn: Connection, project_id: str, webhook_id: str) -> None:
    get(conn, project_id, webhook_id)
    conn.execute(delete(webhook_deliveries).where(webhook_deliveries.c.webhook_id == webhook_id))
    conn.execute(delete(webhooks).where(webhooks.c.id == webhook_id))


def deliveries(conn: Connection, project_id: str, webhook_id: str, limit: int) -> list[dict]:
    """The newest ``limit`` attempts, newest first (receivers' bodies are never kept)."""
    get(conn, project_id, webhook_id)
    statement = (select(webhook_deliveries.c.message_id, webhook_deliveries.c.seq,
                        webhook_deliveries.c.attempt, webhook_deliveries.c.status_code,
                        webhook_deliveries.c.error, webhook_deliveries.c.outcome,
                        webhook_deliveries.c.created_at)
                 .where(webhook_deliveries.c.webhook_id == webhook_id)
                 .order_by(webhook_deliveries.c.id.desc()).limit(limit))
    return [dict(row) for row in conn.execute(statement).mappings()]


# --- the deliverer's side (all projects) -------------------------------------

def due_all_projects(conn: Connection, now: dt.datetime, newest: int) -> list[dict]:
    """Enabled subscriptions behind message ``newest`` whose back-off is over and which no
    live deliverer holds; least recently served first (never served: first of all)."""
    statement = select(webhooks).where(
        webhooks.c.enabled == true(),
        webhooks.c.cursor < newest,
        or_(webhooks.c.next_attempt_at.is_(None), webhooks.c.next_attempt_at <= now),
        or_(webhooks.c.lease_until.is_(None), webhooks.c.lease_until <= now),
    # Never served (NULL) first, spelt so every store takes it (MariaDB has no NULLS FIRST).
    ).order_by(webhooks.c.lease_until.is_not(None), webhooks.c.lease_until, webhooks.c.id)
    return [dict(row) for row in conn.execute(statement).mappings()]


def claim(conn: Connection, webhook_id: str, now: dt.datetime, until: dt.datetime) -> bool:
    """Take the subscription's lease; False when another deliverer holds it."""
    result = conn.execute(update(webhooks).where(
        webhooks.c.id == webhook_id, webhooks.c.enabled == true(),
        or_(webhooks.c.lease_until.is_(None), webhooks.c.lease_until <= now),
    ).values(lease_until=until))
    return result.rowcount == 1


def claimed(conn: Connection, webhook_id: str) -> dict:
    """The whole row, read again once claimed: another deliverer may have moved it on
    since the list of due subscriptions was read."""
    return dict(conn.execute(select(webhooks).where(webhooks.c.id == webhook_id))
                .mappings().one())


def release(conn: Connection, webhook_id: str, held: dt.datetime, now: dt.datetime) -> None:
    """Let the subscription go if our lease (``held``) is still its lease: it ends now,
    which also says when it was last served. A lease that lapsed and was taken by
    another deliverer is theirs: left alone."""
    conn.execute(update(webhooks).where(webhooks.c.id == webhook_id,
                                        webhooks.c.lease_until == held).values(lease_until=now))


def record(conn: Connection, webhook_id: str, message: StoredMessage, attempt: int,
           status_code: int | None, error: str, outcome: str, now: dt.datetime) -> None:
    conn.execute(insert(webhook_deliveries).values(
        webhook_id=webhook_id, message_id=message.id, seq=message.seq, attempt=attempt,
        status_code=status_code, error=error[:64], outcome=outcome, created_at=now))


def delivered(conn: Connection, webhook_id: str, seq: int,
              slow_at: dt.datetime | None = None) -> None:
    """The receiver took the message: move the cursor past it, forget the failures.
    ``slow_at``: it took long to answer (then), so the subscription stays out of good
    standing, as every deliverer reads it (see in_good_standing)."""
    conn.execute(update(webhooks).where(webhooks.c.id == webhook_id).values(
        cursor=seq, failures=0, failing_since=None, next_attempt_at=slow_at))


def skipped(conn: Connection, webhook_id: str, seq: int) -> None:
    """No message up to ``seq`` matched the subscription: the next turn starts after it."""
    conn.execute(update(webhooks).where(webhooks.c.id == webhook_id).values(cursor=seq))


def in_good_standing(webhook: dict) -> bool:
    """Neither failing (its retry is scheduled) nor slow at its last delivery (set to that
    time, already due): both leave ``next_attempt_at`` set, and a prompt delivery clears it."""
    return webhook["next_attempt_at"] is None


def failed(conn: Connection, webhook_id: str, failures: int, failing_since: dt.datetime,
           next_attempt_at: dt.datetime | None, disabled_reason: str = "") -> None:
    values: dict[str, Any] = {"failures": failures, "failing_since": failing_since,
                              "next_attempt_at": next_attempt_at}
    if disabled_reason:
        values.update(enabled=False, disabled_reason=disabled_reason[:255])
    conn.execute(update(webhooks).where(webhooks.c.id == webhook_id).values(**values))


def matching(webhook: dict) -> dict[str, str]:
    """The subscription's filters, as exact-match list filters."""
    return {key: webhook[key] for key in FILTERS if webhook[key]}


def renew(conn: Connection, webhook_id: str, held: dt.datetime, until: dt.datetime) -> bool:
    """Extend our lease; False when it lapsed and another deliverer took the subscription,
    or the subscription was deleted or disabled meanwhile."""
    result = conn.execute(update(webhooks).where(
        and_(webhooks.c.id == webhook_id, webhooks.c.enabled == true(),
             webhooks.c.lease_until == held)).values(lease_until=until))
    return result.rowcount == 1
