"""shoppable links, link touches (clicks, pixel views), touch types on touches and ledger

Revision ID: 1901
Revises: 1701
Create Date: 2026-12-02 15:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '1901'
down_revision: str | None = '1701'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('shoppable_links',
    sa.Column('code', sa.String(length=16), nullable=False),
    sa.Column('video_id', sa.String(length=100), nullable=False),
    sa.Column('product_id', sa.String(length=200), nullable=False),
    sa.Column('channel', sa.String(length=32), nullable=False),
    sa.Column('destination_url', sa.String(length=2048), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['video_id'], ['videos.id'],
                            name=op.f('fk_shoppable_links_video_id_videos'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_shoppable_links')),
    sa.UniqueConstraint('video_id', 'product_id', 'channel',
                        name=op.f('uq_shoppable_links_video_id_product_id_channel')),
    )
    op.create_index(op.f('ix_shoppable_links_video_id'), 'shoppable_links', ['video_id'])
    op.create_index(op.f('ix_shoppable_links_product_id'), 'shoppable_links', ['product_id'])
    op.create_table('link_touches',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('link_code', sa.String(length=16), nullable=True),
    sa.Column('video_id', sa.String(length=100), nullable=False),
    sa.Column('channel', sa.String(length=32), nullable=False),
    sa.Column('visitor', sa.String(length=64), nullable=False),
    sa.Column('touched_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_link_touches')),
    )
    op.create_index('ix_link_touches_visitor_at', 'link_touches', ['visitor', 'touched_at'])
    op.create_index('ix_link_touches_video_kind_at', 'link_touches',
                    ['video_id', 'kind', 'touched_at'])
    with op.batch_alter_table('attribution_touches') as batch:
        batch.add_column(sa.Column('touch_type', sa.String(length=16), nullable=True))
        batch.add_column(sa.Column('link_code', sa.String(length=16), nullable=True))
        batch.add_column(sa.Column('click_id', sa.String(length=40), nullable=True))
        batch.add_column(sa.Column('visitor', sa.String(length=64), nullable=True))
    with op.batch_alter_table('attribution_ledger') as batch:
        batch.add_column(sa.Column('touch_type', sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('attribution_ledger') as batch:
        batch.drop_column('touch_type')
    with op.batch_alter_table('attribution_touches') as batch:
        batch.drop_column('visitor')
        batch.drop_column('click_id')
        batch.drop_column('link_code')
        batch.drop_column('touch_type')
    op.drop_index('ix_link_touches_video_kind_at', table_name='link_touches')
    op.drop_index('ix_link_touches_visitor_at', table_name='link_touches')
    op.drop_table('link_touches')
    op.drop_index(op.f('ix_shoppable_links_product_id'), table_name='shoppable_links')
    op.drop_index(op.f('ix_shoppable_links_video_id'), table_name='shoppable_links')
    op.drop_table('shoppable_links')
