"""ACP ``affiliate_attribution`` → the neutral ``AttributionClaim`` (structure only: the
domain checks lengths, refuses personal data and keeps just the token's fingerprint).
Unknown providers and unknown fields are fine."""

from __future__ import annotations

from typing import Any

from attribution.schemas import AttributionClaim
from models.errors import InvalidRequest

PARAM = "$.affiliate_attribution"
_STRING_FIELDS = ("provider", "token", "publisher_id", "campaign_id", "creative_id", "sub_id")


def _invalid(message: str, param: str) -> InvalidRequest:
    return InvalidRequest(message, code="invalid_type", param=param)


def claim(raw: Any, touchpoint: str) -> AttributionClaim | None:
    """400 ``invalid_type`` for a malformed object."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise _invalid("affiliate_attribution must be an object.", PARAM)
    for name in _STRING_FIELDS:
        value = raw.get(name)
        if value is not None and not isinstance(value, str):
            raise _invalid(f"{name} must be a string.", f"{PARAM}.{name}")
    if not raw.get("provider"):
        raise _invalid("provider is required.", f"{PARAM}.provider")
    if not raw.get("token") and not raw.get("publisher_id"):
        raise _invalid("token or publisher_id is required.", f"{PARAM}.publisher_id")
    metadata = raw.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict) or len(metadata) > 50:
            raise _invalid("metadata must be a flat object.", f"{PARAM}.metadata")
        for key, value in metadata.items():
            if not isinstance(value, str | int | float | bool):
                raise _invalid("metadata values must be strings, numbers or booleans.",
                               f"{PARAM}.metadata.{key}")
    source = raw.get("source")
    source_url = None
    if source is not None:
        if not isinstance(source, dict) or source.get("type") not in ("url", "platform",
                                                                      "unknown"):
            raise _invalid("source.type must be url, platform or unknown.", f"{PARAM}.source")
        url = source.get("url")
        if url is not None and not isinstance(url, str):
            raise _invalid("source.url must be a string.", f"{PARAM}.source.url")
        source_url = url
    return AttributionClaim(
        touchpoint=touchpoint, provider=raw["provider"], token=raw.get("token") or None,
        publisher_id=raw.get("publisher_id"), campaign_id=raw.get("campaign_id"),
        creative_id=raw.get("creative_id"), sub_id=raw.get("sub_id"), source_url=source_url,
        metadata=metadata)
