"""Leases: one row per job only one node may run at a time (the reaper's pass on MariaDB).

Revision ID: 0009
Revises: 0008
"""

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

# MariaDB: times keep their microseconds, strings compare byte for byte.
_TIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mysql')
_MYSQL: dict[str, Any] = {'mysql_charset': 'utf8mb4', 'mysql_collate': 'utf8mb4_nopad_bin'}


def upgrade() -> None:
    leases = op.create_table(
        'leases',
        sa.Column('name', sa.String(length=64), primary_key=True),
        sa.Column('holder', sa.String(length=255), server_default='', nullable=False),
        sa.Column('expires_at', _TIME, nullable=True),
        **_MYSQL,
    )
    op.bulk_insert(leases, [{'name': 'reaper'}])


def downgrade() -> None:
    op.drop_table('leases')
