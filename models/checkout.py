from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utc_now


class CheckoutSession(Base):
    """One ACP checkout session. The priced snapshot is stored as the agent last saw it."""

    __tablename__ = "checkout_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id"), index=True)
    status: Mapped[str] = mapped_column(String(40))
    currency: Mapped[str] = mapped_column(String(3))
    # What the agent asked for: [{"id": item_id, "quantity": n}] in request order.
    requested_items: Mapped[list[Any]] = mapped_column()
    buyer: Mapped[dict[str, Any] | None] = mapped_column()
    fulfillment_details: Mapped[dict[str, Any] | None] = mapped_column()
    selected_fulfillment_options: Mapped[list[Any] | None] = mapped_column()
    agent_capabilities: Mapped[dict[str, Any]] = mapped_column(default=dict)
    locale: Mapped[str | None] = mapped_column(String(35))
    timezone: Mapped[str | None] = mapped_column(String(64))
    order_notes: Mapped[str | None] = mapped_column(Text)
    session_metadata: Mapped[dict[str, Any] | None] = mapped_column("metadata", default=None)
    # Priced snapshot (authoritative state returned on every response).
    line_items: Mapped[list[Any]] = mapped_column(default=list)
    fulfillment_options: Mapped[list[Any]] = mapped_column(default=list)
    totals: Mapped[list[Any]] = mapped_column(default=list)
    messages: Mapped[list[Any]] = mapped_column(default=list)
    total_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    authentication_metadata: Mapped[dict[str, Any] | None] = mapped_column()
    payment_handler_id: Mapped[str | None] = mapped_column(String(100))
    # Stock held for an in-flight payment: {variant_id: quantity}.
    reserved_stock: Mapped[dict[str, Any] | None] = mapped_column()
    cancel_reason: Mapped[dict[str, Any] | None] = mapped_column()
    discount_codes: Mapped[list[Any] | None] = mapped_column()
    order_id: Mapped[str | None] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now)
    # Neither status nor expires_at is indexed: no query selects sessions by them.
    expires_at: Mapped[datetime] = mapped_column()


class PaymentAttempt(Base):
    """Written before the payment provider is called, so a crash can be recovered."""

    __tablename__ = "payment_attempts"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    checkout_session_id: Mapped[str] = mapped_column(
        ForeignKey("checkout_sessions.id"), index=True
    )
    provider: Mapped[str] = mapped_column(String(32))
    # Deterministic key sent to the provider: the same session+amount+currency → same charge.
    provider_idempotency_key: Mapped[str] = mapped_column(String(200))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(32))
    provider_reference: Mapped[str | None] = mapped_column(String(200), index=True)
    failure_code: Mapped[str | None] = mapped_column(String(100))
    # Settlement facts, filled from the provider's balance transaction (charge.updated).
    charge_id: Mapped[str | None] = mapped_column(String(200))
    balance_transaction_id: Mapped[str | None] = mapped_column(String(200))
    fee_amount: Mapped[int | None] = mapped_column(BigInteger)
    net_amount: Mapped[int | None] = mapped_column(BigInteger)
    # The provider API version the attempt was made with (Stripe-Version), and which token
    # it used (a fingerprint: tokens are never stored).
    api_version: Mapped[str | None] = mapped_column(String(64))
    token_fingerprint: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now)
