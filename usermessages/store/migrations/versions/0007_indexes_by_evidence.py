"""Seven indexes instead of seventeen: a row's cost was its index insertions.

COPY into messages ran at a tenth of the rate into Cinder's table, and 90% of
the backend's time went into inserting index entries (bench/row_cost.py,
docs/benchmarks.md "row cost"). A project's list now finds its page, in any
order and under any filter, in one covering index, ix_messages_project_created
(PostgreSQL: INCLUDE the columns lists name, read index-only; see
messages._list), instead of one index per sort key; request and resource
lookups are equality-only, so hash indexes on PostgreSQL. The two expression
indexes (coalesce of action_id/detail_id) go with the per-key ones, which also
spares MariaDB (no expression indexes) from needing generated columns.

Downgrade makes the 0006 indexes again. On a large partitioned table both
directions build indexes on every partition under a SHARE lock (writes wait):
run them in a maintenance window.

Revision ID: 0007
Revises: 0006
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

# 0006's indexes that 0007 drops, as 0001/0004 made them.
_PER_KEY: list[tuple[str, list[Any]]] = [
    ('ix_messages_project_id', ['project_id', 'id']),
    *((f'ix_messages_project_{key}', ['project_id', key, 'created_at', 'id'])
      for key in ('event_id', 'message_level', 'resource_type', 'resource_uuid', 'request_id',
                  'expires_at')),
    *((f'ix_messages_project_{key}',
       ['project_id', sa.literal_column(f"coalesce({key}, '')"), 'created_at', 'id'])
      for key in ('action_id', 'detail_id')),
]
_COVERED = ['kind', 'deleted', 'event_id', 'message_level', 'resource_type', 'resource_uuid',
            'request_id', 'expires_at', 'action_id', 'detail_id']


def _per_key() -> list[tuple[str, list[Any]]]:
    """0006's per-key indexes on this store: MariaDB never had the expression ones (0001)."""
    if op.get_bind().dialect.name != 'mysql':
        return _PER_KEY
    return [(name, columns) for name, columns in _PER_KEY
            if all(isinstance(column, str) for column in columns)]


def upgrade() -> None:
    for name, _ in _per_key():
        op.drop_index(name, table_name='messages')
    for name in ('ix_messages_project_created', 'ix_messages_request_id',
                 'ix_messages_resource_uuid'):
        op.drop_index(name, table_name='messages')
    op.create_index('ix_messages_project_created', 'messages', ['project_id', 'created_at', 'id'],
                    postgresql_include=_COVERED)
    op.create_index('ix_messages_request_id', 'messages', ['request_id'],
                    postgresql_using='hash')
    op.create_index('ix_messages_resource_uuid', 'messages', ['resource_uuid'],
                    postgresql_using='hash')


def downgrade() -> None:
    for name in ('ix_messages_project_created', 'ix_messages_request_id',
                 'ix_messages_resource_uuid'):
        op.drop_index(name, table_name='messages')
    op.create_index('ix_messages_project_created', 'messages', ['project_id', 'created_at', 'id'])
    op.create_index('ix_messages_request_id', 'messages', ['request_id'])
    op.create_index('ix_messages_resource_uuid', 'messages', ['resource_uuid'])
    for name, columns in _per_key():
        op.create_index(name, 'messages', columns)
