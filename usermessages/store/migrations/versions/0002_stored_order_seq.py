"""A store-assigned sequence on messages, the order rows were stored in.

Live updates page by it: a producer's created_at says when a failure
happened, not when its row became visible. Existing rows are numbered in
(created_at, id) order; the counter starts after them.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 17:05:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


_NUMBERED = "(SELECT id, row_number() OVER (ORDER BY created_at, id) AS n FROM messages) AS numbered"


def upgrade() -> None:
    op.add_column('messages', sa.Column('seq', sa.BigInteger(), nullable=True))
    if op.get_bind().dialect.name == 'mysql':
        op.execute(f"UPDATE messages JOIN {_NUMBERED} ON messages.id = numbered.id "
                   "SET messages.seq = numbered.n")
        # Galera replicates rows by their primary key: the one row gets an
        # invisible one (no statement names it; a second row cannot exist).
        op.execute("CREATE TABLE message_seq (value BIGINT NOT NULL, "
                   "seq_key TINYINT NOT NULL DEFAULT 1 INVISIBLE, PRIMARY KEY (seq_key)) "
                   "CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin")
    else:
        # UPDATE ... FROM with a window function: PostgreSQL, and SQLite since 3.33.
        op.execute(f"UPDATE messages SET seq = numbered.n FROM {_NUMBERED} "
                   "WHERE messages.id = numbered.id")
        op.create_table('message_seq', sa.Column('value', sa.BigInteger(), nullable=False))
    op.create_index('ix_messages_seq', 'messages', ['seq'], unique=True)
    op.execute("INSERT INTO message_seq (value) SELECT coalesce(max(seq), 0) FROM messages")


def downgrade() -> None:
    op.drop_table('message_seq')
    op.drop_index('ix_messages_seq', table_name='messages')
    # Not batch mode: rebuilding the table on SQLite would lose the expression
    # indexes it cannot reflect; SQLite has had DROP COLUMN since 3.35.
    op.drop_column('messages', 'seq')
