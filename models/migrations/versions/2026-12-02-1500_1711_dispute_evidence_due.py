"""disputes: the evidence due date (Stripe's evidence_details.due_by)

Revision ID: 1711
Revises: 1900
Create Date: 2026-12-02 15:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '1711'
down_revision: str | None = '1900'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('disputes') as batch:
        batch.add_column(sa.Column('evidence_due_by', sa.DateTime(timezone=True),
                                   nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('disputes') as batch:
        batch.drop_column('evidence_due_by')
