"""sandbox disputes

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24 17:43:26.224100
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    
    op.create_table('sandbox_disputes',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('charge_id', sa.String(length=64), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('fee_amount', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sandbox_disputes'))
    )
    with op.batch_alter_table('sandbox_disputes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sandbox_disputes_charge_id'), ['charge_id'], unique=False)

    


def downgrade() -> None:
    
    with op.batch_alter_table('sandbox_disputes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sandbox_disputes_charge_id'))

    op.drop_table('sandbox_disputes')
    
