"""Commissions: payees, contracts, the append-only commission ledger, statements, payouts.

Amounts are integers in minor units beside their currency. ``commission_entries`` is
append-only for amounts: a sale adds positive rows, refunds and disputes add negative
rows, a payout adds one negative row, a reversed transfer a positive one. Only the
lifecycle marker (``status``: pending → locked → in_payout → paid) and the payout a row
was paid by move forward.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utc_now


class Payee(Base):
    """A creator, a likeness/cameo owner or another rights holder we pay."""

    __tablename__ = "payees"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))  # creator | likeness | rights_holder
    email: Mapped[str | None] = mapped_column(String(320))
    connect_account: Mapped[str | None] = mapped_column(String(64))  # acct_…
    country: Mapped[str] = mapped_column(String(2))  # tax / reporting country
    currency: Mapped[str] = mapped_column(String(3))  # payout currency
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now)


class CommissionContract(Base):
    """Who earns what on which sales; the terms are copied onto every commission row."""

    __tablename__ = "commission_contracts"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # video | remixes | campaign | product | category | creator
    scope_type: Mapped[str] = mapped_column(String(16))
    scope_value: Mapped[str] = mapped_column(String(200), index=True)
    basis: Mapped[str] = mapped_column(String(16))  # percent | fixed_per_unit
    rate_bps: Mapped[int] = mapped_column(Integer, default=0)
    fixed_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    currency: Mapped[str | None] = mapped_column(String(3))  # fixed_per_unit only
    model: Mapped[str] = mapped_column(String(32))  # attribution model it pays on
    remix_share_bps: Mapped[int] = mapped_column(Integer, default=0)
    return_window_days: Mapped[int] = mapped_column(Integer, default=30)
    effective_from: Mapped[datetime] = mapped_column()
    effective_to: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class ContractPayee(Base):
    """A payee's weight in a contract (creator 3, cameo owner 1 → 75 % / 25 %)."""

    __tablename__ = "contract_payees"

    contract_id: Mapped[str] = mapped_column(
        ForeignKey("commission_contracts.id", ondelete="CASCADE"), primary_key=True)
    payee_id: Mapped[str] = mapped_column(ForeignKey("payees.id"), primary_key=True)
    weight: Mapped[int] = mapped_column(Integer)


class CommissionEntry(Base):
    """One line of the commission ledger (see the module docstring)."""

    __tablename__ = "commission_entries"
    __table_args__ = (Index("ix_commission_entries_payee_status", "payee_id", "status"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True)
    payee_id: Mapped[str] = mapped_column(String(64), index=True)
    # sale | refund | dispute | dispute_won | payout | payout_reversal
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))  # pending | locked | in_payout | paid
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    contract_id: Mapped[str | None] = mapped_column(String(64))
    order_id: Mapped[str | None] = mapped_column(String(64), index=True)
    video_id: Mapped[str | None] = mapped_column(String(100))
    earned_on_video_id: Mapped[str | None] = mapped_column(String(100))  # remix lineage
    model: Mapped[str | None] = mapped_column(String(32))
    # The terms in force at the sale, locked on the row.
    basis: Mapped[str | None] = mapped_column(String(16))
    rate_bps: Mapped[int | None] = mapped_column(Integer)
    fixed_amount: Mapped[int | None] = mapped_column(BigInteger)
    units: Mapped[int | None] = mapped_column(Integer)
    base_amount: Mapped[int | None] = mapped_column(BigInteger)
    weight: Mapped[int | None] = mapped_column(Integer)
    sale_entry_id: Mapped[int | None] = mapped_column(BigInteger)  # clawbacks → their sale
    reference: Mapped[str | None] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(String(200))
    campaign: Mapped[str | None] = mapped_column(String(200))
    creator: Mapped[str | None] = mapped_column(String(200))
    generator: Mapped[str | None] = mapped_column(String(64))
    agent_id: Mapped[str | None] = mapped_column(String(64))
    order_at: Mapped[datetime | None] = mapped_column()
    lock_at: Mapped[datetime] = mapped_column(index=True)
    payout_id: Mapped[str | None] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utc_now, index=True)


class Statement(Base):
    """A payee's statement for a period; its lines are read from the ledger."""

    __tablename__ = "commission_statements"
    __table_args__ = (UniqueConstraint("payee_id", "period_start", "period_end"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    payee_id: Mapped[str] = mapped_column(ForeignKey("payees.id"), index=True)
    period_start: Mapped[datetime] = mapped_column()
    period_end: Mapped[datetime] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class StatementLink(Base):
    """A read-only link for the payee: only the token's SHA-256 is stored."""

    __tablename__ = "statement_links"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    statement_id: Mapped[str] = mapped_column(
        ForeignKey("commission_statements.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class PayoutRun(Base):
    __tablename__ = "payout_runs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))  # running | completed
    as_of: Mapped[datetime] = mapped_column()
    minimum_amount: Mapped[int] = mapped_column(BigInteger)
    summary: Mapped[dict[str, Any] | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now)


class CommissionPayout(Base):
    """One transfer to one payee in one run. Committed (``pending``) before Stripe is
    called; the idempotency key is derived from (run, payee), so a retry is the same call."""

    __tablename__ = "commission_payouts"
    __table_args__ = (UniqueConstraint("run_id", "payee_id"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("payout_runs.id"), index=True)
    payee_id: Mapped[str] = mapped_column(ForeignKey("payees.id"), index=True)
    statement_id: Mapped[str | None] = mapped_column(String(64))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    destination: Mapped[str] = mapped_column(String(64))
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    # pending | paid | failed | reversed
    status: Mapped[str] = mapped_column(String(16))
    transfer_id: Mapped[str | None] = mapped_column(String(64), index=True)
    amount_reversed: Mapped[int] = mapped_column(BigInteger, default=0)
    failure: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now)


class SandboxTransfer(Base):
    """Transfers made by the offline sandbox (stands in for Stripe Connect)."""

    __tablename__ = "sandbox_transfers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    params_hash: Mapped[str] = mapped_column(String(64))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    destination: Mapped[str] = mapped_column(String(64))
    transfer_group: Mapped[str | None] = mapped_column(String(200), index=True)
    transfer_metadata: Mapped[dict[str, Any]] = mapped_column("metadata")
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
