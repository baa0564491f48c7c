"""Collectors announce themselves: their release, schema and the formats they read.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'collectors',
        sa.Column('name', sa.String(length=255), primary_key=True),
        sa.Column('host', sa.String(length=255), nullable=False),
        sa.Column('version', sa.String(length=64), nullable=False),
        sa.Column('schema', sa.String(length=32), nullable=False),
        sa.Column('reads', sa.String(length=255), nullable=False),
        sa.Column('started_at', sa.DateTime(), nullable=False),
        sa.Column('seen_at', sa.DateTime(), nullable=False),
    )
    op.create_index('ix_collectors_seen_at', 'collectors', ['seen_at'])


def downgrade() -> None:
    op.drop_table('collectors')
