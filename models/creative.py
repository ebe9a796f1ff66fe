"""Creative experiments, the product's promoted video, provenance (C2PA) and likeness consent.

``FeaturedVideo`` is read by every place that picks "the product's video" (feeds, MCP
catalog results, Etsy): :func:`promoted_first` is an ORDER BY key that puts the video the
merchant promoted for a product ahead of the others, leaving the existing order (newest
first) for the rest.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Date,
    ForeignKey,
    Integer,
    String,
    case,
    exists,
)
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utc_now


class ExperimentStatus(StrEnum):
    running = "running"
    concluded = "concluded"  # a video was promoted


class ExperimentMetric(StrEnum):
    conversion = "conversion"  # orders per view
    revenue = "revenue"  # revenue per 1,000 views


class ProvenanceStatus(StrEnum):
    trusted = "trusted"  # valid Content Credentials signed by a trusted certificate
    valid = "valid"  # valid signature and binding; signer not on the trust list
    invalid = "invalid"  # a manifest that fails validation (tampered, bad signature)
    missing = "missing"  # no Content Credentials at all


class Experiment(Base):
    """Videos promoting the same product, compared on views → orders."""

    __tablename__ = "creative_experiments"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    product_id: Mapped[str] = mapped_column(String(200), index=True)
    status: Mapped[str] = mapped_column(String(16), default=ExperimentStatus.running)
    metric: Mapped[str] = mapped_column(String(16), default=ExperimentMetric.conversion)
    attribution_model: Mapped[str] = mapped_column(String(32))
    currency: Mapped[str] = mapped_column(String(3))
    view_source: Mapped[str | None] = mapped_column(String(32))  # None: every source
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date | None] = mapped_column(Date)
    min_views: Mapped[int] = mapped_column(Integer)  # per variant
    min_orders: Mapped[int] = mapped_column(Integer)  # over all variants
    threshold_bp: Mapped[int] = mapped_column(Integer)  # P(best) in basis points (9500)
    winner_video_id: Mapped[str | None] = mapped_column(String(100))
    promoted_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class ExperimentVariant(Base):
    __tablename__ = "creative_experiment_variants"

    experiment_id: Mapped[str] = mapped_column(
        ForeignKey("creative_experiments.id", ondelete="CASCADE"), primary_key=True)
    video_id: Mapped[str] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"),
                                          primary_key=True, index=True)
    position: Mapped[int] = mapped_column(Integer)


class FeaturedVideo(Base):
    """The video the merchant promoted for a product (the winner of an experiment)."""

    __tablename__ = "featured_videos"

    product_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    video_id: Mapped[str] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"),
                                          index=True)
    experiment_id: Mapped[str | None] = mapped_column(String(64))
    promoted_at: Mapped[datetime] = mapped_column(default=utc_now)


def promoted_first(product_id: Any, video_id: Any) -> ColumnElement[int]:
    """ORDER BY key: 0 for the video promoted for the product, 1 for any other."""
    promoted = exists().where(FeaturedVideo.product_id == product_id,
                              FeaturedVideo.video_id == video_id)
    return case((promoted, 0), else_=1)


class VideoProvenance(Base):
    """What the video file's C2PA Content Credentials say (or that it has none)."""

    __tablename__ = "video_provenance"

    video_id: Mapped[str] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"),
                                          primary_key=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    ai_generated: Mapped[bool | None] = mapped_column(Boolean)
    digital_source_type: Mapped[str | None] = mapped_column(String(200))
    generator: Mapped[str | None] = mapped_column(String(200))  # claim generator
    model: Mapped[str | None] = mapped_column(String(200))  # the generating software agent
    content_created_at: Mapped[datetime | None] = mapped_column()
    signer: Mapped[str | None] = mapped_column(String(300))
    signed_at: Mapped[datetime | None] = mapped_column()
    manifest_label: Mapped[str | None] = mapped_column(String(300))
    validation_codes: Mapped[list[Any]] = mapped_column(default=list)
    content_sha256: Mapped[str] = mapped_column(String(64))
    content_bytes: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(16))  # upload | url | file
    source_url: Mapped[str | None] = mapped_column(String(2000))
    checked_at: Mapped[datetime] = mapped_column(default=utc_now)


class VideoConsent(Base):
    """Consent of a person whose likeness (cameo, face, voice) appears in a video."""

    __tablename__ = "video_consents"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    video_id: Mapped[str] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"),
                                          index=True)
    person: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))  # cameo | likeness | voice
    consent_reference: Mapped[str] = mapped_column(String(300))
    scope: Mapped[list[Any]] = mapped_column(default=list)
    granted_on: Mapped[date | None] = mapped_column(Date)
    expires_on: Mapped[date | None] = mapped_column(Date)
    revoked_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
