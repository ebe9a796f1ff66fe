from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from models import Video
from models.urls import HttpUrlStr


class FeaturedProduct(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product_id: str = Field(min_length=1, max_length=200)
    variant_id: str | None = Field(default=None, max_length=200)


class VideoIn(BaseModel):
    """A generated video as the merchant (or their tooling) describes it."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:\-]+$")
    title: str | None = Field(default=None, max_length=300)
    generator: str | None = Field(default=None, max_length=64, examples=["sora-2", "veo-3"])
    prompt: str | None = Field(default=None, max_length=10_000)
    source_url: HttpUrlStr | None = None
    thumbnail_url: HttpUrlStr | None = None
    duration_seconds: int | None = Field(default=None, ge=0, le=36_000)
    platform: str | None = Field(default=None, max_length=64)
    published_url: HttpUrlStr | None = None
    published_at: AwareDatetime | None = None
    campaign: str | None = Field(default=None, max_length=200)
    creator: str | None = Field(default=None, max_length=200)
    parent_video_id: str | None = Field(default=None, min_length=1, max_length=100,
                                        pattern=r"^[A-Za-z0-9._:\-]+$")
    products: list[FeaturedProduct] = Field(default_factory=list, max_length=200)


def video_json(video: Video, products: list[tuple[str, str | None]]) -> dict[str, object]:
    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "id": video.id, "title": video.title, "generator": video.generator,
        "prompt": video.prompt, "source_url": video.source_url,
        "thumbnail_url": video.thumbnail_url, "duration_seconds": video.duration_seconds,
        "platform": video.platform, "published_url": video.published_url,
        "published_at": iso(video.published_at), "campaign": video.campaign,
        "creator": video.creator, "parent_video_id": video.parent_video_id,
        "products": [{"product_id": p, "variant_id": v} for p, v in products],
    }


@dataclass(frozen=True, slots=True)
class AttributionClaim:
    """A protocol-neutral attribution claim, as a binding hands it to the domain (ACP
    ``affiliate_attribution``, UCP ``attribution``). ``touchpoint`` is ``first`` (on
    create) or ``last`` (on complete). ``token`` is transient: the domain keeps only its
    fingerprint. Bindings check the structure; the domain checks lengths and refuses PII."""

    touchpoint: str
    provider: str
    token: str | None = None
    publisher_id: str | None = None
    campaign_id: str | None = None
    creative_id: str | None = None  # names a video when it is a known video id
    sub_id: str | None = None
    source_url: str | None = None
    metadata: dict[str, str | int | float | bool] | None = None
