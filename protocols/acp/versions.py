"""``API-Version`` negotiation for ACP."""

from __future__ import annotations

from models.errors import InvalidRequest
from protocols.acp.render import VERSION as CURRENT

SUPPORTED_VERSIONS = [CURRENT]  # newest first (ACP Error.supported_versions)


def check(value: str | None) -> str:
    """The version a request asked for, or 400 ``missing``/``unsupported_api_version``."""
    if value is None or not value.strip():
        raise InvalidRequest("The API-Version header is required.",
                             code="missing_api_version", param="API-Version",
                             extra={"supported_versions": SUPPORTED_VERSIONS})
    version = value.strip()
    if version not in SUPPORTED_VERSIONS:
        raise InvalidRequest(f"API-Version {value[:40]!r} is not supported.",
                             code="unsupported_api_version", param="API-Version",
                             extra={"supported_versions": SUPPORTED_VERSIONS})
    return version
