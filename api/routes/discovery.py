"""``/.well-known/acp.json`` (RFC 8615), public and cacheable."""

from __future__ import annotations

import orjson
from fastapi import APIRouter
from starlette.responses import Response

from api.deps import RuntimeDep
from protocols.acp import discovery as acp_discovery

router = APIRouter(tags=["discovery"])


@router.get("/.well-known/acp.json", response_class=Response, operation_id="discovery")
async def discovery(runtime: RuntimeDep) -> Response:
    document = acp_discovery.document(runtime.profile, runtime.settings.public_base_url)
    return Response(orjson.dumps(document), media_type="application/json",
                    headers={"Cache-Control": "public, max-age=3600"})
