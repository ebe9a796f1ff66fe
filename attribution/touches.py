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
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from attribution.schemas import AttributionClaim
from links import repository as link_repository
from links.service import LINK_REF, visitor_hash
from models import AttributionTouch, Video
from models.base import new_id
from models.errors import InvalidRequest
from models.statuses import TouchType

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")
# A run of digits written the way phone numbers are: an optional "+", digits, and the
# separators people put in them (spaces, dots, hyphens, parentheses).
_DIGIT_RUN = re.compile(r"\+?\(?\d[\d\s().-]*")
# The run continues an identifier (``vid_123…``, ``abc123…``, ``drop-123…``, ``v1.123…``).
_GLUED = re.compile(r"(?:\w|\w[-._])$")
_DECIMAL = re.compile(r"\d+\.\d+")
_SEPARATORS = " \t\r\n.-("
E164_MAX_DIGITS = 15
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
    # The token or creative_id when shaped like a shoppable-link code or click id
    # (``rc_click``): public values from our own URLs, looked up, never stored unless found.
    link_refs: tuple[str, ...] = ()


def looks_like_phone(value: str) -> bool:
    """A phone number in ``value``: ``+`` and at least 7 digits (E.164, any separators);
    9 or more digits in groups (``(415) 555-0100``, ``020 7946 0958``); or a bare run of
    9 to 15 digits (E.164's longest). Not digits that continue an identifier, a bare run
    longer than any phone number (platform ids such as TikTok's 19 digits), a time
    (``… 12:30``) or a decimal amount."""
    for match in _DIGIT_RUN.finditer(value):
        run = match.group().rstrip(_SEPARATORS)
        start = match.start()
        after = value[start + len(run):start + len(run) + 1]
        if _GLUED.search(value[max(0, start - 2):start]):  # its first word is an identifier's
            run = run[len(run.split(None, 1)[0]):]
        if after and (after.isalnum() or after in ":_"):  # its last word: an identifier's, a time
            run = run[:len(run) - len(run.rsplit(None, 1)[-1])] if run.strip() else ""
        run = run.strip(_SEPARATORS.replace("(", ""))
        digits = sum(c.isdigit() for c in run)
        if run.startswith("+"):
            if digits >= 7:
                return True
        elif not run.isdigit():
            if digits >= 9 and not _DECIMAL.fullmatch(run):
                return True
        elif 9 <= digits <= E164_MAX_DIGITS:
            return True
    return False


def _has_pii(value: str) -> bool:
    return bool(_EMAIL.search(value)) or looks_like_phone(value)


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
        # A number too: 4155550100 is the same phone number as "4155550100".
        if isinstance(meta, str | int) and not isinstance(meta, bool) and _has_pii(str(meta)):
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
        metadata=claim.metadata,
        link_refs=tuple(dict.fromkeys(v for v in (token, claim.creative_id)
                                      if v and LINK_REF.match(v))))


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


@dataclass(frozen=True, slots=True)
class LinkJoin:
    """A claim or web journey joined to a shoppable link: the link's video, the click (its
    time becomes the touch's time) and the visitor whose other touches then count."""

    video_id: str
    link_code: str | None
    click_id: str | None
    visitor: str | None
    at: datetime | None
    touch_type: str


async def join_link(db: AsyncSession, refs: tuple[str, ...]) -> LinkJoin | None:
    """The first ref naming a click (``clk_…``) or a link code."""
    for ref in refs:
        if ref.startswith("clk_"):
            found = await link_repository.click(db, ref)
            if found is not None and found.kind == TouchType.click:
                return LinkJoin(found.video_id, found.link_code, found.id, found.visitor,
                                found.touched_at, TouchType.click)
            continue
        link = await link_repository.get_link(db, ref)
        if link is not None:
            return LinkJoin(link.video_id, link.code, None, None, None, TouchType.click)
    return None


async def join_visitor(db: AsyncSession, raw_visitor: str, at: datetime) -> LinkJoin | None:
    """A web journey carrying the visitor cookie (``rc_visitor``): its latest click, else
    its latest view. The ledger later weighs all of the visitor's touches."""
    visitor = visitor_hash(raw_visitor)
    latest = await link_repository.latest_visitor_touch(db, visitor, before=at)
    if latest is None:
        return LinkJoin("", None, None, visitor, None, TouchType.click)
    return LinkJoin(latest.video_id, latest.link_code,
                    latest.id if latest.kind == TouchType.click else None, visitor,
                    latest.touched_at, latest.kind)


async def _insert_once(db: AsyncSession, values: dict[str, Any]) -> None:
    insert = pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
    await db.execute(insert(AttributionTouch).values(**values).on_conflict_do_nothing(
        index_elements=["checkout_session_id", "touchpoint"]))


async def record_claim(db: AsyncSession, session_id: str, claim: Claim, at: datetime,
                       channel: str = "acp_affiliate") -> None:
    """A claim naming a shoppable link (its code or a click id as ``token`` or
    ``creative_id``) is a click-through on the link's video; any other claim an
    ``agent_claim`` on the video it names."""
    joined = await join_link(db, claim.link_refs) if claim.link_refs else None
    if joined is not None:
        await _insert_once(db, {
            "id": new_id("tch"), "checkout_session_id": session_id,
            "touchpoint": claim.touchpoint, "channel": channel, "provider": claim.provider,
            "publisher_id": claim.publisher_id, "campaign_id": claim.campaign_id,
            "creative_id": None if claim.creative_id in (joined.link_code, joined.click_id)
            else claim.creative_id,
            "sub_id": claim.sub_id, "source_url": claim.source_url,
            "token_fingerprint": claim.token_fingerprint, "metadata": claim.metadata,
            "video_id": joined.video_id, "video_known": True, "touched_at": joined.at or at,
            "touch_type": joined.touch_type, "link_code": joined.link_code,
            "click_id": joined.click_id, "visitor": joined.visitor})
        return
    video_id, known = await _resolve_video(db, claim.creative_id, claim.source_url)
    await _insert_once(db, {"touch_type": TouchType.agent_claim,
        "id": new_id("tch"), "checkout_session_id": session_id,
        "touchpoint": claim.touchpoint, "channel": channel,
        "provider": claim.provider, "publisher_id": claim.publisher_id,
        "campaign_id": claim.campaign_id, "creative_id": claim.creative_id,
        "sub_id": claim.sub_id, "source_url": claim.source_url,
        "token_fingerprint": claim.token_fingerprint, "metadata": claim.metadata,
        "video_id": video_id, "video_known": known, "touched_at": at})


# Metadata keys a web checkout passes for attribution only: read by ``record_web_touch``,
# never kept on the session (so never stored, echoed, sent in a webhook or logged).
# ``rc_visitor`` is the raw first-party visitor cookie; its touches keep its SHA-256.
PRIVATE_METADATA_KEYS = frozenset({"rc_visitor"})


def stored_metadata(metadata: dict[str, Any] | None) -> dict[str, Any] | None:
    """The session metadata to keep: ``metadata`` without the attribution-only keys."""
    if not metadata or PRIVATE_METADATA_KEYS.isdisjoint(metadata):
        return metadata
    kept = {k: v for k, v in metadata.items() if k not in PRIVATE_METADATA_KEYS}
    return kept or None


async def record_web_touch(db: AsyncSession, session_id: str, metadata: dict[str, Any] | None,
                           at: datetime) -> None:
    """A buyer who landed through a video link: the feed URL's video/campaign parameter is
    carried into the session's ``metadata`` (``video_id``, ``campaign``); a shoppable
    link's ``rc_click`` / ``rc_link``, or the visitor cookie ``rc_visitor``, join its
    clicks and pixel views."""
    if not metadata:
        return
    refs = tuple(v for v in (metadata.get("rc_click"), metadata.get("rc_link"))
                 if isinstance(v, str) and LINK_REF.match(v))
    joined = await join_link(db, refs) if refs else None
    raw_visitor = metadata.get("rc_visitor")
    if isinstance(raw_visitor, str) and 16 <= len(raw_visitor) <= 64:
        if joined is None:
            joined = await join_visitor(db, raw_visitor, at)
        elif joined.visitor is None:
            joined = replace(joined, visitor=visitor_hash(raw_visitor))
    if joined is not None and (joined.video_id or joined.visitor):
        campaign = metadata.get("campaign")
        await _insert_once(db, {
            "id": new_id("tch"), "checkout_session_id": session_id, "touchpoint": "web",
            "channel": "web", "campaign_id": campaign if isinstance(campaign, str) else None,
            "video_id": joined.video_id or None, "video_known": bool(joined.video_id),
            "touched_at": joined.at or at, "touch_type": joined.touch_type,
            "link_code": joined.link_code, "click_id": joined.click_id,
            "visitor": joined.visitor})
        return
    video = metadata.get("video_id") or metadata.get("rc_video")
    if not isinstance(video, str) or not video or len(video) > 100:
        return
    video_id, known = await _resolve_video(db, video, None)
    campaign = metadata.get("campaign")
    await _insert_once(db, {
        "id": new_id("tch"), "checkout_session_id": session_id, "touchpoint": "web",
        "channel": "web", "campaign_id": campaign if isinstance(campaign, str) else None,
        "video_id": video_id, "video_known": known, "touched_at": at,
        "touch_type": TouchType.click})
