"""outbox leases: which messages are being delivered now (per-destination concurrency)

Revision ID: 0201
Revises: 0009
Create Date: 2026-12-02 12:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0201'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('leased_until', sa.DateTime(timezone=True),
                                      nullable=True))
        batch_op.create_index('ix_outbox_leased_until', ['leased_until'])
        batch_op.create_index('ix_outbox_status_delivered_at', ['status', 'delivered_at'])
    with op.batch_alter_table('inbox_events', schema=None) as batch_op:
        batch_op.create_index('ix_inbox_events_received_at', ['received_at'])


def downgrade() -> None:
    with op.batch_alter_table('inbox_events', schema=None) as batch_op:
        batch_op.drop_index('ix_inbox_events_received_at')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_status_delivered_at')
        batch_op.drop_index('ix_outbox_leased_until')
        batch_op.drop_column('leased_until')
