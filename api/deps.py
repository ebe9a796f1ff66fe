"""Request dependencies: the agent-facing checks in ACP's order (auth → version →
signature → idempotency), exposed as one ``AgentCallDep``."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Annotated, Any

import orjson
from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from api import jsonbody, signatures
from api.auth import AgentPrincipal, MerchantPrincipal, authenticate, authenticate_merchant
from api.runtime import Runtime
from api.settings import SignatureMode
from checkout.domain import Actor
from idempotency.canonical import parsed_hash
from idempotency.service import ClaimingHandler, IdempotentCall, Outcome, require_key
from models.base import utc_now
from models.errors import AppError, InvalidRequest, Unauthorized
from protocols.acp.binding import AcpCheckout
from protocols.acp.versions import AcpVersion, negotiate

log = logging.getLogger("reelcart.auth")

# Agent routes read their key by hand (``agent_call``) and name ``AgentBearer`` in their
# OpenAPI security; merchant routes declare this scheme, a separate key namespace.
merchant_bearer = HTTPBearer(auto_error=False, scheme_name="MerchantBearer",
                             description="Merchant API key")
AGENT_BEARER_SCHEME = {"type": "http", "scheme": "bearer", "description": "Agent API key"}


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


@dataclass
class _Call:
    """Runs a handler: writes through the idempotency guard, reads on the read engine."""

    runtime: Runtime
    idempotency: IdempotentCall | None

    async def write(self, handler: Callable[[AsyncSession], Awaitable[dict[str, Any]]], *,
                    status_code: int = 200, atomic: bool = False) -> Response:
        """``atomic``: the handler works only in ``db`` (see ``IdempotentCall.run``).
        Without a guard (an ACP version whose Idempotency-Key is optional, sent without
        one) the handler runs once in its own transaction."""
        if self.idempotency is None:
            async with self.runtime.sessionmaker() as db:
                async with db.begin():
                    payload = await handler(db)
            return Response(orjson.dumps(payload), status_code=status_code,
                            media_type="application/json")
        return http_response(await self.idempotency.run(handler, status_code=status_code,
                                                        atomic=atomic))

    async def write_claiming(self, handler: ClaimingHandler) -> Response:
        """A write that commits midway (see ``IdempotentCall.run_claiming``): the handler
        claims the key in its first transaction. Without a guard, ``claim`` does nothing."""
        if self.idempotency is None:
            return await self.write(lambda db: handler(db, _no_claim))
        return http_response(await self.idempotency.run_claiming(handler))

    async def enqueue(self, handler: Callable[[AsyncSession], Awaitable[dict[str, Any]]]
                      ) -> Response:
        """A write that queues work for the worker: 202, then wake it rather than wait
        for its next poll."""
        response = await self.write(handler, status_code=202)
        self.runtime.wake_worker()
        return response

    async def read(self, handler: Callable[[AsyncSession], Awaitable[dict[str, Any]]]
                   ) -> Response:
        async with self.runtime.read_sessionmaker() as db:
            payload = await handler(db)
        return Response(orjson.dumps(payload), media_type="application/json")


async def _no_claim(db: AsyncSession) -> None:
    return None


def http_response(outcome: Outcome) -> Response:
    return Response(outcome.body, status_code=outcome.status, headers=outcome.headers,
                    media_type="application/json")


@dataclass
class AgentCall(_Call):
    agent: AgentPrincipal = field(kw_only=True)
    version: AcpVersion = field(kw_only=True)
    body: bytes = field(kw_only=True)

    @property
    def actor(self) -> Actor:
        return Actor(self.agent.id)

    @property
    def acp(self) -> AcpCheckout:
        return AcpCheckout(self.runtime.checkout, self.version)

    async def write(self, handler: Callable[[AsyncSession], Awaitable[dict[str, Any]]], *,
                    status_code: int = 200, atomic: bool = False) -> Response:
        try:
            return await super().write(handler, status_code=status_code, atomic=atomic)
        except AppError as exc:  # idempotency conflicts in this version's terms
            raise self.version.error(exc) from None

    async def write_claiming(self, handler: ClaimingHandler) -> Response:
        try:
            return await super().write_claiming(handler)
        except AppError as exc:
            raise self.version.error(exc) from None


async def _check_signature(runtime: Runtime, agent: AgentPrincipal, request: Request,
                           body: bytes) -> None:
    check_signature(runtime, agent, request.headers.get("signature"),
                    request.headers.get("timestamp"), body)


def check_signature(runtime: Runtime, agent: AgentPrincipal, signature: str | None,
                    timestamp: str | None, body: bytes) -> None:
    """The agent's request signature over ``body`` (REST headers or MCP ``meta`` fields)."""
    mode = runtime.settings.request_signature_mode
    if mode == SignatureMode.off:
        return
    if agent.signing_secret is None:
        problem: str | None = "no signing secret is configured for this agent"
    elif not signature or not timestamp:
        problem = "Signature and Timestamp headers are required"
    else:
        problem = signatures.verify(
            agent.signing_secret, signature, timestamp, body, now=utc_now(),
            max_skew_seconds=runtime.settings.request_signature_max_skew_seconds)
    if problem is None:
        return
    log.warning("request signature rejected", extra={"agent_id": agent.id, "reason": problem,
                                                     "enforced": mode == SignatureMode.enforce})
    if mode == SignatureMode.enforce:
        raise Unauthorized(f"Request signature invalid: {problem}.", code="invalid_signature",
                           headers={})


def _header_doc(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "header", "required": False, "description": description,
            "schema": {"type": "string"}}


# agent_call reads its headers itself: declared as FastAPI parameters and sub-dependencies
# they cost ~6% of a checkout create, for nothing but documentation. Routes that take
# AgentCallDep document them with ``openapi_extra=AGENT_CALL_DOCS``.
AGENT_CALL_DOCS: dict[str, Any] = {
    "parameters": [_header_doc("API-Version", "ACP version, e.g. 2026-04-17"),
                   _header_doc("Idempotency-Key", "Required on every POST (1-255 chars)")],
    "security": [{"AgentBearer": []}],
}


async def agent_call(request: Request) -> AgentCall:
    runtime = await get_runtime(request)
    headers = request.headers
    agent = await authenticate(runtime, headers.get("authorization"))
    version = negotiate(headers.get("api-version"))
    body = await request.body()
    await _check_signature(runtime, agent, request, body)
    key = headers.get("idempotency-key")
    guard = None
    if key is not None or version.idempotency_key_required:
        guard = _idempotency_guard(
            request, runtime, body, principal=agent.id, key=key,
            path=_path(request).removeprefix("/acp"),  # /acp/x and /x are one endpoint
            conflict_status=version.conflict_status,
            render_error=lambda exc: version.error(exc).body())
    elif request.method == "POST":
        _check_json(request, body)
    return AgentCall(runtime, guard, agent=agent, version=version, body=body)


def _path(request: Request) -> str:
    """``request.url.path`` (the idempotency scope's path) without building and parsing
    the request's whole URL: Starlette escapes these three characters of the ASGI path."""
    return request.scope["path"].replace("?", "%3F").replace("#", "%23").replace("\\", "%5C")


def _check_json(request: Request, body: bytes) -> None:
    try:
        _request_hash(request, body)
    except ValueError:
        raise InvalidRequest("The request body is not valid JSON.",
                             code="invalid_json") from None


def _request_hash(request: Request, body: bytes) -> str:
    """``signatures.request_hash(body)`` (``ValueError`` if it is not JSON), from the
    value ``BodyLimitMiddleware`` parsed when it checked this body: one parse, not two."""
    parsed = request.scope.get("state", {}).get(jsonbody.STATE_KEY)
    if parsed is not None:
        value = parsed.value_of(body)
        if value is not jsonbody.NOT_PARSED:
            return parsed_hash(value)
    return signatures.request_hash(body)


def _idempotency_guard(request: Request, runtime: Runtime, body: bytes, *, principal: str,
                       key: str | None, path: str, conflict_status: int = 422,
                       render_error: Callable[[AppError], dict[str, Any]] | None = None,
                       ) -> IdempotentCall | None:
    """Every POST needs an Idempotency-Key; GETs get no guard."""
    if request.method != "POST":
        return None
    checked = require_key(key)
    try:
        body_hash = _request_hash(request, body)
    except ValueError:
        raise InvalidRequest("The request body is not valid JSON.",
                             code="invalid_json") from None
    settings = runtime.settings
    return IdempotentCall(
        sessionmaker=runtime.sessionmaker, principal=principal, path=path, key=checked,
        body_hash=body_hash, retention=timedelta(hours=settings.idempotency_retention_hours),
        lock=timedelta(seconds=settings.idempotency_lock_seconds),
        conflict_status=conflict_status, render_error=render_error or AppError.body)


AgentCallDep = Annotated[AgentCall, Depends(agent_call)]


@dataclass
class MerchantCall(_Call):
    merchant: MerchantPrincipal = field(kw_only=True)


async def merchant_call(
    request: Request,
    runtime: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(merchant_bearer)],
    idempotency_key: Annotated[str | None, Header(
        alias="Idempotency-Key", description="Required on every POST (1-255 chars)")] = None,
) -> MerchantCall:
    merchant = await authenticate_merchant(runtime, request.headers.get("authorization"))
    guard = _idempotency_guard(request, runtime, await request.body(),
                               principal=f"merchant:{merchant.id}", key=idempotency_key,
                               path=_path(request))
    return MerchantCall(runtime, guard, merchant=merchant)


MerchantCallDep = Annotated[MerchantCall, Depends(merchant_call)]
