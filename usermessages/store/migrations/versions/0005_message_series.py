"""Series of repeated failures, and storm control's windows.

Revision ID: 0005
Revises: 0004
"""

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

# MariaDB: times keep their microseconds, strings compare byte for byte.
_TIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mysql')
_MYSQL: dict[str, Any] = {'mysql_charset': 'utf8mb4', 'mysql_collate': 'utf8mb4_nopad_bin'}


def upgrade() -> None:
    op.create_table(
        'message_series',
        sa.Column('id', sa.String(36), primary_key=True),
        sa.Column('kind', sa.String(16), nullable=False),
        sa.Column('project_id', sa.String(255), nullable=True),
        sa.Column('event_id', sa.String(255), nullable=False),
        sa.Column('resource_uuid', sa.String(255), nullable=False),
        sa.Column('resource_type', sa.String(36), nullable=False),
        sa.Column('message_level', sa.String(255), nullable=False),
        sa.Column('action_id', sa.String(10), nullable=True),
        sa.Column('detail_id', sa.String(10), nullable=True),
        sa.Column('count', sa.BigInteger(), nullable=False),
        sa.Column('suppressed', sa.BigInteger(), nullable=False),
        sa.Column('first_seen', _TIME, nullable=False),
        sa.Column('last_seen', _TIME, nullable=False),
        sa.Column('request_ids', sa.Text(), nullable=False),
        **_MYSQL,
    )
    op.create_index('ix_message_series_project_last_seen', 'message_series',
                    ['project_id', 'last_seen', 'id'])
    op.create_index('ix_message_series_last_seen', 'message_series', ['last_seen', 'id'])
    op.create_table(
        'message_storm',
        sa.Column('scope', sa.String(600), primary_key=True),
        sa.Column('window_start', _TIME, nullable=False),
        sa.Column('stored', sa.Integer(), nullable=False),
        **_MYSQL,
    )


def downgrade() -> None:
    op.drop_table('message_storm')
    op.drop_table('message_series')
