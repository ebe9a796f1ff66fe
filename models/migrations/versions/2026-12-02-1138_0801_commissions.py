"""commissions payees contracts payouts

Revision ID: 0801
Revises: 0401
Create Date: 2026-12-02 11:38:13.860410
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0801'
down_revision: str | None = '0401'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    
    op.create_table('commission_contracts',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('scope_type', sa.String(length=16), nullable=False),
    sa.Column('scope_value', sa.String(length=200), nullable=False),
    sa.Column('basis', sa.String(length=16), nullable=False),
    sa.Column('rate_bps', sa.Integer(), nullable=False),
    sa.Column('fixed_amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('model', sa.String(length=32), nullable=False),
    sa.Column('remix_share_bps', sa.Integer(), nullable=False),
    sa.Column('return_window_days', sa.Integer(), nullable=False),
    sa.Column('effective_from', sa.DateTime(timezone=True), nullable=False),
    sa.Column('effective_to', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_commission_contracts'))
    )
    with op.batch_alter_table('commission_contracts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_commission_contracts_scope_value'), ['scope_value'], unique=False)

    op.create_table('commission_entries',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('payee_id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('contract_id', sa.String(length=64), nullable=True),
    sa.Column('order_id', sa.String(length=64), nullable=True),
    sa.Column('video_id', sa.String(length=100), nullable=True),
    sa.Column('earned_on_video_id', sa.String(length=100), nullable=True),
    sa.Column('model', sa.String(length=32), nullable=True),
    sa.Column('basis', sa.String(length=16), nullable=True),
    sa.Column('rate_bps', sa.Integer(), nullable=True),
    sa.Column('fixed_amount', sa.BigInteger(), nullable=True),
    sa.Column('units', sa.Integer(), nullable=True),
    sa.Column('base_amount', sa.BigInteger(), nullable=True),
    sa.Column('weight', sa.Integer(), nullable=True),
    sa.Column('sale_entry_id', sa.BigInteger(), nullable=True),
    sa.Column('reference', sa.String(length=200), nullable=True),
    sa.Column('reason', sa.String(length=200), nullable=True),
    sa.Column('campaign', sa.String(length=200), nullable=True),
    sa.Column('creator', sa.String(length=200), nullable=True),
    sa.Column('generator', sa.String(length=64), nullable=True),
    sa.Column('agent_id', sa.String(length=64), nullable=True),
    sa.Column('order_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('lock_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('payout_id', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_commission_entries'))
    )
    with op.batch_alter_table('commission_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_commission_entries_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_commission_entries_lock_at'), ['lock_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_commission_entries_order_id'), ['order_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_commission_entries_payee_id'), ['payee_id'], unique=False)
        batch_op.create_index('ix_commission_entries_payee_status', ['payee_id', 'status'], unique=False)
        batch_op.create_index(batch_op.f('ix_commission_entries_payout_id'), ['payout_id'], unique=False)

    op.create_table('payees',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=True),
    sa.Column('connect_account', sa.String(length=64), nullable=True),
    sa.Column('country', sa.String(length=2), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payees'))
    )
    op.create_table('payout_runs',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('as_of', sa.DateTime(timezone=True), nullable=False),
    sa.Column('minimum_amount', sa.BigInteger(), nullable=False),
    sa.Column('summary', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payout_runs'))
    )
    op.create_table('sandbox_transfers',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('idempotency_key', sa.String(length=200), nullable=False),
    sa.Column('params_hash', sa.String(length=64), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('destination', sa.String(length=64), nullable=False),
    sa.Column('transfer_group', sa.String(length=200), nullable=True),
    sa.Column('metadata', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sandbox_transfers')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_sandbox_transfers_idempotency_key'))
    )
    with op.batch_alter_table('sandbox_transfers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sandbox_transfers_transfer_group'), ['transfer_group'], unique=False)

    op.create_table('commission_payouts',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('run_id', sa.String(length=64), nullable=False),
    sa.Column('payee_id', sa.String(length=64), nullable=False),
    sa.Column('statement_id', sa.String(length=64), nullable=True),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('destination', sa.String(length=64), nullable=False),
    sa.Column('idempotency_key', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('transfer_id', sa.String(length=64), nullable=True),
    sa.Column('amount_reversed', sa.BigInteger(), nullable=False),
    sa.Column('failure', sa.String(length=500), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['payee_id'], ['payees.id'], name=op.f('fk_commission_payouts_payee_id_payees')),
    sa.ForeignKeyConstraint(['run_id'], ['payout_runs.id'], name=op.f('fk_commission_payouts_run_id_payout_runs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_commission_payouts')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_commission_payouts_idempotency_key')),
    sa.UniqueConstraint('run_id', 'payee_id', name=op.f('uq_commission_payouts_run_id_payee_id'))
    )
    with op.batch_alter_table('commission_payouts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_commission_payouts_payee_id'), ['payee_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_commission_payouts_run_id'), ['run_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_commission_payouts_transfer_id'), ['transfer_id'], unique=False)

    op.create_table('commission_statements',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('payee_id', sa.String(length=64), nullable=False),
    sa.Column('period_start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('period_end', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['payee_id'], ['payees.id'], name=op.f('fk_commission_statements_payee_id_payees')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_commission_statements')),
    sa.UniqueConstraint('payee_id', 'period_start', 'period_end', name=op.f('uq_commission_statements_payee_id_period_start_period_end'))
    )
    with op.batch_alter_table('commission_statements', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_commission_statements_payee_id'), ['payee_id'], unique=False)

    op.create_table('contract_payees',
    sa.Column('contract_id', sa.String(length=64), nullable=False),
    sa.Column('payee_id', sa.String(length=64), nullable=False),
    sa.Column('weight', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['contract_id'], ['commission_contracts.id'], name=op.f('fk_contract_payees_contract_id_commission_contracts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['payee_id'], ['payees.id'], name=op.f('fk_contract_payees_payee_id_payees')),
    sa.PrimaryKeyConstraint('contract_id', 'payee_id', name=op.f('pk_contract_payees'))
    )
    op.create_table('statement_links',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('statement_id', sa.String(length=64), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['statement_id'], ['commission_statements.id'], name=op.f('fk_statement_links_statement_id_commission_statements'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_statement_links')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_statement_links_token_hash'))
    )
    with op.batch_alter_table('statement_links', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_statement_links_statement_id'), ['statement_id'], unique=False)

    


def downgrade() -> None:
    
    with op.batch_alter_table('statement_links', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_statement_links_statement_id'))

    op.drop_table('statement_links')
    op.drop_table('contract_payees')
    with op.batch_alter_table('commission_statements', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_commission_statements_payee_id'))

    op.drop_table('commission_statements')
    with op.batch_alter_table('commission_payouts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_commission_payouts_transfer_id'))
        batch_op.drop_index(batch_op.f('ix_commission_payouts_run_id'))
        batch_op.drop_index(batch_op.f('ix_commission_payouts_payee_id'))

    op.drop_table('commission_payouts')
    with op.batch_alter_table('sandbox_transfers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sandbox_transfers_transfer_group'))

    op.drop_table('sandbox_transfers')
    op.drop_table('payout_runs')
    op.drop_table('payees')
    with op.batch_alter_table('commission_entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_commission_entries_payout_id'))
        batch_op.drop_index('ix_commission_entries_payee_status')
        batch_op.drop_index(batch_op.f('ix_commission_entries_payee_id'))
        batch_op.drop_index(batch_op.f('ix_commission_entries_order_id'))
        batch_op.drop_index(batch_op.f('ix_commission_entries_lock_at'))
        batch_op.drop_index(batch_op.f('ix_commission_entries_created_at'))

    op.drop_table('commission_entries')
    with op.batch_alter_table('commission_contracts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_commission_contracts_scope_value'))

    op.drop_table('commission_contracts')
    
