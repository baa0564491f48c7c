"""What the API's workers and nodes share: stream and export slots, viewer sessions.

The caps on streams and exports (web/limits.py) were each process's count and
the viewer's Keystone sessions lived in the process that signed the browser in;
both move to the store, so any worker of any node serves any request.

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
        'slot_leases',
        sa.Column('id', sa.String(length=36), primary_key=True),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('project_id', sa.String(length=255), nullable=False),
        sa.Column('holder', sa.String(length=255), nullable=False),
        sa.Column('expires_at', sa.DateTime(), nullable=False),
    )
    op.create_index('ix_slot_leases_kind_project', 'slot_leases', ['kind', 'project_id'])
    op.create_index('ix_slot_leases_holder', 'slot_leases', ['holder'])
    kinds = op.create_table(
        'slot_kinds',
        sa.Column('kind', sa.String(length=16), primary_key=True),
        sa.Column('acquired', sa.BigInteger(), nullable=False),
    )
    op.bulk_insert(kinds, [{'kind': 'streams', 'acquired': 0},
                           {'kind': 'exports', 'acquired': 0}])
    op.create_table(
        'viewer_sessions',
        sa.Column('id', sa.String(length=64), primary_key=True),
        sa.Column('data', sa.Text(), nullable=False),
        sa.Column('expires_at', sa.DateTime(), nullable=False),
    )
    op.create_index('ix_viewer_sessions_expires_at', 'viewer_sessions', ['expires_at'])


def downgrade() -> None:
    op.drop_table('viewer_sessions')
    op.drop_table('slot_kinds')
    op.drop_table('slot_leases')
