from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utc_now
from models.statuses import DeliveryStatus

__all__ = ["DeliveryStatus", "Destination", "FeedDelivery", "FeedDestinationItem", "FeedPush",
           "FeedPushItem"]


class FeedPushItem(Base):
    """What the agent's Feed API last acknowledged for a product (content hash)."""

    __tablename__ = "feed_push_items"

    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"),
                                          primary_key=True)
    product_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    pushed_at: Mapped[datetime] = mapped_column(default=utc_now)


class FeedPush(Base):
    """One push run: what was compared, sent, and how it went."""

    __tablename__ = "feed_pushes"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"),
                                          index=True)
    feed_id: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))  # running | succeeded | failed
    products_total: Mapped[int] = mapped_column(Integer, default=0)
    products_sent: Mapped[int] = mapped_column(Integer, default=0)
    batches: Mapped[int] = mapped_column(Integer, default=0)
    retries: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime] = mapped_column(default=utc_now)
    finished_at: Mapped[datetime | None] = mapped_column()


class Destination(StrEnum):
    """Where a publish run delivers the catalog (besides the agents' ACP Feed APIs)."""

    acp_feed_api = "acp_feed_api"
    openai_sftp = "openai_sftp"
    google_merchant = "google_merchant"
    stripe_catalog = "stripe_catalog"


class FeedDelivery(Base):
    """One delivery to one destination: a file over SFTP, a batch run to Google's
    Merchant API, an import at Stripe. ``file``/``size_bytes``/``checksum`` describe what
    was sent; ``remote_ref``/``remote_status`` what the partner calls it (e.g. Stripe's
    import id and its processing status)."""

    __tablename__ = "feed_deliveries"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    destination: Mapped[str] = mapped_column(String(40), index=True)
    run_id: Mapped[str] = mapped_column(String(64), index=True)
    mode: Mapped[str] = mapped_column(String(16))  # full | incremental
    status: Mapped[str] = mapped_column(String(16))
    file: Mapped[str | None] = mapped_column(String(500))
    size_bytes: Mapped[int] = mapped_column(Integer, default=0)
    checksum: Mapped[str | None] = mapped_column(String(80))  # sha256 hex
    items_sent: Mapped[int] = mapped_column(Integer, default=0)
    items_deleted: Mapped[int] = mapped_column(Integer, default=0)
    items_failed: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    remote_ref: Mapped[str | None] = mapped_column(String(200))
    remote_status: Mapped[str | None] = mapped_column(String(40))
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime] = mapped_column(default=utc_now, index=True)
    finished_at: Mapped[datetime | None] = mapped_column()


class FeedDestinationItem(Base):
    """What a destination last acknowledged for an item: the content hash (and, for
    Stripe, a separate stock hash) that decide what the next incremental run sends."""

    __tablename__ = "feed_destination_items"

    destination: Mapped[str] = mapped_column(String(40), primary_key=True)
    item_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    stock_hash: Mapped[str | None] = mapped_column(String(64))
    pushed_at: Mapped[datetime] = mapped_column(default=utc_now)
