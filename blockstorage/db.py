"""The reference service's own state: types, volumes, snapshots, backups, groups, services.

Kept apart from the messages store, as Cinder's database is apart from any
user-messages store: the service only *produces* messages, through the SDK.
The state is disposable demo state, so the tables are created on start
(``create_all``) rather than migrated.

Status changes are compare-and-set (``transition``): a late worker, a
watchdog and an API call racing on one volume cannot both win.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Connection,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    func,
    insert,
    select,
    update,
)

metadata = MetaData()


def _owned() -> list[Column]:
    """What every user-owned resource has: an id, its owner, a name and a description."""
    return [
        Column("id", String(36), primary_key=True),
        Column("project_id", String(255), nullable=False, index=True),
        Column("user_id", String(255), nullable=False),
        Column("name", String(255), nullable=True),
        Column("description", String(255), nullable=True),
    ]


def _timestamps() -> list[Column]:
    return [
        Column("created_at", DateTime(), nullable=False),
        Column("updated_at", DateTime(), nullable=True),
        # When the running task (status ending in -ing) must be over: see watchdog.py.
        Column("task_deadline", DateTime(), nullable=True),
        Column("task_request_id", String(255), nullable=True),
    ]


volume_types = Table(
    "volume_types", metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("description", String(255), nullable=True),
    Column("is_public", Boolean(), nullable=False, default=True),
    Column("extra_specs", JSON(), nullable=False, default=dict),
    Column("created_at", DateTime(), nullable=False),
)

volumes = Table(
    "volumes", metadata,
    *_owned(),
    Column("size", Integer(), nullable=False),
    Column("status", String(32), nullable=False),
    Column("volume_type_id", String(36), nullable=True),
    Column("host", String(255), nullable=True),
    Column("group_id", String(36), nullable=True),
    Column("attach_status", String(32), nullable=False, default="detached"),
    Column("instance_uuid", String(36), nullable=True),
    Column("mountpoint", String(255), nullable=True),
    Column("attached_at", DateTime(), nullable=True),
    Column("attachment_id", String(36), nullable=True),
    *_timestamps(),
)

snapshots = Table(
    "snapshots", metadata,
    *_owned(),
    Column("volume_id", String(36), nullable=False),
    Column("size", Integer(), nullable=False),
    Column("status", String(32), nullable=False),
    *_timestamps(),
)

backups = Table(
    "backups", metadata,
    *_owned(),
    Column("volume_id", String(36), nullable=False),
    Column("size", Integer(), nullable=False),
    Column("status", String(32), nullable=False),
    *_timestamps(),
)

groups = Table(
    "groups", metadata,
    *_owned(),
    Column("group_type", String(255), nullable=True),
    Column("volume_types", JSON(), nullable=False, default=list),
    Column("status", String(32), nullable=False),
    Column("host", String(255), nullable=True),
    *_timestamps(),
)

services = Table(
    "services", metadata,
    Column("id", Integer(), primary_key=True, autoincrement=True),
    Column("binary", String(64), nullable=False),
    Column("host", String(255), nullable=False),
    Column("created_at", DateTime(), nullable=False),
    Column("updated_at", DateTime(), nullable=False),
    # Set once the monitor has announced the service down, so it says so once.
    Column("reported_down", Boolean(), nullable=False, default=False),
)

# One row per shared dependency (today: "broker"); set once its outage is announced,
# so several API processes announce each outage and each recovery once.
dependencies = Table(
    "dependencies", metadata,
    Column("name", String(64), primary_key=True),
    Column("reported_down", Boolean(), nullable=False, default=False),
    Column("updated_at", DateTime(), nullable=False),
)

faults = Table(
    "faults", metadata,
    Column("id", String(36), primary_key=True),
    Column("backend", String(64), nullable=False),
    Column("operation", String(64), nullable=False),
    Column("created_at", DateTime(), nullable=False),
)

RESOURCES = {"volume": volumes, "snapshot": snapshots, "backup": backups, "group": groups}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def create_schema(engine: Engine) -> None:
    metadata.create_all(engine)


def add(conn: Connection, table: Table, **values: Any) -> dict:
    values.setdefault("created_at", utcnow())
    conn.execute(insert(table).values(**values))
    return get(conn, table, values["id"])  # type: ignore[return-value]


def get(conn: Connection, table: Table, row_id: str) -> dict | None:
    if "\x00" in row_id:
        return None  # no id holds NUL; PostgreSQL would refuse the query
    row = conn.execute(select(table).where(table.c.id == row_id)).mappings().first()
    return dict(row) if row else None


def get_for_project(conn: Connection, table: Table, row_id: str,
                    project_id: str | None) -> dict | None:
    """A row visible to a project (any row when ``project_id`` is None: an admin)."""
    row = get(conn, table, row_id)
    if row is None or (project_id is not None and row.get("project_id") != project_id):
        return None
    return row


def list_rows(conn: Connection, table: Table, project_id: str | None) -> list[dict]:
    statement = select(table).order_by(table.c.created_at.desc(), table.c.id.desc())
    if project_id is not None:
        statement = statement.where(table.c.project_id == project_id)
    return [dict(row) for row in conn.execute(statement).mappings()]


def transition(
    conn: Connection, table: Table, row_id: str, from_statuses: tuple[str, ...], to_status: str,
    **values: Any,
) -> bool:
    """Move a row to ``to_status`` only if it is in one of ``from_statuses``."""
    result = conn.execute(
        update(table)
        .where(table.c.id == row_id, table.c.status.in_(from_statuses))
        .values(status=to_status, updated_at=utcnow(), **values)
    )
    return result.rowcount == 1


def delete_row(conn: Connection, table: Table, row_id: str) -> None:
    conn.execute(table.delete().where(table.c.id == row_id))


def allocated_gb(conn: Connection, host: str) -> int:
    """Space promised on a pool: every volume placed there that still exists."""
    total = conn.execute(
        select(func.coalesce(func.sum(volumes.c.size), 0)).where(
            volumes.c.host == host, volumes.c.status.notin_(("error", "deleted"))
        )
    ).scalar_one()
    return int(total)
