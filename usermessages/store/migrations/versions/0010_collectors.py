"""Collectors announce themselves: their release, schema and the formats they read.

Revision ID: 0010
Revises: 0009
"""

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

_TIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mysql')
_MYSQL: dict[str, Any] = {'mysql_charset': 'utf8mb4', 'mysql_collate': 'utf8mb4_nopad_bin'}


def upgrade() -> None:
    op.create_table(
        'collectors',
        sa.Column('name', sa.String(length=255), primary_key=True),
        sa.Column('host', sa.String(length=255), nullable=False),
        sa.Column('version', sa.String(length=64), nullable=False),
        sa.Column('schema', sa.String(length=32), nullable=False),
        sa.Column('reads', sa.String(length=255), nullable=False),
        sa.Column('started_at', _TIME, nullable=False),
        sa.Column('seen_at', _TIME, nullable=False),
        **_MYSQL,
    )
    op.create_index('ix_collectors_seen_at', 'collectors', ['seen_at'])


def downgrade() -> None:
    op.drop_table('collectors')
