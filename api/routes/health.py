from __future__ import annotations

import hmac

import orjson
from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from starlette.responses import Response

from api.deps import RuntimeDep
from models.errors import Unauthorized

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_class=Response)
async def healthz() -> Response:
    """The process is up (liveness)."""
    return Response(b'{"status":"ok"}', media_type="application/json")


@router.get("/readyz", response_class=Response)
async def readyz(runtime: RuntimeDep) -> Response:
    """The database answers (readiness): take the instance out of rotation otherwise."""
    try:
        async with runtime.read_engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:  # any failure means "not ready", and says why
        return Response(orjson.dumps({"status": "unavailable", "database": type(exc).__name__}),
                        status_code=503, media_type="application/json")
    return Response(b'{"status":"ready","database":"ok"}', media_type="application/json")


@router.get("/metrics", response_class=Response, include_in_schema=False)
async def metrics(request: Request, runtime: RuntimeDep) -> Response:
    """Prometheus metrics; behind ``Authorization: Bearer <REELCART_METRICS_TOKEN>`` when
    that is set."""
    token = runtime.settings.metrics_token
    if token is not None:
        sent = request.headers.get("authorization", "")
        expected = f"Bearer {token.get_secret_value()}"
        if not hmac.compare_digest(sent.encode(), expected.encode()):
            raise Unauthorized("A valid bearer token is required for /metrics.")
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
