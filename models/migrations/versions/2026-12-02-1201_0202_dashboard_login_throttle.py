"""dashboard login throttle: failed attempts per user and per client address

Revision ID: 0202
Revises: 0201
Create Date: 2026-12-02 12:01:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0202'
down_revision: str | None = '0201'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'dashboard_login_failures',
        sa.Column('scope', sa.String(length=200), nullable=False),
        sa.Column('failures', sa.Integer(), nullable=False),
        sa.Column('window_start', sa.DateTime(timezone=True), nullable=False),
        sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('scope', name=op.f('pk_dashboard_login_failures')),
    )


def downgrade() -> None:
    op.drop_table('dashboard_login_failures')
