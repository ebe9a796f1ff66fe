"""discount codes

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-24 18:14:43.471530
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    
    with op.batch_alter_table('checkout_sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('discount_codes', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True))

    


def downgrade() -> None:
    
    with op.batch_alter_table('checkout_sessions', schema=None) as batch_op:
        batch_op.drop_column('discount_codes')

    
