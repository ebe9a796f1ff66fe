"""creative experiments, promoted videos, provenance (C2PA) and likeness consent

Revision ID: 1911
Revises: 1711
Create Date: 2026-12-02 15:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '1911'
down_revision: str | None = '1711'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    op.create_table(
        'creative_experiments',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('product_id', sa.String(length=200), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('metric', sa.String(length=16), nullable=False),
        sa.Column('attribution_model', sa.String(length=32), nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('view_source', sa.String(length=32), nullable=True),
        sa.Column('starts_on', sa.Date(), nullable=False),
        sa.Column('ends_on', sa.Date(), nullable=True),
        sa.Column('min_views', sa.Integer(), nullable=False),
        sa.Column('min_orders', sa.Integer(), nullable=False),
        sa.Column('threshold_bp', sa.Integer(), nullable=False),
        sa.Column('winner_video_id', sa.String(length=100), nullable=True),
        sa.Column('promoted_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_creative_experiments')),
    )
    op.create_index(op.f('ix_creative_experiments_product_id'), 'creative_experiments',
                    ['product_id'], unique=False)
    op.create_table(
        'creative_experiment_variants',
        sa.Column('experiment_id', sa.String(length=64), nullable=False),
        sa.Column('video_id', sa.String(length=100), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ['experiment_id'], ['creative_experiments.id'], ondelete='CASCADE',
            name=op.f('fk_creative_experiment_variants_experiment_id_creative_experiments')),
        sa.ForeignKeyConstraint(['video_id'], ['videos.id'], ondelete='CASCADE',
                                name=op.f('fk_creative_experiment_variants_video_id_videos')),
        sa.PrimaryKeyConstraint('experiment_id', 'video_id',
                                name=op.f('pk_creative_experiment_variants')),
    )
    op.create_index(op.f('ix_creative_experiment_variants_video_id'),
                    'creative_experiment_variants', ['video_id'], unique=False)
    op.create_table(
        'featured_videos',
        sa.Column('product_id', sa.String(length=200), nullable=False),
        sa.Column('video_id', sa.String(length=100), nullable=False),
        sa.Column('experiment_id', sa.String(length=64), nullable=True),
        sa.Column('promoted_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['video_id'], ['videos.id'], ondelete='CASCADE',
                                name=op.f('fk_featured_videos_video_id_videos')),
        sa.PrimaryKeyConstraint('product_id', name=op.f('pk_featured_videos')),
    )
    op.create_index(op.f('ix_featured_videos_video_id'), 'featured_videos', ['video_id'],
                    unique=False)
    op.create_table(
        'video_provenance',
        sa.Column('video_id', sa.String(length=100), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('ai_generated', sa.Boolean(), nullable=True),
        sa.Column('digital_source_type', sa.String(length=200), nullable=True),
        sa.Column('generator', sa.String(length=200), nullable=True),
        sa.Column('model', sa.String(length=200), nullable=True),
        sa.Column('content_created_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('signer', sa.String(length=300), nullable=True),
        sa.Column('signed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('manifest_label', sa.String(length=300), nullable=True),
        sa.Column('validation_codes', JSON, nullable=False),
        sa.Column('content_sha256', sa.String(length=64), nullable=False),
        sa.Column('content_bytes', sa.Integer(), nullable=False),
        sa.Column('source', sa.String(length=16), nullable=False),
        sa.Column('source_url', sa.String(length=2000), nullable=True),
        sa.Column('checked_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['video_id'], ['videos.id'], ondelete='CASCADE',
                                name=op.f('fk_video_provenance_video_id_videos')),
        sa.PrimaryKeyConstraint('video_id', name=op.f('pk_video_provenance')),
    )
    op.create_index(op.f('ix_video_provenance_status'), 'video_provenance', ['status'],
                    unique=False)
    op.create_table(
        'video_consents',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('video_id', sa.String(length=100), nullable=False),
        sa.Column('person', sa.String(length=200), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('consent_reference', sa.String(length=300), nullable=False),
        sa.Column('scope', JSON, nullable=False),
        sa.Column('granted_on', sa.Date(), nullable=True),
        sa.Column('expires_on', sa.Date(), nullable=True),
        sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['video_id'], ['videos.id'], ondelete='CASCADE',
                                name=op.f('fk_video_consents_video_id_videos')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_video_consents')),
    )
    op.create_index(op.f('ix_video_consents_video_id'), 'video_consents', ['video_id'],
                    unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_video_consents_video_id'), table_name='video_consents')
    op.drop_table('video_consents')
    op.drop_index(op.f('ix_video_provenance_status'), table_name='video_provenance')
    op.drop_table('video_provenance')
    op.drop_index(op.f('ix_featured_videos_video_id'), table_name='featured_videos')
    op.drop_table('featured_videos')
    op.drop_index(op.f('ix_creative_experiment_variants_video_id'),
                  table_name='creative_experiment_variants')
    op.drop_table('creative_experiment_variants')
    op.drop_index(op.f('ix_creative_experiments_product_id'),
                  table_name='creative_experiments')
    op.drop_table('creative_experiments')
