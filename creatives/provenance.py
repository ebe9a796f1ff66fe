"""Provenance of a video's file and consent of the people appearing in it.

Registering a file: the bytes come from the merchant (upload, CLI) or from a URL fetched
with the outbound-policy client (:func:`fetch_video`, outside any transaction); the C2PA
library reads them in a worker thread (:func:`inspect`); :func:`record` stores the result
in the request's transaction. A video without Content Credentials stays allowed, flagged.
"""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
from dataclasses import dataclass
from typing import IO, Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from attribution.errors import VideoNotFound
from creatives import repository
from creatives.c2pa_reader import Credentials, UnreadableMedia, read_credentials
from creatives.errors import ConsentNotFound, ProvenanceFetchFailed, ProvenanceUnreadable
from creatives.schemas import ConsentIn
from models import Video, VideoConsent, VideoProvenance
from models.base import new_id, rfc3339, utc_now
from models.creative import ProvenanceStatus

FLAGGED = frozenset({ProvenanceStatus.missing, ProvenanceStatus.invalid})
SPOOL_BYTES = 8 * 1024 * 1024  # bigger files spill to a temporary file


@dataclass(frozen=True)
class Inspected:
    credentials: Credentials
    sha256: str
    size: int


def spooled() -> IO[bytes]:
    return tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115


async def fetch_video(http: httpx.AsyncClient, url: str, *, max_bytes: int) -> IO[bytes]:
    """GET the file through the outbound-policy client (no redirects), at most
    ``max_bytes``; never inside a database transaction."""
    out = spooled()
    try:
        async with http.stream("GET", url) as response:
            if response.status_code != 200:
                raise ProvenanceFetchFailed(
                    f"Fetching the video answered HTTP {response.status_code}.",
                    param="$.url")
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise ProvenanceFetchFailed(
                        f"The video is larger than {max_bytes} bytes.", param="$.url")
                out.write(chunk)
    except httpx.HTTPError as exc:
        out.close()
        raise ProvenanceFetchFailed(f"The video could not be fetched: {exc}.",
                                    param="$.url") from None
    except ProvenanceFetchFailed:
        out.close()
        raise
    out.seek(0)
    return out


def _inspect_sync(stream: IO[bytes], content_type: str, trust_anchors_pem: str | None
                  ) -> Inspected:
    digest = hashlib.sha256()
    size = 0
    stream.seek(0)
    while chunk := stream.read(1024 * 1024):
        digest.update(chunk)
        size += len(chunk)
    try:
        credentials = read_credentials(stream, content_type,
                                       trust_anchors_pem=trust_anchors_pem)
    except UnreadableMedia as exc:
        raise ProvenanceUnreadable(f"The file is not a readable {content_type}: {exc}") \
            from None
    return Inspected(credentials, digest.hexdigest(), size)


async def inspect(stream: IO[bytes], content_type: str, *, trust_anchors_pem: str | None
                  ) -> Inspected:
    return await asyncio.to_thread(_inspect_sync, stream, content_type, trust_anchors_pem)


async def record(db: AsyncSession, video_id: str, inspected: Inspected, *, source: str,
                 source_url: str | None = None) -> dict[str, Any]:
    """Store (or replace) what the file's credentials say; fills the video's generator
    when the merchant left it empty."""
    video = await db.get(Video, video_id, with_for_update=True)
    if video is None:
        raise VideoNotFound(video_id)
    c = inspected.credentials
    values: dict[str, Any] = {
        "status": c.status, "ai_generated": c.ai_generated,
        "digital_source_type": c.digital_source_type, "generator": c.generator,
        "model": c.model, "content_created_at": c.created_at, "signer": c.signer,
        "signed_at": c.signed_at, "manifest_label": c.manifest_label,
        "validation_codes": list(c.validation_codes), "content_sha256": inspected.sha256,
        "content_bytes": inspected.size, "source": source, "source_url": source_url,
        "checked_at": utc_now()}
    existing = await db.get(VideoProvenance, video_id, with_for_update=True)
    if existing is None:
        db.add(VideoProvenance(video_id=video_id, **values))
    else:
        for key, value in values.items():
            setattr(existing, key, value)
    if not video.generator and c.model and c.status not in FLAGGED:
        video.generator = c.model[:64]
    await db.flush()
    return await get_provenance(db, video_id)


def flags(record: VideoProvenance | None) -> list[str]:
    if record is None:
        return ["not_checked"]
    return {ProvenanceStatus.missing: ["no_content_credentials"],
            ProvenanceStatus.invalid: ["invalid_content_credentials"],
            ProvenanceStatus.valid: ["signer_not_on_trust_list"]}.get(
                ProvenanceStatus(record.status), [])


def provenance_json(video_id: str, record: VideoProvenance | None,
                    consents: list[VideoConsent]) -> dict[str, Any]:
    def iso(value: Any) -> str | None:
        return rfc3339(value) if value else None

    out: dict[str, Any] = {"video_id": video_id,
                           "status": record.status if record else "not_checked",
                           "flagged": record is None or record.status in FLAGGED,
                           "flags": flags(record)}
    if record is not None:
        out.update({
            "ai_generated": record.ai_generated,
            "ai_label": "AI-generated" if record.ai_generated else None,
            "digital_source_type": record.digital_source_type,
            "generator": record.generator, "model": record.model,
            "created_at": iso(record.content_created_at), "signer": record.signer,
            "signed_at": iso(record.signed_at), "manifest_label": record.manifest_label,
            "validation_codes": record.validation_codes,
            "content_sha256": record.content_sha256, "content_bytes": record.content_bytes,
            "source": record.source, "source_url": record.source_url,
            "checked_at": iso(record.checked_at)})
    out["consents"] = [consent_json(c) for c in consents]
    return out


def consent_json(consent: VideoConsent) -> dict[str, Any]:
    return {"id": consent.id, "video_id": consent.video_id, "person": consent.person,
            "kind": consent.kind, "consent_reference": consent.consent_reference,
            "scope": consent.scope,
            "granted_on": consent.granted_on.isoformat() if consent.granted_on else None,
            "expires_on": consent.expires_on.isoformat() if consent.expires_on else None,
            "revoked_at": rfc3339(consent.revoked_at) if consent.revoked_at else None,
            "active": consent.revoked_at is None and (
                consent.expires_on is None or consent.expires_on >= utc_now().date())}


async def _video(db: AsyncSession, video_id: str) -> Video:
    video = await db.get(Video, video_id)
    if video is None:
        raise VideoNotFound(video_id)
    return video


async def get_provenance(db: AsyncSession, video_id: str) -> dict[str, Any]:
    await _video(db, video_id)
    record = await db.get(VideoProvenance, video_id)
    consents = (await repository.consents_of(db, [video_id]))[video_id]
    return provenance_json(video_id, record, consents)


async def add_consent(db: AsyncSession, video_id: str, data: ConsentIn) -> dict[str, Any]:
    await _video(db, video_id)
    consent = VideoConsent(id=new_id("cns"), video_id=video_id, person=data.person,
                           kind=data.kind, consent_reference=data.consent_reference,
                           scope=list(dict.fromkeys(data.scope)), granted_on=data.granted_on,
                           expires_on=data.expires_on, created_at=utc_now())
    db.add(consent)
    await db.flush()
    return consent_json(consent)


async def revoke_consent(db: AsyncSession, video_id: str, consent_id: str) -> dict[str, Any]:
    consent = await db.get(VideoConsent, consent_id, with_for_update=True)
    if consent is None or consent.video_id != video_id:
        raise ConsentNotFound(consent_id)
    if consent.revoked_at is None:
        consent.revoked_at = utc_now()
        await db.flush()
    return consent_json(consent)


async def provenance_list(db: AsyncSession, *, flagged_only: bool, limit: int, offset: int
                          ) -> dict[str, Any]:
    rows = await repository.provenance_page(db, flagged_only=flagged_only, limit=limit,
                                            offset=offset)
    consents = await repository.consents_of(db, [video.id for video, _ in rows])
    return {"data": [provenance_json(video.id, record, consents[video.id]) | {
        "title": video.title} for video, record in rows], "limit": limit, "offset": offset}
