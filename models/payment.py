"""Payment lifecycle after the charge: card authorisations awaiting capture, and incidents
with the payment provider that the merchant must see (integration errors, capture
failures, authorisations about to lapse)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utc_now


class AuthorizationStatus(StrEnum):
    authorized = "authorized"          # waiting for shipment (or the capture delay)
    capture_due = "capture_due"        # shipped / delay elapsed: the worker captures
    captured = "captured"
    cancel_due = "cancel_due"          # order canceled before capture: the worker releases
    canceled = "canceled"
    needs_attention = "needs_attention"  # the provider refused the capture / cancel


class PaymentAuthorization(Base):
    """One manual-capture payment (Stripe ``capture_method=manual``), by order."""

    __tablename__ = "payment_authorizations"

    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), primary_key=True)
    provider: Mapped[str] = mapped_column(String(32))
    provider_reference: Mapped[str] = mapped_column(String(200), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    amount_authorized: Mapped[int] = mapped_column(BigInteger)
    amount_to_capture: Mapped[int | None] = mapped_column(BigInteger)
    amount_captured: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(32), index=True)
    authorized_at: Mapped[datetime] = mapped_column()
    expires_at: Mapped[datetime] = mapped_column(index=True)
    capture_due_at: Mapped[datetime | None] = mapped_column(index=True)
    # A worker that took the row for a provider call; expires so a dead worker is replaced.
    leased_until: Mapped[datetime | None] = mapped_column()
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    expiry_warned_at: Mapped[datetime | None] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column(default=utc_now)


class ProviderIncident(Base):
    """Something the merchant must fix or look at (integration health on the dashboard)."""

    __tablename__ = "provider_incidents"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(64), index=True)
    code: Mapped[str | None] = mapped_column(String(200))
    message: Mapped[str] = mapped_column(Text)
    reference: Mapped[str | None] = mapped_column(String(200))
    request_id: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utc_now, index=True)
