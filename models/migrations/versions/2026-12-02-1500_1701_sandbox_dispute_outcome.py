"""sandbox disputes: when they closed (won disputes settle a reversal that day)

Revision ID: 1701
Revises: 1911
Create Date: 2026-12-02 15:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '1701'
down_revision: str | None = '1911'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('sandbox_disputes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('sandbox_disputes', schema=None) as batch_op:
        batch_op.drop_column('closed_at')
