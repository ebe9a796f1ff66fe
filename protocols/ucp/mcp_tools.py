"""UCP checkout over MCP (checkout-mcp.md): ``create_checkout``, ``get_checkout``,
``update_checkout``, ``complete_checkout``, ``cancel_checkout`` on the merchant's ``/mcp``,
and the order capability's ``get_order`` (order-mcp.md).

A thin transport over the same binding code as the REST routes: ``meta["ucp-agent"]`` is
the ``UCP-Agent`` header (the platform profile is resolved and negotiated by the same
``ProfileResolver``), ``id`` the path parameter, ``checkout`` the body; each tool calls the
same ``UcpCheckoutService`` method with the same idempotency scope as its REST route
(principal = the platform, path = the REST method and path, hash of the checkout), so a
session is one session over REST and MCP and an idempotency key means the same on both.
``get_order`` is ``GET /ucp/orders/{id}``: the platform's own orders only.

Results (overview.md "Error Handling", MCP column): a checkout or order, or an ``error_response``
(business outcome, ``isError``), as ``structuredContent`` plus the same JSON as text.
Protocol errors are JSON-RPC errors with ``{code, content}`` in ``data``: ``-32001`` for
discovery/negotiation, ``-32600`` for malformed signatures, ``-32603`` for server errors,
``-32000`` otherwise (401/403/409/429/503; ``retry_after`` in ``data`` when known).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson
from jsonschema.exceptions import best_match
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from idempotency.canonical import request_hash
from idempotency.service import Claim, ClaimingHandler, IdempotentCall
from models.errors import AppError
from protocols.acp.errors import json_path
from protocols.ucp import mcp_schemas
from protocols.ucp.errors import UcpError, from_core, invalid
from protocols.ucp.negotiation import Platform, ProfileResolver, check_version
from protocols.ucp.schemas import CheckoutIn, CompleteIn
from protocols.ucp.service import UcpCheckoutService, agent_id_for

Json = dict[str, Any]
Handler = Callable[[AsyncSession], Awaitable[Json]]


@dataclass(frozen=True, slots=True)
class Claiming:
    """A handler that claims the idempotency key in its first transaction (complete)."""

    run: ClaimingHandler
TOOLS = mcp_schemas.TOOLS
MAX_ID_LENGTH = 200
DISCOVERY_ERROR = -32001
PROTOCOL_ERROR = -32000
INVALID_REQUEST = -32600
INTERNAL_ERROR = -32603
DISCOVERY_CODES = frozenset({"invalid_profile_url", "profile_unreachable",
                             "profile_malformed", "version_unsupported"})

_AGENT = ('"meta": {"ucp-agent": {"profile": "https://platform.example/profile.json"}, '
          '"idempotency-key": "550e8400-e29b-41d4-a716-446655440000"}')
DESCRIPTIONS = {
    "create_checkout": (
        "UCP: start a checkout session. meta[\"ucp-agent\"].profile is your platform's UCP "
        "profile URL (capabilities are negotiated from it). checkout.line_items name items "
        "with quantities; add fulfillment.methods (shipping destination), buyer and "
        "discounts.codes as known. Returns the checkout (status, totals in minor units, "
        "messages saying what is missing). meta[\"idempotency-key\"] is optional here.\n"
        'Example: {' + _AGENT + ', "checkout": {"line_items": [{"item": {"id": "item_123"}, '
        '"quantity": 1}]}}'),
    "get_checkout": (
        "UCP: read a checkout session by id (status, totals, messages, order once "
        "completed).\n"
        'Example: {"meta": {"ucp-agent": {"profile": "https://…"}}, "id": "…"}'),
    "update_checkout": (
        "UCP: replace the checkout's line_items and set fulfillment (destination, "
        "selected option per group), buyer or discounts. Returns the full checkout.\n"
        'Example: {"meta": {"ucp-agent": {"profile": "https://…"}}, "id": "…", "checkout": '
        '{"line_items": [{"item": {"id": "item_123"}, "quantity": 2}]}}'),
    "complete_checkout": (
        "UCP: pay and place the order once status is ready_for_complete. "
        "checkout.payment.instruments carries the credential from one of the business's "
        "payment_handlers. meta[\"idempotency-key\"] is required; retry with the same key "
        "and arguments: it never charges twice.\n"
        'Example: {' + _AGENT + ', "id": "…", "checkout": {"payment": {"instruments": '
        '[{"id": "instr_1", "handler_id": "…", "type": "card", "credential": '
        '{"type": "token", "token": "…"}}]}}}'),
    "cancel_checkout": (
        "UCP: cancel a checkout session that is not completed. meta[\"idempotency-key\"] "
        "is required.\nExample: {" + _AGENT + ', "id": "…"}'),
    "get_order": (
        "UCP: the current state of an order placed through this platform's checkout "
        "(line items with fulfilled quantities, fulfillment expectations and events, "
        "adjustments, totals; permalink_url is the authoritative order page).\n"
        'Example: {"meta": {"ucp-agent": {"profile": "https://…"}}, "id": "ord_…"}'),
}
TITLES = {"create_checkout": "Create checkout (UCP)", "get_checkout": "Get checkout (UCP)",
          "update_checkout": "Update checkout (UCP)",
          "complete_checkout": "Complete checkout (UCP, pay)",
          "cancel_checkout": "Cancel checkout (UCP)", "get_order": "Get order (UCP)"}


@dataclass(frozen=True, slots=True)
class UcpTools:
    """What the tools run with; built by the composition root."""

    service: UcpCheckoutService
    resolver: ProfileResolver
    sessionmaker: async_sessionmaker[AsyncSession]
    read_sessionmaker: async_sessionmaker[AsyncSession]
    idempotency_retention: timedelta
    idempotency_lock: timedelta


@dataclass(slots=True)
class ToolResult:
    """A checkout or an ``error_response`` (``is_error``) for ``structuredContent``."""

    body: Json
    is_error: bool = False
    replayed: bool = False


class ToolError(Exception):
    """A UCP protocol error as a JSON-RPC error."""

    def __init__(self, code: int, message: str, data: Json) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


def protocol_error(status: int, body: Json, headers: dict[str, str] | None = None
                   ) -> ToolError:
    code = str(body.get("code", ""))
    if code in DISCOVERY_CODES:
        rpc = DISCOVERY_ERROR
    elif code in ("digest_mismatch", "algorithm_unsupported"):
        rpc = INVALID_REQUEST
    elif status >= 500 and status not in (503,):
        rpc = INTERNAL_ERROR
    else:
        rpc = PROTOCOL_ERROR
    data = dict(body)
    retry = (headers or {}).get("Retry-After") or (headers or {}).get("retry-after")
    if retry is not None and retry.isdigit():
        data["retry_after"] = int(retry)
    return ToolError(rpc, str(body.get("content") or code or "Request failed"), data)


def _is_error_response(body: Json) -> bool:
    ucp = body.get("ucp")
    return isinstance(ucp, dict) and ucp.get("status") == "error" and "messages" in body


def _outcome(status: int, body: Json, headers: dict[str, str] | None = None,
             replayed: bool = False) -> ToolResult:
    """A REST-shaped outcome (status + body) on the MCP wire."""
    if status < 400:
        return ToolResult(body, replayed=replayed)
    if _is_error_response(body):
        return ToolResult(body, is_error=True, replayed=replayed)
    raise protocol_error(status, body, headers)


def _failure(exc: AppError) -> ToolResult:
    err = from_core(exc)
    return _outcome(err.status_code, err.body(), err.headers)


def _parse(model: type[BaseModel], raw: Any) -> Any:
    """As the REST binding parses a body (paths relative to the checkout)."""
    try:
        return model.model_validate(raw if raw is not None else {})
    except ValidationError as exc:
        first = exc.errors()[0]
        raise invalid(f"{json_path(tuple(first['loc']))}: {first['msg']}",
                      json_path(tuple(first["loc"]))) from None


def _schema_problem(name: str, arguments: Json) -> UcpError | None:
    problem = best_match(mcp_schemas.validator(name).iter_errors(arguments))
    if problem is None:
        return None
    path = list(problem.absolute_path)
    if problem.validator == "required" and isinstance(problem.instance, dict):
        missing = next((f for f in problem.validator_value if f not in problem.instance), None)
        if missing is not None:
            path.append(missing)
    if path[:1] == ["checkout"]:  # message paths point into the checkout, as on REST
        where = json_path(tuple(path[1:]))
    else:
        where = json_path(tuple(path))
    code = "missing" if problem.validator == "required" else "invalid"
    return invalid(f"{where}: {problem.message[:300]}", where, code=code)


def _profile(arguments: Json) -> tuple[str, str | None]:
    meta = arguments.get("meta")
    agent = meta.get("ucp-agent") if isinstance(meta, dict) else None
    url = agent.get("profile") if isinstance(agent, dict) else None
    if not isinstance(url, str) or not url:
        raise UcpError(400, "invalid_profile_url",
                       'meta["ucp-agent"].profile (the platform profile URL) is required.')
    version = agent.get("version") if isinstance(agent, dict) else None
    return url, version if isinstance(version, str) else None


def _resource_id(arguments: Json) -> str:
    value = arguments.get("id")
    if not isinstance(value, str) or not value or len(value) > MAX_ID_LENGTH:
        raise invalid(f"id must be a string of 1-{MAX_ID_LENGTH} characters.", "$.id")
    return value


async def call(tools: UcpTools, name: str, arguments: Json) -> ToolResult:
    """Run one UCP tool. Raises ``ToolError`` for protocol errors."""
    try:
        url, version = _profile(arguments)
        check_version(version)
        platform = await tools.resolver.resolve(url)
    except UcpError as exc:
        raise protocol_error(exc.status_code, exc.body(), exc.headers) from None
    try:
        problem = _schema_problem(name, arguments)
        if problem is not None:
            raise problem
        if name == "get_checkout":
            checkout_id = _resource_id(arguments)
            async with tools.read_sessionmaker() as db:
                return ToolResult(await tools.service.get(db, platform, checkout_id))
        if name == "get_order":
            order_id = _resource_id(arguments)
            async with tools.read_sessionmaker() as db:
                return ToolResult(await tools.service.get_order(db, platform, order_id))
        rest_path, handler, status, atomic = _write(tools, platform, name, arguments)
        payload = arguments.get("checkout")
        return await _idempotent(tools, platform, arguments, rest_path, handler, status,
                                 atomic, orjson.dumps(payload) if payload is not None else b"")
    except AppError as exc:
        return _failure(exc)


def _write(tools: UcpTools, platform: Platform, name: str, arguments: Json
           ) -> tuple[str, Handler | Claiming, int, bool]:
    """(REST method + path = idempotency scope, handler, REST status, atomic). Complete's
    handler claims the key itself, in its first transaction (``run_claiming``)."""
    service = tools.service
    raw = arguments.get("checkout")
    if name == "create_checkout":
        create: CheckoutIn = _parse(CheckoutIn, raw)
        return ("POST /ucp/checkout-sessions",
                lambda db: service.create(db, platform, create), 201, False)
    checkout_id = _resource_id(arguments)
    base = f"/ucp/checkout-sessions/{checkout_id}"
    if name == "update_checkout":
        update: CheckoutIn = _parse(CheckoutIn, raw)
        return (f"PUT {base}", lambda db: service.update(db, platform, checkout_id, update),
                200, False)
    if name == "complete_checkout":
        complete: CompleteIn = _parse(CompleteIn, raw)
        sessionmaker = tools.sessionmaker
        return f"POST {base}/complete", Claiming(lambda db, claim: service.complete(
            sessionmaker, db, platform, checkout_id, complete, claim=claim)), 200, False
    if name == "cancel_checkout":
        return (f"POST {base}/cancel", lambda db: service.cancel(db, platform, checkout_id),
                200, False)
    raise invalid(f"Unknown tool {name!r}.", code="unknown_tool")


async def _idempotent(tools: UcpTools, platform: Platform, arguments: Json, rest_path: str,
                      handler: Handler | Claiming, status_code: int, atomic: bool,
                      body: bytes) -> ToolResult:
    """As the REST binding: without a key, one transaction; with one, the shared store
    (same key + same checkout → the stored answer; another checkout → 409)."""
    async def claiming(db: AsyncSession, claim: Claim) -> Json:
        try:
            if isinstance(handler, Claiming):
                return await handler.run(db, claim)
            return await handler(db)
        except AppError as exc:
            raise from_core(exc) from None

    async def wrapped(db: AsyncSession) -> Json:
        return await claiming(db, _no_claim)

    meta = arguments.get("meta") or {}
    key = meta.get("idempotency-key")
    if key is None:
        async with tools.sessionmaker() as db, db.begin():
            payload = await wrapped(db)
        return _outcome(getattr(payload, "status_code", status_code), dict(payload))
    guard = IdempotentCall(
        sessionmaker=tools.sessionmaker, principal=f"ucp:{agent_id_for(platform)}",
        path=rest_path, key=str(key), body_hash=request_hash(body or b"{}"),
        retention=tools.idempotency_retention, lock=tools.idempotency_lock,
        conflict_status=409, render_error=lambda exc: from_core(exc).body())
    stored = await guard.run_claiming(claiming, status_code=status_code) \
        if isinstance(handler, Claiming) else await guard.run(wrapped, status_code=status_code,
                                                  atomic=atomic)
    result: Json = orjson.loads(stored.body)
    return _outcome(stored.status, result, dict(stored.headers), stored.replayed)


async def _no_claim(db: AsyncSession) -> None:
    return None
