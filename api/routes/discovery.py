"""``/.well-known/acp.json`` (RFC 8615), public and cacheable. No merchant ids or keys."""

from __future__ import annotations

import orjson
from fastapi import APIRouter
from starlette.responses import Response

from api.deps import SUPPORTED_VERSIONS, RuntimeDep
from checkout.service import API_VERSION

router = APIRouter(tags=["discovery"])


@router.get("/.well-known/acp.json", response_class=Response, operation_id="discovery")
async def discovery(runtime: RuntimeDep) -> Response:
    profile = runtime.profile
    document = {
        "protocol": {
            "name": "acp",
            "version": API_VERSION,
            "supported_versions": list(reversed(SUPPORTED_VERSIONS)),  # oldest first here
        },
        "api_base_url": runtime.settings.public_base_url.rstrip("/") + "/acp",
        "transports": ["rest", "mcp"],  # MCP at /mcp (URL given out of band)
        "capabilities": {
            "services": ["checkout", "orders"],
            "intervention_types": ["3ds"],
            "supported_currencies": profile.currencies,
            "supported_locales": profile.locales,
        },
    }
    return Response(orjson.dumps(document), media_type="application/json",
                    headers={"Cache-Control": "public, max-age=3600"})
