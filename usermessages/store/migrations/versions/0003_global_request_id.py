"""The global request id of a message from an OpenStack notification (admin-only).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


# Not batch mode: rebuilding the table on SQLite would lose the expression indexes it
# cannot reflect; SQLite has ADD/DROP COLUMN (3.35+) for these plain columns.
def upgrade() -> None:
    op.add_column('messages', sa.Column('global_request_id', sa.String(length=255),
                                        server_default='', nullable=False))


def downgrade() -> None:
    op.drop_column('messages', 'global_request_id')
