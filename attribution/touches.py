"""Capturing touches: attribution claims (first touch on create, last touch on complete)
and web journeys (a video parameter carried into the session).

Protocol bindings turn their wire shape (ACP ``affiliate_attribution``, UCP
``attribution``) into a neutral ``AttributionClaim``; here it is checked (lengths, no PII:
RFC §7), stored once per session and touchpoint (the first valid claim wins), and never
echoed. The token itself is never stored or logged, only a fingerprint for correlation.
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

from attribution.schemas import AttributionClaim
from models import AttributionTouch, Video
from models.base import new_id
from models.errors import InvalidRequest

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")
_PHONE = re.compile(r"(?:\+?\d[\s().-]?){9,}")
MAX_FIELD = 2000


@dataclass(frozen=True, slots=True)
class Claim:
    """An accepted claim, as stored (the token reduced to its fingerprint)."""

    touchpoint: str
    provider: str
    token_fingerprint: str | None
    publisher_id: str | None
    campaign_id: str | None
    creative_id: str | None
    sub_id: str | None
    source_url: str | None
    metadata: dict[str, Any] | None


def _has_pii(value: str) -> bool:
    return bool(_EMAIL.search(value) or _PHONE.search(value))


def accept(claim: AttributionClaim | None, param: str) -> Claim | None:
    """Check a neutral claim (400 ``invalid_type`` for an over-long value,
    ``pii_not_allowed`` for personal data); ``param`` is the claim's JSONPath in the
    binding's request, for errors."""
    if claim is None:
        return None
    fields = (("provider", claim.provider), ("token", claim.token),
              ("publisher_id", claim.publisher_id), ("campaign_id", claim.campaign_id),
              ("creative_id", claim.creative_id), ("sub_id", claim.sub_id),
              ("source.url", claim.source_url))
    for name, value in fields:
        if value is not None and len(value) > MAX_FIELD:
            raise InvalidRequest(f"{name} must be a string.", code="invalid_type",
                                 param=f"{param}.{name}")
    for key, meta in (claim.metadata or {}).items():
        if isinstance(meta, str) and _has_pii(meta):
            raise InvalidRequest("Attribution metadata must not carry personal data.",
                                 code="pii_not_allowed", param=f"{param}.metadata.{key}")
    for name, value in fields[2:6]:
        if value is not None and _has_pii(value):
            raise InvalidRequest("Attribution fields must not carry personal data.",
                                 code="pii_not_allowed", param=f"{param}.{name}")
    token = claim.token
    return Claim(
        touchpoint=claim.touchpoint, provider=claim.provider[:200],
        token_fingerprint=hashlib.sha256(token.encode()).hexdigest() if token else None,
        publisher_id=claim.publisher_id, campaign_id=claim.campaign_id,
        creative_id=claim.creative_id, sub_id=claim.sub_id, source_url=claim.source_url,
        metadata=claim.metadata)


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
