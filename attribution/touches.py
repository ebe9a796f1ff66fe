"""Capturing touches: ACP ``affiliate_attribution`` (first touch on create, last touch on
complete) and web journeys (a video parameter carried into the session).

Write-only and never blocking: a claim is validated (structure, no PII: RFC §7), stored
once per session and touchpoint (the first valid claim wins), and never echoed. The
token itself is never stored or logged, only a fingerprint for correlation.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from models import AttributionTouch, Video
from models.base import new_id
from models.errors import InvalidRequest

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")
_PHONE = re.compile(r"(?:\+?\d[\s().-]?){9,}")
_STRING_FIELDS = ("provider", "token", "publisher_id", "campaign_id", "creative_id", "sub_id")


@dataclass(frozen=True, slots=True)
class Claim:
    touchpoint: str
    provider: str
    token_fingerprint: str | None
    publisher_id: str | None
    campaign_id: str | None
    creative_id: str | None
    sub_id: str | None
    source_url: str | None
    metadata: dict[str, Any] | None


def _invalid(message: str, param: str) -> InvalidRequest:
    return InvalidRequest(message, code="invalid_type", param=param)


def _has_pii(value: str) -> bool:
    return bool(_EMAIL.search(value) or _PHONE.search(value))


def parse_claim(raw: Any, touchpoint: str) -> Claim | None:
    """Validate an ``affiliate_attribution`` object (400 ``invalid_type`` /
    ``pii_not_allowed``). Unknown providers and unknown fields are fine."""
    if raw is None:
        return None
    base = "$.affiliate_attribution"
    if not isinstance(raw, dict):
        raise _invalid("affiliate_attribution must be an object.", base)
    for name in _STRING_FIELDS:
        value = raw.get(name)
        if value is not None and (not isinstance(value, str) or len(value) > 2000):
            raise _invalid(f"{name} must be a string.", f"{base}.{name}")
    if not raw.get("provider"):
        raise _invalid("provider is required.", f"{base}.provider")
    if not raw.get("token") and not raw.get("publisher_id"):
        raise _invalid("token or publisher_id is required.", f"{base}.publisher_id")
    metadata = raw.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict) or len(metadata) > 50:
            raise _invalid("metadata must be a flat object.", f"{base}.metadata")
        for key, value in metadata.items():
            if not isinstance(value, str | int | float | bool) or isinstance(value, dict):
                raise _invalid("metadata values must be strings, numbers or booleans.",
                               f"{base}.metadata.{key}")
            if isinstance(value, str) and _has_pii(value):
                raise InvalidRequest("Attribution metadata must not carry personal data.",
                                     code="pii_not_allowed", param=f"{base}.metadata.{key}")
    for name in ("publisher_id", "campaign_id", "creative_id", "sub_id"):
        value = raw.get(name)
        if isinstance(value, str) and _has_pii(value):
            raise InvalidRequest("Attribution fields must not carry personal data.",
                                 code="pii_not_allowed", param=f"{base}.{name}")
    source = raw.get("source")
    source_url = None
    if source is not None:
        if not isinstance(source, dict) or source.get("type") not in ("url", "platform",
                                                                      "unknown"):
            raise _invalid("source.type must be url, platform or unknown.", f"{base}.source")
        url = source.get("url")
        if url is not None and (not isinstance(url, str) or len(url) > 2000):
            raise _invalid("source.url must be a string.", f"{base}.source.url")
        source_url = url
    token = raw.get("token")
    return Claim(
        touchpoint=touchpoint, provider=raw["provider"][:200],
        token_fingerprint=hashlib.sha256(token.encode()).hexdigest() if token else None,
        publisher_id=raw.get("publisher_id"), campaign_id=raw.get("campaign_id"),
        creative_id=raw.get("creative_id"), sub_id=raw.get("sub_id"), source_url=source_url,
        metadata=metadata)


async def _resolve_video(db: AsyncSession, creative_id: str | None, url: str | None
                         ) -> tuple[str | None, bool]:
    """The video a claim names: by id (``creative_id``), else by a known video URL."""
    if creative_id and await db.get(Video, creative_id) is not None:
        return creative_id, True
    if url:
        found = await db.scalar(select(Video.id).where(
            or_(Video.published_url == url, Video.source_url == url)).limit(1))
        if found:
            return found, True
    return (creative_id or None), False  # kept and flagged, not dropped


async def _insert_once(db: AsyncSession, values: dict[str, Any]) -> None:
    insert = pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
    await db.execute(insert(AttributionTouch).values(**values).on_conflict_do_nothing(
        index_elements=["checkout_session_id", "touchpoint"]))


async def record_claim(db: AsyncSession, session_id: str, claim: Claim, at: datetime,
                       channel: str = "acp_affiliate") -> None:
    video_id, known = await _resolve_video(db, claim.creative_id, claim.source_url)
    await _insert_once(db, {
        "id": new_id("tch"), "checkout_session_id": session_id,
        "touchpoint": claim.touchpoint, "channel": channel,
        "provider": claim.provider, "publisher_id": claim.publisher_id,
        "campaign_id": claim.campaign_id, "creative_id": claim.creative_id,
        "sub_id": claim.sub_id, "source_url": claim.source_url,
        "token_fingerprint": claim.token_fingerprint, "metadata": claim.metadata,
        "video_id": video_id, "video_known": known, "touched_at": at})


async def record_web_touch(db: AsyncSession, session_id: str, metadata: dict[str, Any] | None,
                           at: datetime) -> None:
    """A buyer who landed through a video link: the feed URL's video/campaign parameter is
    carried into the session's ``metadata`` (``video_id``, ``campaign``)."""
    if not metadata:
        return
    video = metadata.get("video_id") or metadata.get("rc_video")
    if not isinstance(video, str) or not video or len(video) > 100:
        return
    video_id, known = await _resolve_video(db, video, None)
    campaign = metadata.get("campaign")
    await _insert_once(db, {
        "id": new_id("tch"), "checkout_session_id": session_id, "touchpoint": "web",
        "channel": "web", "campaign_id": campaign if isinstance(campaign, str) else None,
        "video_id": video_id, "video_known": known, "touched_at": at})
