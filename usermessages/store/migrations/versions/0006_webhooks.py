"""Webhook subscriptions and their delivery log (usermessages.webhooks).

Revision ID: 0006
Revises: 0005
"""

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

# MariaDB: times keep their microseconds, strings compare byte for byte.
_TIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mysql')
_MYSQL: dict[str, Any] = {'mysql_charset': 'utf8mb4', 'mysql_collate': 'utf8mb4_nopad_bin'}


def upgrade() -> None:
    op.create_table(
        'webhooks',
        sa.Column('id', sa.String(length=36), primary_key=True),
        sa.Column('project_id', sa.String(length=255), nullable=False),
        sa.Column('user_id', sa.String(length=255), server_default='', nullable=False),
        sa.Column('url', sa.String(length=2048), nullable=False),
        sa.Column('secret', sa.String(length=255), nullable=False),
        sa.Column('message_level', sa.String(length=255), server_default='', nullable=False),
        sa.Column('event_id', sa.String(length=255), server_default='', nullable=False),
        sa.Column('resource_type', sa.String(length=36), server_default='', nullable=False),
        sa.Column('enabled', sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column('disabled_reason', sa.String(length=255), server_default='', nullable=False),
        sa.Column('created_at', _TIME, nullable=False),
        sa.Column('cursor', sa.BigInteger(), nullable=False),
        sa.Column('failures', sa.Integer(), server_default='0', nullable=False),
        sa.Column('failing_since', _TIME, nullable=True),
        sa.Column('next_attempt_at', _TIME, nullable=True),
        sa.Column('lease_until', _TIME, nullable=True),
        **_MYSQL,
    )
    op.create_index('ix_webhooks_project', 'webhooks', ['project_id', 'created_at'])
    op.create_table(
        'webhook_deliveries',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), primary_key=True,
                  autoincrement=True),
        sa.Column('webhook_id', sa.String(length=36), nullable=False),
        sa.Column('message_id', sa.String(length=36), nullable=False),
        sa.Column('seq', sa.BigInteger(), nullable=False),
        sa.Column('attempt', sa.Integer(), nullable=False),
        sa.Column('status_code', sa.Integer(), nullable=True),
        sa.Column('error', sa.String(length=64), server_default='', nullable=False),
        sa.Column('outcome', sa.String(length=16), nullable=False),
        sa.Column('created_at', _TIME, nullable=False),
        **_MYSQL,
    )
    op.create_index('ix_webhook_deliveries_webhook', 'webhook_deliveries', ['webhook_id', 'id'])


def downgrade() -> None:
    op.drop_table('webhook_deliveries')
    op.drop_table('webhooks')
