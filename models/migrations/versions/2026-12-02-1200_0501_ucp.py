"""ucp checkouts and saved addresses

Revision ID: 0501
Revises: 0701
Create Date: 2026-12-02 12:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0501'
down_revision: str | None = '0701'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    op.create_table('ucp_checkouts',
    sa.Column('checkout_session_id', sa.String(length=64), nullable=False),
    sa.Column('profile_url', sa.String(length=2000), nullable=True),
    sa.Column('webhook_url', sa.String(length=2000), nullable=True),
    sa.Column('capabilities', JSON, nullable=False),
    sa.Column('state', JSON, nullable=False),
    sa.Column('attribution', JSON, nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['checkout_session_id'], ['checkout_sessions.id'], name=op.f('fk_ucp_checkouts_checkout_session_id_checkout_sessions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('checkout_session_id', name=op.f('pk_ucp_checkouts'))
    )
    op.create_table('ucp_addresses',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('address', JSON, nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ucp_addresses')),
    sa.UniqueConstraint('email', 'fingerprint', name=op.f('uq_ucp_addresses_email_fingerprint'))
    )
    with op.batch_alter_table('ucp_addresses', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ucp_addresses_email'), ['email'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('ucp_addresses', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ucp_addresses_email'))
    op.drop_table('ucp_addresses')
    op.drop_table('ucp_checkouts')
