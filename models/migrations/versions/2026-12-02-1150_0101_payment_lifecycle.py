"""payment lifecycle: authorisations awaiting capture, provider incidents, API version on
attempts, dispute fund movements

Revision ID: 0101
Revises: 0801
Create Date: 2026-12-02 11:50:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0101'
down_revision: str | None = '0801'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'payment_authorizations',
        sa.Column('order_id', sa.String(length=64), nullable=False),
        sa.Column('provider', sa.String(length=32), nullable=False),
        sa.Column('provider_reference', sa.String(length=200), nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('amount_authorized', sa.BigInteger(), nullable=False),
        sa.Column('amount_to_capture', sa.BigInteger(), nullable=True),
        sa.Column('amount_captured', sa.BigInteger(), nullable=False),
        sa.Column('status', sa.String(length=32), nullable=False),
        sa.Column('authorized_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('capture_due_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('leased_until', sa.DateTime(timezone=True), nullable=True),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.Column('expiry_warned_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['order_id'], ['orders.id'],
                                name=op.f('fk_payment_authorizations_order_id_orders')),
        sa.PrimaryKeyConstraint('order_id', name=op.f('pk_payment_authorizations')),
    )
    with op.batch_alter_table('payment_authorizations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payment_authorizations_provider_reference'),
                              ['provider_reference'], unique=False)
        batch_op.create_index(batch_op.f('ix_payment_authorizations_status'), ['status'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_payment_authorizations_expires_at'),
                              ['expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_payment_authorizations_capture_due_at'),
                              ['capture_due_at'], unique=False)
    op.create_table(
        'provider_incidents',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                  autoincrement=True, nullable=False),
        sa.Column('provider', sa.String(length=32), nullable=False),
        sa.Column('kind', sa.String(length=64), nullable=False),
        sa.Column('code', sa.String(length=200), nullable=True),
        sa.Column('message', sa.Text(), nullable=False),
        sa.Column('reference', sa.String(length=200), nullable=True),
        sa.Column('request_id', sa.String(length=200), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_provider_incidents')),
    )
    with op.batch_alter_table('provider_incidents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_provider_incidents_kind'), ['kind'], unique=False)
        batch_op.create_index(batch_op.f('ix_provider_incidents_created_at'), ['created_at'],
                              unique=False)
    with op.batch_alter_table('payment_attempts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('api_version', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('token_fingerprint', sa.String(length=32),
                                      nullable=True))
    with op.batch_alter_table('disputes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('funds_withdrawn', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
        batch_op.add_column(sa.Column('funds_reinstated', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table('disputes', schema=None) as batch_op:
        batch_op.drop_column('funds_reinstated')
        batch_op.drop_column('funds_withdrawn')
    with op.batch_alter_table('payment_attempts', schema=None) as batch_op:
        batch_op.drop_column('token_fingerprint')
        batch_op.drop_column('api_version')
    op.drop_table('provider_incidents')
    op.drop_table('payment_authorizations')
