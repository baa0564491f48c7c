"""The global request id of a message from an OpenStack notification (admin-only).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = '0003'
# Merged after 0002 (the seq column); on this branch it follows 0001.
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('messages') as batch:
        batch.add_column(sa.Column('global_request_id', sa.String(length=255),
                                   server_default='', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('messages') as batch:
        batch.drop_column('global_request_id')
