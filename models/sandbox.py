from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utc_now


class SandboxCharge(Base):
    """The built-in sandbox PSP's ledger. Unique idempotency key, like a real PSP."""

    __tablename__ = "sandbox_charges"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(32))
    token_fingerprint: Mapped[str] = mapped_column(String(64))
    decline_code: Mapped[str | None] = mapped_column(String(100))
    fee_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    # Manual capture (status requires_capture until then): what was captured, and when.
    # NULL for a charge captured at once: all of ``amount`` at ``created_at``.
    amount_captured: Mapped[int | None] = mapped_column(BigInteger)
    captured_at: Mapped[datetime | None] = mapped_column()


class SandboxRefund(Base):
    __tablename__ = "sandbox_refunds"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    charge_id: Mapped[str] = mapped_column(String(64), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class SandboxDispute(Base):
    __tablename__ = "sandbox_disputes"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    charge_id: Mapped[str] = mapped_column(String(64), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    fee_amount: Mapped[int] = mapped_column(BigInteger, default=1500)
    status: Mapped[str] = mapped_column(String(32), default="needs_response")
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    # When the issuer decided (won: the disputed amount comes back in that day's payout).
    closed_at: Mapped[datetime | None] = mapped_column()
