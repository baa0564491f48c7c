"""PostgreSQL and MariaDB: messages partitioned by expiry day, so reaping a day is a DROP.

A partitioned table's unique keys must hold the partition key, so the
primary key becomes (id, expires_at): the expiry derives from the envelope
(created_at + message_ttl), so a redelivered message has the same key and
"on conflict do nothing" still refuses it. The seq index stops being unique
on both engines for the same reason (seq is unique by construction: one
counter row hands the numbers out). Existing rows are copied into one
partition per expiry day (on MariaDB in place, see _mariadb); SQLite
keeps its single table.

Revision ID: 0004
Revises: 0003
"""

import datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

_INDEXES: list[tuple[str, list[Any]]] = [
    ('ix_messages_created', ['created_at', 'id']),
    ('ix_messages_expires_at', ['expires_at', 'id']),
    ('ix_messages_project_action_id',
     ['project_id', sa.literal_column("coalesce(action_id, '')"), 'created_at', 'id']),
    ('ix_messages_project_created', ['project_id', 'created_at', 'id']),
    ('ix_messages_project_detail_id',
     ['project_id', sa.literal_column("coalesce(detail_id, '')"), 'created_at', 'id']),
    ('ix_messages_project_event_id', ['project_id', 'event_id', 'created_at', 'id']),
    ('ix_messages_project_expires_at', ['project_id', 'expires_at', 'created_at', 'id']),
    ('ix_messages_project_id', ['project_id', 'id']),
    ('ix_messages_project_message_level', ['project_id', 'message_level', 'created_at', 'id']),
    ('ix_messages_project_request_id', ['project_id', 'request_id', 'created_at', 'id']),
    ('ix_messages_project_resource_type', ['project_id', 'resource_type', 'created_at', 'id']),
    ('ix_messages_project_resource_uuid', ['project_id', 'resource_uuid', 'created_at', 'id']),
    ('ix_messages_request_id', ['request_id']),
    ('ix_messages_resource_uuid', ['resource_uuid']),
]


def _rebuild(partitioned: bool) -> None:
    """Copy messages into a new table of the other shape, then swap it in.

    The indexes are made after the copy (faster than maintaining them row by
    row) and under their usual names, since the old table went with its own.
    """
    suffix = " PARTITION BY RANGE (expires_at)" if partitioned else ""
    op.execute(f"CREATE TABLE messages_rebuilt (LIKE messages INCLUDING DEFAULTS){suffix}")
    if partitioned:
        days = op.get_bind().execute(sa.text(
            "SELECT DISTINCT date_trunc('day', expires_at) FROM messages")).scalars()
        for day in days:
            op.execute(f"CREATE TABLE messages_p{day:%Y%m%d} PARTITION OF messages_rebuilt "
                       f"FOR VALUES FROM ('{day}') TO ('{day}'::timestamp + interval '1 day')")
    op.execute("INSERT INTO messages_rebuilt SELECT * FROM messages")
    op.execute("DROP TABLE messages")  # its partitions and indexes go with it
    op.execute("ALTER TABLE messages_rebuilt RENAME TO messages")
    op.execute("ALTER TABLE messages ADD CONSTRAINT messages_pkey PRIMARY KEY "
               + ("(id, expires_at)" if partitioned else "(id)"))
    for name, columns in _INDEXES:
        op.create_index(name, 'messages', columns)
    op.create_index('ix_messages_seq', 'messages', ['seq'], unique=not partitioned)


def _mariadb(partitioned: bool) -> None:
    """MariaDB partitions in place: RANGE COLUMNS(expires_at), one partition
    per expiry day the rows have, then messages_pmax for every later one (the
    inserters split days off it ahead: store/partitions.py)."""
    if not partitioned:
        op.execute("ALTER TABLE messages REMOVE PARTITIONING")
        op.execute("ALTER TABLE messages DROP PRIMARY KEY, ADD PRIMARY KEY (id)")
        return
    days = op.get_bind().execute(sa.text(
        "SELECT DISTINCT DATE(expires_at) FROM messages ORDER BY 1")).scalars()
    bounds = [f"PARTITION messages_p{day:%Y%m%d} VALUES LESS THAN "
              f"('{day + datetime.timedelta(days=1)} 00:00:00')" for day in days]
    op.execute("ALTER TABLE messages DROP PRIMARY KEY, ADD PRIMARY KEY (id, expires_at)")
    op.execute("ALTER TABLE messages PARTITION BY RANGE COLUMNS(expires_at) "
               f"({', '.join([*bounds, 'PARTITION messages_pmax VALUES LESS THAN (MAXVALUE)'])})")


def upgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        _rebuild(partitioned=True)
        return
    op.drop_index('ix_messages_seq', table_name='messages')
    op.create_index('ix_messages_seq', 'messages', ['seq'], unique=False)
    if op.get_bind().dialect.name == 'mysql':
        _mariadb(partitioned=True)


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        _rebuild(partitioned=False)
        return
    if op.get_bind().dialect.name == 'mysql':
        _mariadb(partitioned=False)
    op.drop_index('ix_messages_seq', table_name='messages')
    op.create_index('ix_messages_seq', 'messages', ['seq'], unique=True)
