from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utc_now


class Video(Base):
    """A generated short video (Sora, Veo, …) that features products and drives sales."""

    __tablename__ = "videos"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    title: Mapped[str | None] = mapped_column(String(300))
    generator: Mapped[str | None] = mapped_column(String(64), index=True)  # sora-2, veo-3 …
    prompt: Mapped[str | None] = mapped_column(Text)
    source_url: Mapped[str | None] = mapped_column(String(2000))
    thumbnail_url: Mapped[str | None] = mapped_column(String(2000))
    duration_seconds: Mapped[int | None] = mapped_column(Integer)
    platform: Mapped[str | None] = mapped_column(String(64))  # tiktok, youtube, instagram …
    published_url: Mapped[str | None] = mapped_column(String(2000), index=True)
    published_at: Mapped[datetime | None] = mapped_column()
    campaign: Mapped[str | None] = mapped_column(String(200), index=True)
    creator: Mapped[str | None] = mapped_column(String(200), index=True)
    # Remix lineage: a video remixed from another keeps a pointer to its parent.
    parent_video_id: Mapped[str | None] = mapped_column(
        ForeignKey("videos.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now)


class VideoProduct(Base):
    """A product (optionally one variant) featured in a video."""

    __tablename__ = "video_products"

    video_id: Mapped[str] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"),
                                          primary_key=True)
    product_id: Mapped[str] = mapped_column(String(200), primary_key=True, index=True)
    variant_id: Mapped[str | None] = mapped_column(String(200))


class VideoViewCount(Base):
    """Views a platform reported for a video on one day (UTC), one row per source.

    Imports are idempotent per (video, day, source): a re-import replaces the count.
    Sources are platform names (``tiktok``, ``youtube`` …) or ``pixel`` for impressions
    counted on pages the merchant hosts.
    """

    __tablename__ = "video_view_counts"

    video_id: Mapped[str] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"),
                                          primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True, index=True)
    source: Mapped[str] = mapped_column(String(32), primary_key=True)
    views: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now)
