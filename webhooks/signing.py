"""ACP order-webhook signatures (merchant → agent), Stripe-style:

    Merchant-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, f"{t}." + body)>
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time

_HEADER = re.compile(r"^t=(\d+),v1=([a-fA-F0-9]{64})$")


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify(secret: str, body: bytes, header: str, *, tolerance: int = 300,
           now: int | None = None) -> bool:
    match = _HEADER.match(header.strip())
    if not match:
        return False
    t, mac = int(match.group(1)), match.group(2).lower()
    if abs((int(time.time()) if now is None else now) - t) > tolerance:
        return False
    expected = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, mac)
