"""Agent request signatures: ``Signature`` + ``Timestamp`` headers (ACP §1.3).

ACP leaves the algorithm to be agreed out of band. Ours, documented in the README:

    signed = f"{Timestamp}." + canonical_json(body)     # "" for an empty body
    Signature = base64url(HMAC-SHA256(agent_signing_secret, signed)), unpadded

``canonical_json`` sorts keys, uses compact separators and UTF-8, so the agent and we
agree on the bytes whatever their serializer did with whitespace or key order.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime

from idempotency.canonical import canonical_json, request_hash

__all__ = ["canonical_json", "parse_timestamp", "request_hash", "sign", "verify"]


def parse_timestamp(value: str) -> datetime | None:
    value = value.strip()
    try:
        if value.isdigit():
            return datetime.fromtimestamp(int(value), UTC)
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (ValueError, OverflowError):
        return None
    return parsed if parsed.tzinfo else None


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + canonical_json(body),
                   hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def verify(secret: str, signature: str, timestamp: str, body: bytes, *, now: datetime,
           max_skew_seconds: int) -> str | None:
    """Return ``None`` when valid, else a short reason (for the error and the log)."""
    ts = parse_timestamp(timestamp)
    if ts is None:
        return "Timestamp is not RFC 3339 or unix seconds"
    if abs((now - ts).total_seconds()) > max_skew_seconds:
        return "Timestamp is outside the allowed clock skew"
    try:
        expected = sign(secret, timestamp, body)
    except ValueError:
        return "body is not JSON"
    if not hmac.compare_digest(expected, signature.strip().rstrip("=")):
        return "Signature does not match"
    return None
