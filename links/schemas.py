from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from models import ShoppableLink
from models.urls import HttpUrlStr

CHANNEL_PATTERN = r"^[a-z0-9][a-z0-9_.\-]{0,31}$"
CODE_PATTERN = r"^[A-Za-z0-9]{6,16}$"
VIDEO_ID_PATTERN = r"^[A-Za-z0-9._:\-]+$"  # as videos' ids
PRODUCT_ID_PATTERN = r"^[^\x00-\x1f\x7f]+$"  # printable


class LinkIn(BaseModel):
    """One shoppable link per (video, product, channel); creating it again returns the same
    code (and sets the destination given)."""

    model_config = ConfigDict(extra="forbid")

    video_id: str = Field(min_length=1, max_length=100, pattern=VIDEO_ID_PATTERN)
    product_id: str = Field(min_length=1, max_length=200, pattern=PRODUCT_ID_PATTERN)
    channel: str = Field(pattern=CHANNEL_PATTERN, examples=["tiktok", "youtube", "openai"],
                         description="Where the link is posted (tiktok, youtube, instagram, "
                         "web…); the feed channels are acp, openai and google.")
    destination_url: HttpUrlStr | None = Field(
        default=None, description="Where the link leads instead of the product page, e.g. "
        "a ChatGPT or Gemini deep link (absolute http(s), public host).")


@dataclass(frozen=True, slots=True)
class LinkTarget:
    """What the redirect needs, read in one query."""

    code: str
    video_id: str
    channel: str
    destination: str | None  # the link's own destination, else the product's URL
    campaign: str | None


def link_url(public_base_url: str, code: str) -> str:
    return f"{public_base_url.rstrip('/')}/v/{code}"


def link_json(link: ShoppableLink, public_base_url: str) -> dict[str, object]:
    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {"code": link.code, "url": link_url(public_base_url, link.code),
            "pixel_url": f"{link_url(public_base_url, link.code)}/i.gif",
            "video_id": link.video_id, "product_id": link.product_id,
            "channel": link.channel, "destination_url": link.destination_url,
            "created_at": iso(link.created_at)}
