"""UCP REST binding (checkout-rest.md, order-rest.md) and discovery. Thin: identify the
platform, parse, call one service method, answer in UCP's shapes."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from api.deps import RuntimeDep
from api.runtime import Runtime
from fulfillment.service import ship_manually
from idempotency.canonical import request_hash
from idempotency.service import Claim, ClaimingHandler, IdempotentCall, Outcome
from models.errors import AppError
from orders import repository as order_repository
from protocols.acp.errors import json_path
from protocols.ucp.errors import UcpError, from_core, invalid
from protocols.ucp.negotiation import Platform, check_version, parse_agent_header
from protocols.ucp.schemas import CheckoutIn, CompleteIn
from protocols.ucp.service import agent_id_for
from protocols.ucp.signing import verify_request

router = APIRouter(tags=["ucp"])
Handler = Callable[[AsyncSession], Awaitable[dict[str, Any]]]


def _ucp_errors(handler: Handler) -> Handler:
    """Core errors in UCP's shape (inside the transaction, so they are stored as such)."""
    async def wrapped(db: AsyncSession) -> dict[str, Any]:
        try:
            return await handler(db)
        except AppError as exc:
            raise from_core(exc) from None
    return wrapped


async def _no_claim(db: AsyncSession) -> None:
    return None
SessionId = Annotated[str, Path(max_length=200)]
JSON = "application/json"


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, headers=headers, media_type=JSON)


def _error(exc: AppError) -> Response:
    err = from_core(exc)
    return _json(err.status_code, err.body(), err.headers)


class UcpCall:
    def __init__(self, runtime: Runtime, platform: Platform, request: Request, body: bytes
                 ) -> None:
        self.runtime = runtime
        self.platform = platform
        self.request = request
        self.body = body
        self.service = runtime.ucp.service

    def parse(self, model: type[BaseModel]) -> Any:
        try:
            raw = orjson.loads(self.body or b"{}")
        except orjson.JSONDecodeError:
            raise invalid("The request body is not valid JSON.", code="invalid_json") from None
        try:
            return model.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise invalid(f"{json_path(tuple(first['loc']))}: {first['msg']}",
                          json_path(tuple(first["loc"]))) from None

    async def write(self, handler: Handler, *, status_code: int = 200, atomic: bool = False
                    ) -> Response:
        """Idempotent when the platform sends ``Idempotency-Key`` (same key + same body →
        the stored answer; same key + another body → 409)."""
        wrapped = _ucp_errors(handler)
        return await self._write(
            lambda call: call.run(wrapped, status_code=status_code, atomic=atomic),
            wrapped, status_code)

    async def write_claiming(self, handler: ClaimingHandler) -> Response:
        """As ``write``, for complete: the handler claims the key in its first transaction,
        with the recovery point (``IdempotentCall.run_claiming``)."""
        async def claiming(db: AsyncSession, claim: Claim) -> dict[str, Any]:
            try:
                return await handler(db, claim)
            except AppError as exc:
                raise from_core(exc) from None

        return await self._write(lambda call: call.run_claiming(claiming),
                                 lambda db: claiming(db, _no_claim), 200)

    async def _write(self, guarded: Callable[[IdempotentCall], Awaitable[Outcome]],
                     wrapped: Handler, status_code: int) -> Response:
        key = self.request.headers.get("idempotency-key")
        settings = self.runtime.settings
        try:
            if key is None:
                async with self.runtime.sessionmaker() as db:
                    async with db.begin():
                        payload = await wrapped(db)
                        status = getattr(payload, "status_code", status_code)
                return _json(status, payload)
            if not key.strip() or len(key) > 255:
                raise UcpError(400, "invalid_idempotency_key",
                               "Idempotency-Key must be 1-255 characters.")
            call = IdempotentCall(
                sessionmaker=self.runtime.sessionmaker,
                principal=f"ucp:{agent_id_for(self.platform)}",
                path=f"{self.request.method} {self.request.url.path}", key=key,
                body_hash=request_hash(self.body or b"{}"),
                retention=timedelta(hours=settings.idempotency_retention_hours),
                lock=timedelta(seconds=settings.idempotency_lock_seconds),
                conflict_status=409, render_error=lambda exc: from_core(exc).body())
            outcome = await guarded(call)
            return Response(outcome.body, status_code=outcome.status, headers=outcome.headers,
                            media_type=JSON)
        except ValueError:
            return _error(invalid("The request body is not valid JSON.", code="invalid_json"))
        except AppError as exc:
            return _error(exc)

    async def read(self, handler: Handler) -> Response:
        try:
            async with self.runtime.read_sessionmaker() as db:
                return _json(200, await handler(db))
        except AppError as exc:
            return _error(exc)


async def ucp_call(request: Request, runtime: RuntimeDep) -> UcpCall:
    url, version = parse_agent_header(request.headers.get("ucp-agent"))
    check_version(version)
    platform = await runtime.ucp.resolver.resolve(url)
    body = await request.body()
    if "signature-input" in request.headers:
        # A signed request (RFC 9421) is verified with the platform's published keys;
        # unsigned requests are accepted (UCP lets businesses choose their authentication).
        problem = verify_request(method=request.method, url=str(request.url),
                                 headers=dict(request.headers), body=body,
                                 jwks=list(platform.signing_keys))
        if problem is not None:
            code, reason = problem
            raise UcpError(400 if code in ("digest_mismatch", "algorithm_unsupported")
                           else 401, code, reason)
    return UcpCall(runtime, platform, request, body)


async def _ucp_call_or_error(request: Request, runtime: RuntimeDep) -> UcpCall | Response:
    try:
        return await ucp_call(request, runtime)
    except UcpError as exc:
        return _json(exc.status_code, exc.body(), exc.headers)


CallDep = Annotated[UcpCall | Response, Depends(_ucp_call_or_error)]


@router.get("/.well-known/ucp", response_class=Response, operation_id="ucpDiscovery")
async def discovery(runtime: RuntimeDep) -> Response:
    """The business profile (no negotiation: discovery is public)."""
    return _json(200, runtime.ucp.profile.document(),
                 {"Cache-Control": "public, max-age=300"})


@router.post("/ucp/checkout-sessions", response_class=Response, status_code=201,
             operation_id="ucpCreateCheckout")
async def create_checkout(call: CallDep) -> Response:
    if isinstance(call, Response):
        return call
    try:
        body = call.parse(CheckoutIn)
    except UcpError as exc:
        return _error(exc)
    return await call.write(lambda db: call.service.create(db, call.platform, body),
                            status_code=201)


@router.get("/ucp/checkout-sessions/{checkout_id}", response_class=Response,
            operation_id="ucpGetCheckout")
async def get_checkout(checkout_id: SessionId, call: CallDep) -> Response:
    if isinstance(call, Response):
        return call
    return await call.read(lambda db: call.service.get(db, call.platform, checkout_id))


@router.put("/ucp/checkout-sessions/{checkout_id}", response_class=Response,
            operation_id="ucpUpdateCheckout")
async def update_checkout(checkout_id: SessionId, call: CallDep) -> Response:
    if isinstance(call, Response):
        return call
    try:
        body = call.parse(CheckoutIn)
    except UcpError as exc:
        return _error(exc)
    return await call.write(lambda db: call.service.update(db, call.platform, checkout_id,
                                                           body))


@router.post("/ucp/checkout-sessions/{checkout_id}/complete", response_class=Response,
             operation_id="ucpCompleteCheckout")
async def complete_checkout(checkout_id: SessionId, call: CallDep) -> Response:
    if isinstance(call, Response):
        return call
    try:
        body = call.parse(CompleteIn)
    except UcpError as exc:
        return _error(exc)
    sessionmaker = call.runtime.sessionmaker
    return await call.write_claiming(lambda db, claim: call.service.complete(
        sessionmaker, db, call.platform, checkout_id, body, claim=claim))


@router.post("/ucp/checkout-sessions/{checkout_id}/cancel", response_class=Response,
             operation_id="ucpCancelCheckout")
async def cancel_checkout(checkout_id: SessionId, call: CallDep) -> Response:
    if isinstance(call, Response):
        return call
    return await call.write(lambda db: call.service.cancel(db, call.platform, checkout_id))


@router.get("/ucp/orders/{order_id}", response_class=Response, operation_id="ucpGetOrder")
async def get_order(order_id: SessionId, call: CallDep) -> Response:
    if isinstance(call, Response):
        return call
    return await call.read(lambda db: call.service.get_order(db, call.platform, order_id))


@router.post("/testing/simulate-shipping/{order_id}", response_class=Response,
             include_in_schema=False)
async def simulate_shipping(order_id: SessionId, request: Request, runtime: RuntimeDep
                            ) -> Response:
    """Test-only (the conformance suite's hook): ships an order as a merchant would. Exists
    only when ``REELCART_UCP_SIMULATION_SECRET`` is set; the ``Simulation-Secret`` header
    must match it."""
    secret = runtime.settings.ucp_simulation_secret
    if secret is None:
        return _json(404, {"code": "not_found", "content": "Not found."})
    given = request.headers.get("simulation-secret", "")
    if not hmac.compare_digest(given.encode(), secret.get_secret_value().encode()):
        return _json(403, {"code": "forbidden", "content": "Simulation-Secret is wrong."})
    async with runtime.sessionmaker() as db, db.begin():
        order = await order_repository.lock_order(db, order_id)
        if order is None:
            return _json(404, {"code": "not_found", "content": f"Order {order_id!r} not found."})
        try:
            await ship_manually(db, order, carrier="Simulated Carrier",
                                tracking_number=f"SIM-{order.order_number}",
                                tracking_url=None, line_items=None, actor="simulation")
        except AppError as exc:
            return _json(409, {"code": exc.code, "content": exc.message})
        try:
            body = await runtime.ucp.service.get_order(db, None, order_id)
        except UcpError:  # an order placed through another protocol
            body = {"id": order_id, "status": "shipped"}
    return _json(200, body)


@router.put("/ucp/orders/{order_id}", response_class=Response, include_in_schema=False)
async def update_order(order_id: SessionId) -> Response:
    """The 2026-04-08 REST binding defines only GET for orders: the business is the source
    of truth and pushes changes to the platform as signed webhooks."""
    return _json(405, {"code": "method_not_allowed", "content": "Orders are read-only over "
                       "UCP (GET only); changes are sent to the platform as webhooks."},
                 {"Allow": "GET"})
