"""Etsy integration state: the shop connection (tokens encrypted), listing links, receipts
taken in, videos pushed, and conflicts for the merchant to resolve."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utc_now


class EtsyConnection(Base):
    """One row per connected shop (``id`` = 'default'): OAuth state and integration health."""

    __tablename__ = "etsy_connections"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    shop_id: Mapped[str | None] = mapped_column(String(32))
    user_id: Mapped[str | None] = mapped_column(String(32))
    # Fernet tokens (REELCART_ETSY_TOKEN_KEY); never plain text.
    access_token_enc: Mapped[str | None] = mapped_column(Text)
    refresh_token_enc: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[datetime | None] = mapped_column()
    scopes: Mapped[str | None] = mapped_column(String(200))
    pending_state: Mapped[str | None] = mapped_column(String(100))
    pending_verifier_enc: Mapped[str | None] = mapped_column(Text)
    listings_watermark: Mapped[int | None] = mapped_column(BigInteger)
    receipts_watermark: Mapped[int | None] = mapped_column(BigInteger)
    last_sync_at: Mapped[datetime | None] = mapped_column()
    last_sync_summary: Mapped[str | None] = mapped_column(String(500))
    last_poll_at: Mapped[datetime | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None] = mapped_column()
    limit_per_day: Mapped[int | None] = mapped_column(Integer)
    remaining_today: Mapped[int | None] = mapped_column(Integer)
    limit_per_second: Mapped[int | None] = mapped_column(Integer)
    rate_limited_at: Mapped[datetime | None] = mapped_column()
    rate_limited_count: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now)


class EtsyListingLink(Base):
    """Which Etsy listing/product/offering a variant is. Etsy issues new product and
    offering ids on every inventory update, so those are refreshed after each push."""

    __tablename__ = "etsy_listing_links"

    variant_id: Mapped[str] = mapped_column(
        ForeignKey("variants.id", ondelete="CASCADE"), primary_key=True)
    product_id: Mapped[str] = mapped_column(String(200), index=True)
    listing_id: Mapped[str] = mapped_column(String(32), index=True)
    etsy_product_id: Mapped[str | None] = mapped_column(String(32), index=True)
    offering_id: Mapped[str | None] = mapped_column(String(32))
    sku: Mapped[str | None] = mapped_column(String(200))
    property_key: Mapped[str] = mapped_column(String(500), default="")
    last_pushed_quantity: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now)


class EtsyReceipt(Base):
    """An Etsy receipt taken in once (webhook or polling): the order it became."""

    __tablename__ = "etsy_receipts"

    receipt_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(64), index=True)
    tracking_code: Mapped[str | None] = mapped_column(String(200))
    tracking_posted_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class EtsyVideoPush(Base):
    """The featured video last pushed to a product's Etsy listing."""

    __tablename__ = "etsy_video_pushes"

    product_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    listing_id: Mapped[str] = mapped_column(String(32))
    video_id: Mapped[str] = mapped_column(String(100))
    etsy_video_id: Mapped[str | None] = mapped_column(String(32))
    pushed_at: Mapped[datetime] = mapped_column(default=utc_now)


class EtsyConflict(Base):
    """Something the two inventories disagreed on (e.g. an Etsy sale of a unit we had
    already sold): shown on the dashboard until resolved."""

    __tablename__ = "etsy_conflicts"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    receipt_id: Mapped[str | None] = mapped_column(String(32))
    order_id: Mapped[str | None] = mapped_column(String(64))
    variant_id: Mapped[str | None] = mapped_column(String(200))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utc_now, index=True)
    resolved_at: Mapped[datetime | None] = mapped_column()


class EtsyLinkClick(Base):
    """A click on a shoppable link to an Etsy listing (``/go/etsy/{listing_id}``) from a
    video. Etsy receipts carry no UTM data, so a later sale of that listing is credited to
    the most recent click within the attribution window."""

    __tablename__ = "etsy_link_clicks"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    listing_id: Mapped[str] = mapped_column(String(32), index=True)
    video_id: Mapped[str] = mapped_column(String(100))
    campaign: Mapped[str | None] = mapped_column(String(200))
    clicked_at: Mapped[datetime] = mapped_column(default=utc_now, index=True)
