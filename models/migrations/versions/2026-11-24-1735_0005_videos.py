"""videos

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 17:30:36.153786
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    
    op.create_table('videos',
    sa.Column('id', sa.String(length=100), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=True),
    sa.Column('generator', sa.String(length=64), nullable=True),
    sa.Column('prompt', sa.Text(), nullable=True),
    sa.Column('source_url', sa.String(length=2000), nullable=True),
    sa.Column('thumbnail_url', sa.String(length=2000), nullable=True),
    sa.Column('duration_seconds', sa.Integer(), nullable=True),
    sa.Column('platform', sa.String(length=64), nullable=True),
    sa.Column('published_url', sa.String(length=2000), nullable=True),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('campaign', sa.String(length=200), nullable=True),
    sa.Column('creator', sa.String(length=200), nullable=True),
    sa.Column('parent_video_id', sa.String(length=100), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['parent_video_id'], ['videos.id'], name=op.f('fk_videos_parent_video_id_videos'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_videos'))
    )
    with op.batch_alter_table('videos', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_videos_campaign'), ['campaign'], unique=False)
        batch_op.create_index(batch_op.f('ix_videos_creator'), ['creator'], unique=False)
        batch_op.create_index(batch_op.f('ix_videos_generator'), ['generator'], unique=False)
        batch_op.create_index(batch_op.f('ix_videos_parent_video_id'), ['parent_video_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_videos_published_url'), ['published_url'], unique=False)

    op.create_table('video_products',
    sa.Column('video_id', sa.String(length=100), nullable=False),
    sa.Column('product_id', sa.String(length=200), nullable=False),
    sa.Column('variant_id', sa.String(length=200), nullable=True),
    sa.ForeignKeyConstraint(['video_id'], ['videos.id'], name=op.f('fk_video_products_video_id_videos'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('video_id', 'product_id', name=op.f('pk_video_products'))
    )
    with op.batch_alter_table('video_products', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_video_products_product_id'), ['product_id'], unique=False)

    


def downgrade() -> None:
    
    with op.batch_alter_table('video_products', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_video_products_product_id'))

    op.drop_table('video_products')
    with op.batch_alter_table('videos', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_videos_published_url'))
        batch_op.drop_index(batch_op.f('ix_videos_parent_video_id'))
        batch_op.drop_index(batch_op.f('ix_videos_generator'))
        batch_op.drop_index(batch_op.f('ix_videos_creator'))
        batch_op.drop_index(batch_op.f('ix_videos_campaign'))

    op.drop_table('videos')
    
