"""``create_app()``: the FastAPI application, wired from a ``Runtime``."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.staticfiles import StaticFiles
from fastapi.telemetry import TelemetryConfig
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from api.dashboard import creatives as dashboard_creatives
from api.dashboard import funnel as dashboard_funnel
from api.dashboard import payouts as dashboard_payouts
from api.dashboard import routes as dashboard_routes
from api.deps import AGENT_BEARER_SCHEME
from api.errors import install_error_handlers
from api.logs import configure_logging
from api.mcp_endpoint import mcp_endpoint
from api.middleware import BodyLimitMiddleware, RequestContextMiddleware
from api.routes import (
    agents,
    checkout_sessions,
    commissions,
    discovery,
    etsy_webhooks,
    feeds,
    finance,
    health,
    links,
    order_status,
    orders,
    videos,
    webhooks,
)
from api.routes import creatives as creatives_routes
from api.routes import ucp as ucp_routes
from api.runtime import Runtime, build_runtime, settle_heap
from api.settings import Settings, get_settings
from api.worker import run_forever
from models.migrate import upgrade_async
from protocols.acp import schemas as acp_schemas
from protocols.acp.versions import SUPPORTED_VERSIONS
from protocols.mcp.server import PATH as MCP_PATH

log = logging.getLogger("reelcart")

ERROR_SCHEMA = {
    "type": "object",
    "required": ["type", "code", "message"],
    "properties": {
        "type": {"type": "string",
                 "enum": ["invalid_request", "processing_error", "service_unavailable"]},
        "code": {"type": "string"},
        "message": {"type": "string"},
        "param": {"type": "string", "description": "JSONPath of the offending field"},
        "supported_versions": {"type": "array", "items": {"type": "string"}},
    },
}


def create_app(runtime: Runtime | None = None, settings: Settings | None = None) -> FastAPI:
    """Build the app. Tests pass a ready ``runtime``; ``reelcart serve`` lets it build one."""
    settings = runtime.settings if runtime else (settings or get_settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = app.state.runtime is None
        if own:
            if settings.run_migrations_on_start:
                await upgrade_async(settings.database_url)
            app.state.runtime = build_runtime(settings, long_running=True)
        await app.state.runtime.ensure_dev_agent()
        await app.state.runtime.ensure_configured_user()
        stop = asyncio.Event()
        worker = None
        background = asyncio.create_task(app.state.runtime.run_background(stop))
        if own and settings.run_worker_in_process:
            worker = asyncio.create_task(run_forever(app.state.runtime, stop))
        if own:
            settle_heap()  # start-up objects leave the collector's view (issue 16 tails)
        log.info("reelcart started", extra={"payments_provider": settings.payments_provider})
        try:
            async with mcp.run():
                yield
        finally:
            stop.set()
            if worker is not None:
                await worker
            await background
            if own:
                await app.state.runtime.close()
            log.info("reelcart stopped")

    app = FastAPI(
        title="ReelCart",
        version="0.1.0",
        summary="Agentic Commerce Protocol (2026-04-17) merchant backend",
        lifespan=lifespan,
        docs_url=None,  # our own /docs below: Swagger UI without inline script
        redoc_url=None,
        telemetry=None if opentelemetry_configured() else NO_TELEMETRY,
    )
    app.state.runtime = runtime
    mcp = mcp_endpoint()
    install_error_handlers(app)
    # The agent checkout API first: routers are matched in order, and each router passed
    # over costs a match of its routes on every request. No other router's paths overlap
    # it (and the API reference now opens with it).
    app.include_router(checkout_sessions.router)
    app.include_router(health.router)
    app.include_router(discovery.router)
    app.include_router(ucp_routes.router)
    app.include_router(checkout_sessions.router, prefix="/acp", include_in_schema=False)
    app.include_router(orders.router)
    app.include_router(agents.router)
    app.include_router(order_status.router)
    app.include_router(feeds.router)
    app.include_router(videos.router)
    app.include_router(links.router)
    app.include_router(finance.router)
    app.include_router(commissions.router)
    app.include_router(dashboard_routes.router)
    app.include_router(dashboard_payouts.router)
    app.include_router(dashboard_funnel.router)
    app.include_router(dashboard_payouts.shared_router)
    app.include_router(creatives_routes.router)
    app.include_router(dashboard_creatives.router)
    app.include_router(etsy_webhooks.router)
    app.add_exception_handler(StarletteHTTPException, dashboard_routes.not_found)
    app.add_exception_handler(dashboard_routes.LoginRequired, _to_login)
    app.add_exception_handler(dashboard_routes.CsrfRejected, _csrf_rejected)
    app.include_router(webhooks.router)
    app.router.routes.append(Route(MCP_PATH, mcp, methods=["GET", "POST", "DELETE"],
                                   include_in_schema=False))
    app.router.routes[:0] = links.PUBLIC_ROUTES  # first: the redirect is the hottest path
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_api_route(f"{DOCS_ASSETS}/redoc.standalone.js", _redoc_bundle,
                      include_in_schema=False, methods=["GET"])
    app.mount(DOCS_ASSETS, StaticFiles(directory=DOCS_ASSET_DIR), name="docs-assets")
    app.add_api_route("/docs", _docs, include_in_schema=False, methods=["GET"])
    app.add_api_route("/redoc", _redoc, include_in_schema=False, methods=["GET"])
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_request_bytes)
    app.add_middleware(RequestContextMiddleware)  # outermost: ids, headers, log, metrics

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, summary=app.summary,
                                 routes=app.routes)
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components["Error"] = ERROR_SCHEMA
            components.update(acp_schemas.openapi_components())
            _document_required_headers(schema)
            _document_errors(schema)
            schema["components"].setdefault("securitySchemes", {})["AgentBearer"] = (
                AGENT_BEARER_SCHEME)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


# FastAPI's native OpenTelemetry asks the three global OTel providers on every request
# whether one was configured (~1% of a checkout create). None is, unless the operator
# sets OpenTelemetry up through its standard environment (``OTEL_*`` variables, or
# FastAPI's ``FASTAPI_OTEL_AUTO_CONFIGURE``): then FastAPI's defaults apply unchanged.
NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False,
                                  "auto_configure": False}


def opentelemetry_configured() -> bool:
    return any(name.startswith("OTEL_") or name == "FASTAPI_OTEL_AUTO_CONFIGURE"
               for name in os.environ)


def _document_required_headers(schema: dict[str, Any]) -> None:
    """The server refuses a request without ``API-Version`` (agent API) or, on a POST,
    without ``Idempotency-Key``: say so, so clients and fuzzers send them. The headers are
    read by shared dependencies, which cannot tell FastAPI per method."""
    for operations in schema.get("paths", {}).values():
        for method, operation in operations.items():
            params = []
            for param in operation.get("parameters", []):
                if param.get("in") == "header" and param["name"] == "Idempotency-Key":
                    if method != "post":
                        continue  # GETs take none
                    param = {**param, "required": True}
                    param["schema"] = {**param.get("schema", {}), "type": "string",
                                       "minLength": 1, "maxLength": 255}
                    param["schema"].pop("anyOf", None)
                elif param.get("in") == "header" and param["name"] == "API-Version":
                    param = {**param, "required": True,
                             "schema": {"type": "string", "enum": SUPPORTED_VERSIONS}}
                params.append(param)
            if "parameters" in operation:
                operation["parameters"] = params


UCP_ERROR_SCHEMA = {
    "description": "UCP: the spec's error_response, or {code, content} for protocol errors",
    "anyOf": [
        {"type": "object", "required": ["ucp", "messages"], "properties": {
            "ucp": {"type": "object"},
            "messages": {"type": "array", "items": {"type": "object", "required": [
                "type", "code", "content"], "properties": {
                "type": {"type": "string"}, "code": {"type": "string"},
                "content": {"type": "string"}, "severity": {"type": "string"},
                "path": {"type": "string", "description": "JSONPath of the offending field"},
            }}},
            "continue_url": {"type": "string"}}},
        {"type": "object", "required": ["code", "content"], "properties": {
            "code": {"type": "string"}, "content": {"type": "string"}}},
    ],
}


def _error_response(description: str, ref: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}}


def _document_errors(schema: dict[str, Any]) -> None:
    """Say what the service answers: request validation is a 400 in the protocol's error
    shape (``api.errors``), never FastAPI's 422 ``HTTPValidationError``. A 422 stays only
    where one is really sent: an Idempotency-Key reused with a different body (a POST
    behind the idempotency guard; ACP 2026-04-17's status for it)."""
    components = schema["components"]["schemas"]
    components["UcpError"] = UCP_ERROR_SCHEMA
    for path, operations in schema.get("paths", {}).items():
        ref = "UcpError" if path.startswith("/ucp/") else "Error"
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            guarded = method == "post" and any(
                p.get("in") == "header" and p.get("name") == "Idempotency-Key"
                for p in operation.get("parameters", []))
            validated = responses.pop("422", None) is not None or "requestBody" in operation \
                or (path.startswith("/ucp/") and method in ("post", "put"))
            if validated or guarded:
                responses.setdefault("400", _error_response(
                    "Invalid request: bad JSON, a missing or invalid field (param names it)",
                    ref))
            if operation.get("security"):
                responses.setdefault("401", _error_response(
                    "Missing, unknown or revoked API key, or a key of the other kind", ref))
            if guarded:
                responses["422"] = _error_response(
                    "Idempotency-Key reused with a different request body", ref)
    text = str(schema.get("paths"))
    for name in ("HTTPValidationError", "ValidationError"):
        if f"#/components/schemas/{name}'" not in text:
            components.pop(name, None)


STATIC_DIR = Path(__file__).resolve().parent / "static"
# Swagger UI and ReDoc from the fastapi-offline package (MIT; it ships swagger-ui-dist's
# bundle and CSS and ReDoc's standalone bundle): /docs and /redoc work without a network.
DOCS_ASSET_DIR = Path(fastapi_offline.__file__).resolve().parent / "static"
DOCS_ASSETS = "/docs-assets"
DOCS_PAGE = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ReelCart API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="{DOCS_ASSETS}/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="{DOCS_ASSETS}/swagger-ui-bundle.js"></script>
<script src="/static/swagger-init.js"></script></body></html>"""
REDOC_PAGE = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ReelCart API reference</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/static/redoc.css"></head>
<body><redoc spec-url="/openapi.json"></redoc>
<script src="{DOCS_ASSETS}/redoc.standalone.js"></script></body></html>"""
# Same-origin only. Both UIs are React apps that set element styles at run time (and
# ReDoc injects its styled-components <style> tags), so styles allow 'unsafe-inline';
# scripts stay 'self' only. ReDoc's search runs in a worker it builds from a blob: URL.
DOCS_CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
            "base-uri 'none'; object-src 'none'; form-action 'self'; frame-ancestors 'none'")
REDOC_CSP = DOCS_CSP.replace("connect-src 'self';", "connect-src 'self'; worker-src blob:;")


async def _docs() -> Response:
    """Swagger UI from the installed package, started by a static script."""
    return HTMLResponse(DOCS_PAGE, headers={"Content-Security-Policy": DOCS_CSP})


# The one thing ReDoc fetches from elsewhere is its sidebar logo (an <img> of a CDN URL,
# unconditional in 2.x/3.x); an inline empty SVG takes its place, so /redoc makes no
# outside request and the CSP has nothing to refuse.
REDOC_LOGO = b"https://cdn.redoc.ly/redoc/logo-mini.svg"
EMPTY_SVG = b"data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg'/%3E"


@functools.cache
def _redoc_bundle_bytes() -> bytes:
    return (DOCS_ASSET_DIR / "redoc.standalone.js").read_bytes().replace(REDOC_LOGO, EMPTY_SVG)


async def _redoc_bundle() -> Response:
    return Response(_redoc_bundle_bytes(), media_type="text/javascript",
                    headers={"Cache-Control": "public, max-age=86400"})


async def _redoc() -> Response:
    """ReDoc from the installed package (it starts itself on the <redoc> element)."""
    return HTMLResponse(REDOC_PAGE, headers={"Content-Security-Policy": REDOC_CSP})


async def _to_login(_request: Request, _exc: Exception) -> Response:
    return RedirectResponse("/dashboard/login", status_code=303)


async def _csrf_rejected(_request: Request, _exc: Exception) -> Response:
    return HTMLResponse("<h1>Forbidden</h1><p>The form was missing its security token. "
                        "Reload the page and try again.</p>", status_code=403)


def app_factory() -> FastAPI:
    """Entry point for ``uvicorn --factory api.app:app_factory`` (used by ``reelcart serve``)."""
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    return create_app(settings=settings)
