"""attribution ledger

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24 17:35:15.290997
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    
    op.create_table('attribution_ledger',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('order_id', sa.String(length=64), nullable=False),
    sa.Column('video_id', sa.String(length=100), nullable=True),
    sa.Column('model', sa.String(length=32), nullable=False),
    sa.Column('window_days', sa.Integer(), nullable=True),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=True),
    sa.Column('reference', sa.String(length=200), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('gross', sa.BigInteger(), nullable=False),
    sa.Column('discount', sa.BigInteger(), nullable=False),
    sa.Column('tax', sa.BigInteger(), nullable=False),
    sa.Column('shipping', sa.BigInteger(), nullable=False),
    sa.Column('commissionable', sa.BigInteger(), nullable=False),
    sa.Column('fee', sa.BigInteger(), nullable=False),
    sa.Column('net', sa.BigInteger(), nullable=False),
    sa.Column('campaign', sa.String(length=200), nullable=True),
    sa.Column('creator', sa.String(length=200), nullable=True),
    sa.Column('generator', sa.String(length=64), nullable=True),
    sa.Column('agent_id', sa.String(length=64), nullable=True),
    sa.Column('order_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('touch_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_attribution_ledger'))
    )
    with op.batch_alter_table('attribution_ledger', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_attribution_ledger_model'), ['model'], unique=False)
        batch_op.create_index(batch_op.f('ix_attribution_ledger_order_at'), ['order_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_attribution_ledger_order_id'), ['order_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_attribution_ledger_video_id'), ['video_id'], unique=False)

    op.create_table('attribution_touches',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('checkout_session_id', sa.String(length=64), nullable=False),
    sa.Column('touchpoint', sa.String(length=16), nullable=False),
    sa.Column('channel', sa.String(length=32), nullable=False),
    sa.Column('provider', sa.String(length=200), nullable=True),
    sa.Column('publisher_id', sa.String(length=200), nullable=True),
    sa.Column('campaign_id', sa.String(length=200), nullable=True),
    sa.Column('creative_id', sa.String(length=200), nullable=True),
    sa.Column('sub_id', sa.String(length=200), nullable=True),
    sa.Column('source_url', sa.String(length=2000), nullable=True),
    sa.Column('token_fingerprint', sa.String(length=64), nullable=True),
    sa.Column('metadata', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('video_id', sa.String(length=100), nullable=True),
    sa.Column('video_known', sa.Boolean(), nullable=False),
    sa.Column('touched_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_attribution_touches')),
    sa.UniqueConstraint('checkout_session_id', 'touchpoint', name=op.f('uq_attribution_touches_checkout_session_id_touchpoint'))
    )
    with op.batch_alter_table('attribution_touches', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_attribution_touches_checkout_session_id'), ['checkout_session_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_attribution_touches_video_id'), ['video_id'], unique=False)

    


def downgrade() -> None:
    
    with op.batch_alter_table('attribution_touches', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_attribution_touches_video_id'))
        batch_op.drop_index(batch_op.f('ix_attribution_touches_checkout_session_id'))

    op.drop_table('attribution_touches')
    with op.batch_alter_table('attribution_ledger', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_attribution_ledger_video_id'))
        batch_op.drop_index(batch_op.f('ix_attribution_ledger_order_id'))
        batch_op.drop_index(batch_op.f('ix_attribution_ledger_order_at'))
        batch_op.drop_index(batch_op.f('ix_attribution_ledger_model'))

    op.drop_table('attribution_ledger')
    
