from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utc_now


class Order(Base):
    __tablename__ = "orders"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    order_number: Mapped[str] = mapped_column(String(32), unique=True)
    checkout_session_id: Mapped[str] = mapped_column(
        ForeignKey("checkout_sessions.id"), unique=True
    )
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id"), index=True)
    status: Mapped[str] = mapped_column(String(32), index=True)
    # paid | authorized | partially_refunded | refunded | disputed | dispute_lost
    payment_status: Mapped[str] = mapped_column(String(32), default="paid")
    currency: Mapped[str] = mapped_column(String(3))
    line_items: Mapped[list[Any]] = mapped_column()
    totals: Mapped[list[Any]] = mapped_column()
    total_amount: Mapped[int] = mapped_column(BigInteger)
    refunded_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    buyer: Mapped[dict[str, Any] | None] = mapped_column()
    fulfillment_details: Mapped[dict[str, Any] | None] = mapped_column()
    selected_fulfillment_options: Mapped[list[Any] | None] = mapped_column()
    order_notes: Mapped[str | None] = mapped_column(String(5000))
    # Fulfillment forwarding: not_forwarded | pending | forwarded | needs_attention | manual
    forwarding_status: Mapped[str] = mapped_column(String(32), default="manual")
    permalink_url: Mapped[str | None] = mapped_column(String(2000))
    attention_reason: Mapped[str | None] = mapped_column(Text)
    shopify_order_id: Mapped[str | None] = mapped_column(String(100), index=True)
    shopify_order_name: Mapped[str | None] = mapped_column(String(64))
    payment_provider: Mapped[str] = mapped_column(String(32))
    payment_reference: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utc_now, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now)


class Refund(Base):
    """A refund of (part of) an order. ``id`` is deterministic per merchant request, so a
    retried request reaches the provider with the same idempotency key."""

    __tablename__ = "refunds"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(32))  # pending | succeeded | failed | canceled
    reason: Mapped[str | None] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(32))  # merchant | shopify | provider
    external_id: Mapped[str | None] = mapped_column(String(200), unique=True)
    provider_reference: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now)


class Dispute(Base):
    __tablename__ = "disputes"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)  # provider's dispute id
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(String(200))
    # Money actually moved (charge.dispute.funds_withdrawn / funds_reinstated); inquiries
    # (warning_*) never move any.
    funds_withdrawn: Mapped[bool] = mapped_column(default=False)
    funds_reinstated: Mapped[bool] = mapped_column(default=False)
    # When the merchant's evidence is due (Stripe ``evidence_details.due_by``); None when
    # no response is possible or the provider did not say.
    evidence_due_by: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now)


class Fulfillment(Base):
    """A shipment (or digital delivery) of some of an order's lines."""

    __tablename__ = "fulfillments"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), index=True)
    external_id: Mapped[str | None] = mapped_column(String(100), unique=True)
    type: Mapped[str] = mapped_column(String(16), default="shipping")
    status: Mapped[str] = mapped_column(String(32))
    carrier: Mapped[str | None] = mapped_column(String(100))
    tracking_number: Mapped[str | None] = mapped_column(String(200))
    tracking_url: Mapped[str | None] = mapped_column(String(2000))
    line_items: Mapped[list[Any]] = mapped_column(default=list)  # [{id, quantity}]
    events: Mapped[list[Any]] = mapped_column(default=list)
    source_updated_at: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now)


class OrderEvent(Base):
    """Append-only history of an order: who did what, when."""

    __tablename__ = "order_events"

    # BIGINT on PostgreSQL; SQLite only auto-increments an INTEGER primary key.
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    type: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(100))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
