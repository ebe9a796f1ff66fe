"""UCP ``attribution`` (a flat map of URL-style parameters) → touches for the video
attribution ledger.

* ``rc_video`` / ``video_id``, else ``rc_link`` (a shoppable link's code), else
  ``utm_content`` → ``creative_id``; it becomes the touch's ``video_id`` when it names a
  known video or link (else kept and flagged unknown);
* ``utm_source`` (else the platform's host) → ``publisher_id``, provider ``ucp:<source>``;
* ``utm_campaign`` → ``campaign_id``; ``utm_medium`` → ``sub_id``;
* ``rc_click`` (the click id our shoppable link put on the URL) joins that very click;
  else the first click id (``gclid``, ``gbraid``, ``wbraid``, ``dclid``, ``fbclid``, ``ttclid``,
  ``msclkid``, ``yclid``) → ``token_fingerprint`` (SHA-256; the raw id is not in the ledger);
* ``landing_url`` / ``url`` → ``source_url`` (a video is also matched by its URL).

The map on create is the first touch, the one on complete the last touch (first valid
claim of each wins, as for ACP). The map itself is kept with the session and echoed on the
order (order.md ``attribution``). Values carrying personal data are refused (400).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from attribution import touches
from attribution.schemas import AttributionClaim
from models.errors import AppError
from protocols.ucp.errors import invalid

CLICK_IDS = ("rc_click", "gclid", "gbraid", "wbraid", "dclid", "fbclid", "ttclid", "msclkid",
             "yclid")


def to_claim(attribution: dict[str, str], platform_host: str, touchpoint: str
             ) -> AttributionClaim:
    source = attribution.get("utm_source") or platform_host or "ucp"
    video = attribution.get("rc_video") or attribution.get("video_id") \
        or attribution.get("rc_link") or attribution.get("utm_content")
    click = next((attribution[k] for k in CLICK_IDS if attribution.get(k)), None)
    return AttributionClaim(
        touchpoint=touchpoint, provider=f"ucp:{source}"[:200], publisher_id=source,
        campaign_id=attribution.get("utm_campaign") or None, creative_id=video or None,
        sub_id=attribution.get("utm_medium") or None, token=click or None,
        source_url=attribution.get("landing_url") or attribution.get("url") or None)


async def record(db: AsyncSession, session_id: str, attribution: dict[str, str] | None,
                 touchpoint: str, platform_host: str, at: datetime) -> None:
    if not attribution:
        return
    try:
        claim = touches.accept(to_claim(attribution, platform_host, touchpoint),
                               "$.attribution")
    except AppError as exc:
        raise invalid("attribution must not carry personal data or malformed values.",
                      "$.attribution", code=exc.code) from None
    if claim is not None:
        await touches.record_claim(db, session_id, claim, at, channel="ucp")
