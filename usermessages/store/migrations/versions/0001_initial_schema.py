"""Initial schema: the messages table and the indexes that serve listing and reaping.

Revision ID: 0001
Revises: 
Create Date: 2026-11-24 21:41:01.150209
"""

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None

# MariaDB: times keep their microseconds, strings compare byte for byte.
_TIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mysql')
_MYSQL: dict[str, Any] = {'mysql_charset': 'utf8mb4', 'mysql_collate': 'utf8mb4_nopad_bin'}


def _expression_indexes() -> bool:
    """MariaDB has no expression indexes: it never gets the two on coalesce(), which
    0007 drops everywhere (a generated column would stand in for each until then)."""
    return op.get_bind().dialect.name != 'mysql'


def upgrade() -> None:
    op.create_table('messages',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('kind', sa.String(length=16), server_default='API', nullable=False),
    sa.Column('project_id', sa.String(length=255), nullable=True),
    sa.Column('user_id', sa.String(length=255), server_default='', nullable=False),
    sa.Column('request_id', sa.String(length=255), server_default='', nullable=False),
    sa.Column('resource_type', sa.String(length=36), server_default='', nullable=False),
    sa.Column('resource_uuid', sa.String(length=255), server_default='', nullable=False),
    sa.Column('event_id', sa.String(length=255), nullable=False),
    sa.Column('message_level', sa.String(length=255), nullable=False),
    sa.Column('action_id', sa.String(length=10), nullable=True),
    sa.Column('detail_id', sa.String(length=10), nullable=True),
    sa.Column('host', sa.String(length=255), server_default='', nullable=False),
    sa.Column('exception_class', sa.String(length=255), server_default='', nullable=False),
    sa.Column('created_at', _TIME, nullable=False),
    sa.Column('expires_at', _TIME, nullable=False),
    sa.Column('deleted', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('deleted_at', _TIME, nullable=True),
    sa.PrimaryKeyConstraint('id'),
    **_MYSQL
    )
    op.create_index('ix_messages_created', 'messages', ['created_at', 'id'], unique=False)
    op.create_index('ix_messages_expires_at', 'messages', ['expires_at', 'id'], unique=False)
    # Nullable ids are indexed as lists sort them: NULL as '' (schema.sortable).
    if _expression_indexes():
        op.create_index('ix_messages_project_action_id', 'messages', ['project_id', sa.literal_column("coalesce(action_id, '')"), 'created_at', 'id'], unique=False)
        op.create_index('ix_messages_project_detail_id', 'messages', ['project_id', sa.literal_column("coalesce(detail_id, '')"), 'created_at', 'id'], unique=False)
    op.create_index('ix_messages_project_created', 'messages', ['project_id', 'created_at', 'id'], unique=False)
    op.create_index('ix_messages_project_event_id', 'messages', ['project_id', 'event_id', 'created_at', 'id'], unique=False)
    op.create_index('ix_messages_project_expires_at', 'messages', ['project_id', 'expires_at', 'created_at', 'id'], unique=False)
    op.create_index('ix_messages_project_id', 'messages', ['project_id', 'id'], unique=False)
    op.create_index('ix_messages_project_message_level', 'messages', ['project_id', 'message_level', 'created_at', 'id'], unique=False)
    op.create_index('ix_messages_project_request_id', 'messages', ['project_id', 'request_id', 'created_at', 'id'], unique=False)
    op.create_index('ix_messages_project_resource_type', 'messages', ['project_id', 'resource_type', 'created_at', 'id'], unique=False)
    op.create_index('ix_messages_project_resource_uuid', 'messages', ['project_id', 'resource_uuid', 'created_at', 'id'], unique=False)
    op.create_index('ix_messages_request_id', 'messages', ['request_id'], unique=False)
    op.create_index('ix_messages_resource_uuid', 'messages', ['resource_uuid'], unique=False)


def downgrade() -> None:
    op.drop_table('messages')  # its indexes go with it
