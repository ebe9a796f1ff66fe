"""daily view counts per video and source

Revision ID: 1900
Revises: 0501
Create Date: 2026-12-02 14:30:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '1900'
down_revision: str | None = '0501'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('video_view_counts',
    sa.Column('video_id', sa.String(length=100), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('views', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['video_id'], ['videos.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('video_id', 'day', 'source'),
    )
    op.create_index(op.f('ix_video_view_counts_day'), 'video_view_counts', ['day'],
                    unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_video_view_counts_day'), table_name='video_view_counts')
    op.drop_table('video_view_counts')
