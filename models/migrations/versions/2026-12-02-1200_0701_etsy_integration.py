"""etsy integration: connection, listing links, receipts, video pushes, conflicts

Revision ID: 0701
Revises: 0101
Create Date: 2026-12-02 11:39:17.387735
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0701'
down_revision: str | None = '0101'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('etsy_conflicts',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('receipt_id', sa.String(length=32), nullable=True),
    sa.Column('order_id', sa.String(length=64), nullable=True),
    sa.Column('variant_id', sa.String(length=200), nullable=True),
    sa.Column('detail', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_etsy_conflicts'))
    )
    with op.batch_alter_table('etsy_conflicts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_etsy_conflicts_created_at'), ['created_at'], unique=False)

    op.create_table('etsy_connections',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('shop_id', sa.String(length=32), nullable=True),
    sa.Column('user_id', sa.String(length=32), nullable=True),
    sa.Column('access_token_enc', sa.Text(), nullable=True),
    sa.Column('refresh_token_enc', sa.Text(), nullable=True),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('scopes', sa.String(length=200), nullable=True),
    sa.Column('pending_state', sa.String(length=100), nullable=True),
    sa.Column('pending_verifier_enc', sa.Text(), nullable=True),
    sa.Column('listings_watermark', sa.BigInteger(), nullable=True),
    sa.Column('receipts_watermark', sa.BigInteger(), nullable=True),
    sa.Column('last_sync_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_sync_summary', sa.String(length=500), nullable=True),
    sa.Column('last_poll_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('last_error_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('limit_per_day', sa.Integer(), nullable=True),
    sa.Column('remaining_today', sa.Integer(), nullable=True),
    sa.Column('limit_per_second', sa.Integer(), nullable=True),
    sa.Column('rate_limited_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('rate_limited_count', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_etsy_connections'))
    )
    op.create_table('etsy_receipts',
    sa.Column('receipt_id', sa.String(length=32), nullable=False),
    sa.Column('order_id', sa.String(length=64), nullable=False),
    sa.Column('tracking_code', sa.String(length=200), nullable=True),
    sa.Column('tracking_posted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('receipt_id', name=op.f('pk_etsy_receipts'))
    )
    with op.batch_alter_table('etsy_receipts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_etsy_receipts_order_id'), ['order_id'], unique=False)

    op.create_table('etsy_video_pushes',
    sa.Column('product_id', sa.String(length=200), nullable=False),
    sa.Column('listing_id', sa.String(length=32), nullable=False),
    sa.Column('video_id', sa.String(length=100), nullable=False),
    sa.Column('etsy_video_id', sa.String(length=32), nullable=True),
    sa.Column('pushed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('product_id', name=op.f('pk_etsy_video_pushes'))
    )
    op.create_table('etsy_link_clicks',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('listing_id', sa.String(length=32), nullable=False),
    sa.Column('video_id', sa.String(length=100), nullable=False),
    sa.Column('campaign', sa.String(length=200), nullable=True),
    sa.Column('clicked_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_etsy_link_clicks'))
    )
    with op.batch_alter_table('etsy_link_clicks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_etsy_link_clicks_clicked_at'), ['clicked_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_etsy_link_clicks_listing_id'), ['listing_id'], unique=False)

    op.create_table('etsy_listing_links',
    sa.Column('variant_id', sa.String(length=200), nullable=False),
    sa.Column('product_id', sa.String(length=200), nullable=False),
    sa.Column('listing_id', sa.String(length=32), nullable=False),
    sa.Column('etsy_product_id', sa.String(length=32), nullable=True),
    sa.Column('offering_id', sa.String(length=32), nullable=True),
    sa.Column('sku', sa.String(length=200), nullable=True),
    sa.Column('property_key', sa.String(length=500), nullable=False),
    sa.Column('last_pushed_quantity', sa.Integer(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['variant_id'], ['variants.id'], name=op.f('fk_etsy_listing_links_variant_id_variants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('variant_id', name=op.f('pk_etsy_listing_links'))
    )
    with op.batch_alter_table('etsy_listing_links', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_etsy_listing_links_etsy_product_id'), ['etsy_product_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_etsy_listing_links_listing_id'), ['listing_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_etsy_listing_links_product_id'), ['product_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('etsy_listing_links', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_etsy_listing_links_product_id'))
        batch_op.drop_index(batch_op.f('ix_etsy_listing_links_listing_id'))
        batch_op.drop_index(batch_op.f('ix_etsy_listing_links_etsy_product_id'))

    op.drop_table('etsy_listing_links')
    with op.batch_alter_table('etsy_link_clicks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_etsy_link_clicks_listing_id'))
        batch_op.drop_index(batch_op.f('ix_etsy_link_clicks_clicked_at'))

    op.drop_table('etsy_link_clicks')
    op.drop_table('etsy_video_pushes')
    with op.batch_alter_table('etsy_receipts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_etsy_receipts_order_id'))

    op.drop_table('etsy_receipts')
    op.drop_table('etsy_connections')
    with op.batch_alter_table('etsy_conflicts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_etsy_conflicts_created_at'))

    op.drop_table('etsy_conflicts')
