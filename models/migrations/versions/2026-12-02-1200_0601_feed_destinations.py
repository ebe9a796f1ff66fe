"""feed destinations: a delivery record per push, per-destination item hashes

Revision ID: 0601
Revises: 0202
Create Date: 2026-12-02 12:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0601'
down_revision: str | None = '0202'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('feed_deliveries',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('destination', sa.String(length=40), nullable=False),
    sa.Column('run_id', sa.String(length=64), nullable=False),
    sa.Column('mode', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('file', sa.String(length=500), nullable=True),
    sa.Column('size_bytes', sa.Integer(), nullable=False),
    sa.Column('checksum', sa.String(length=80), nullable=True),
    sa.Column('items_sent', sa.Integer(), nullable=False),
    sa.Column('items_deleted', sa.Integer(), nullable=False),
    sa.Column('items_failed', sa.Integer(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('remote_ref', sa.String(length=200), nullable=True),
    sa.Column('remote_status', sa.String(length=40), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('duration_ms', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_feed_deliveries'))
    )
    with op.batch_alter_table('feed_deliveries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_feed_deliveries_destination'), ['destination'], unique=False)
        batch_op.create_index(batch_op.f('ix_feed_deliveries_run_id'), ['run_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_feed_deliveries_started_at'), ['started_at'], unique=False)
    op.create_table('feed_destination_items',
    sa.Column('destination', sa.String(length=40), nullable=False),
    sa.Column('item_id', sa.String(length=200), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('stock_hash', sa.String(length=64), nullable=True),
    sa.Column('pushed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('destination', 'item_id', name=op.f('pk_feed_destination_items'))
    )


def downgrade() -> None:
    op.drop_table('feed_destination_items')
    with op.batch_alter_table('feed_deliveries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_feed_deliveries_started_at'))
        batch_op.drop_index(batch_op.f('ix_feed_deliveries_run_id'))
        batch_op.drop_index(batch_op.f('ix_feed_deliveries_destination'))
    op.drop_table('feed_deliveries')
