"""feed push

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 17:27:54.261857
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    
    op.create_table('feed_push_items',
    sa.Column('agent_id', sa.String(length=64), nullable=False),
    sa.Column('product_id', sa.String(length=200), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('pushed_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], name=op.f('fk_feed_push_items_agent_id_agents'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('agent_id', 'product_id', name=op.f('pk_feed_push_items'))
    )
    op.create_table('feed_pushes',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('agent_id', sa.String(length=64), nullable=False),
    sa.Column('feed_id', sa.String(length=200), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('products_total', sa.Integer(), nullable=False),
    sa.Column('products_sent', sa.Integer(), nullable=False),
    sa.Column('batches', sa.Integer(), nullable=False),
    sa.Column('retries', sa.Integer(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('duration_ms', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], name=op.f('fk_feed_pushes_agent_id_agents'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_feed_pushes'))
    )
    with op.batch_alter_table('feed_pushes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_feed_pushes_agent_id'), ['agent_id'], unique=False)

    with op.batch_alter_table('agents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('feed_api_url', sa.String(length=2000), nullable=True))
        batch_op.add_column(sa.Column('feed_api_token', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('feed_id', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('feed_target_country', sa.String(length=2), nullable=True))

    


def downgrade() -> None:
    
    with op.batch_alter_table('agents', schema=None) as batch_op:
        batch_op.drop_column('feed_target_country')
        batch_op.drop_column('feed_id')
        batch_op.drop_column('feed_api_token')
        batch_op.drop_column('feed_api_url')

    with op.batch_alter_table('feed_pushes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_feed_pushes_agent_id'))

    op.drop_table('feed_pushes')
    op.drop_table('feed_push_items')
    
