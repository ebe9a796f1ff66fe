from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utc_now


class AttributionTouch(Base):
    """A claim that a video (or a publisher) drove a checkout. Never the raw token."""

    __tablename__ = "attribution_touches"
    __table_args__ = (UniqueConstraint("checkout_session_id", "touchpoint"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    checkout_session_id: Mapped[str] = mapped_column(String(64), index=True)
    touchpoint: Mapped[str] = mapped_column(String(16))  # first | last | web
    channel: Mapped[str] = mapped_column(String(32))  # acp_affiliate | web
    provider: Mapped[str | None] = mapped_column(String(200))
    publisher_id: Mapped[str | None] = mapped_column(String(200))
    campaign_id: Mapped[str | None] = mapped_column(String(200))
    creative_id: Mapped[str | None] = mapped_column(String(200))
    sub_id: Mapped[str | None] = mapped_column(String(200))
    source_url: Mapped[str | None] = mapped_column(String(2000))
    token_fingerprint: Mapped[str | None] = mapped_column(String(64))
    claim_metadata: Mapped[dict[str, Any] | None] = mapped_column("metadata")
    video_id: Mapped[str | None] = mapped_column(String(100), index=True)
    video_known: Mapped[bool] = mapped_column(Boolean, default=False)
    touched_at: Mapped[datetime] = mapped_column(default=utc_now)
    # Joined shoppable-link touches (issue 19): the link a claim named, the click it named
    # (its time is ``touched_at``), the visitor whose clicks and views count, and the type.
    touch_type: Mapped[str | None] = mapped_column(String(16))  # TouchType
    link_code: Mapped[str | None] = mapped_column(String(16))
    click_id: Mapped[str | None] = mapped_column(String(40))
    visitor: Mapped[str | None] = mapped_column(String(64))


class LedgerEntry(Base):
    """Append-only attribution ledger: one row per (order, video, model) per event.

    Sales add positive rows; refunds and disputes add negative rows (full → reverse,
    partial → proportional); nothing is edited in place.
    """

    __tablename__ = "attribution_ledger"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(String(64), index=True)
    video_id: Mapped[str | None] = mapped_column(String(100), index=True)
    model: Mapped[str] = mapped_column(String(32), index=True)
    window_days: Mapped[int | None] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))  # sale | refund | dispute | fee
    reason: Mapped[str | None] = mapped_column(String(200))
    reference: Mapped[str | None] = mapped_column(String(200))  # refund / dispute id
    currency: Mapped[str] = mapped_column(String(3))
    gross: Mapped[int] = mapped_column(BigInteger)
    discount: Mapped[int] = mapped_column(BigInteger)
    tax: Mapped[int] = mapped_column(BigInteger)
    shipping: Mapped[int] = mapped_column(BigInteger)
    commissionable: Mapped[int] = mapped_column(BigInteger)
    fee: Mapped[int] = mapped_column(BigInteger)
    net: Mapped[int] = mapped_column(BigInteger)
    campaign: Mapped[str | None] = mapped_column(String(200))
    creator: Mapped[str | None] = mapped_column(String(200))
    generator: Mapped[str | None] = mapped_column(String(64))
    agent_id: Mapped[str | None] = mapped_column(String(64))
    order_at: Mapped[datetime] = mapped_column(index=True)
    touch_at: Mapped[datetime | None] = mapped_column()
    # Which touch earned the credit (TouchType: click | view | agent_claim; None when
    # unattributed); ``window_days`` is then that touch type's window.
    touch_type: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
