from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utc_now


class UcpCheckout(Base):
    """The UCP side of a checkout session: who the platform is, what was negotiated, and
    the UCP-only state the core does not model (fulfilment methods and destinations,
    buyer consent, instruments as displayed, the attribution map echoed on the order)."""

    __tablename__ = "ucp_checkouts"

    checkout_session_id: Mapped[str] = mapped_column(
        ForeignKey("checkout_sessions.id", ondelete="CASCADE"), primary_key=True)
    profile_url: Mapped[str | None] = mapped_column(String(2000))
    webhook_url: Mapped[str | None] = mapped_column(String(2000))
    capabilities: Mapped[list[Any]] = mapped_column(default=list)
    state: Mapped[dict[str, Any]] = mapped_column(default=dict)
    attribution: Mapped[dict[str, Any] | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now)


class UcpAddress(Base):
    """Buyers' saved shipping addresses, offered as fulfilment destinations to a known
    buyer (matched by email)."""

    __tablename__ = "ucp_addresses"
    __table_args__ = (UniqueConstraint("email", "fingerprint"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), index=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    address: Mapped[dict[str, Any]] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
