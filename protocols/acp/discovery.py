"""The ACP discovery document (``/.well-known/acp.json``, RFC 8615). No merchant ids or
keys: it is public."""

from __future__ import annotations

from typing import Any

from checkout.profile import MerchantProfile
from protocols.acp.versions import CURRENT, SUPPORTED_VERSIONS


def document(profile: MerchantProfile, public_base_url: str) -> dict[str, Any]:
    return {
        "protocol": {
            "name": "acp",
            "version": CURRENT,
            "supported_versions": list(reversed(SUPPORTED_VERSIONS)),  # oldest first here
        },
        "api_base_url": public_base_url.rstrip("/") + "/acp",
        "transports": ["rest"],
        "capabilities": {
            "services": ["checkout", "orders"],
            "intervention_types": ["3ds"],
            "supported_currencies": profile.currencies,
            "supported_locales": profile.locales,
        },
    }
