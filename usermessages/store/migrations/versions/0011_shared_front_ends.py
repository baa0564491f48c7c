"""What the API's workers and nodes share: stream and export slots, viewer sessions.

The caps on streams and exports (web/limits.py) were each process's count and
the viewer's Keystone sessions lived in the process that signed the browser in;
both move to the store, so any worker of any node serves any request.

Revision ID: 0011
Revises: 0010
"""

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

_TIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mysql')
_MYSQL: dict[str, Any] = {'mysql_charset': 'utf8mb4', 'mysql_collate': 'utf8mb4_nopad_bin'}


def upgrade() -> None:
    op.create_table(
        'slot_leases',
        sa.Column('id', sa.String(length=36), primary_key=True),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('project_id', sa.String(length=255), nullable=False),
        sa.Column('holder', sa.String(length=255), nullable=False),
        sa.Column('expires_at', _TIME, nullable=False),
        **_MYSQL,
    )
    op.create_index('ix_slot_leases_kind_project', 'slot_leases', ['kind', 'project_id'])
    op.create_index('ix_slot_leases_holder', 'slot_leases', ['holder'])
    kinds = op.create_table(
        'slot_kinds',
        sa.Column('kind', sa.String(length=16), primary_key=True),
        sa.Column('acquired', sa.BigInteger(), nullable=False),
        **_MYSQL,
    )
    op.bulk_insert(kinds, [{'kind': 'streams', 'acquired': 0},
                           {'kind': 'exports', 'acquired': 0}])
    op.create_table(
        'viewer_sessions',
        sa.Column('id', sa.String(length=64), primary_key=True),
        sa.Column('data', sa.Text(), nullable=False),
        sa.Column('expires_at', _TIME, nullable=False),
        **_MYSQL,
    )
    op.create_index('ix_viewer_sessions_expires_at', 'viewer_sessions', ['expires_at'])


def downgrade() -> None:
    op.drop_table('viewer_sessions')
    op.drop_table('slot_kinds')
    op.drop_table('slot_leases')
