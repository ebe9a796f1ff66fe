"""The five ACP checkout operations for one negotiated version: parse (up to the core's
shape) → checkout core → render (down to the agent's version). Shared by the REST routes
(``api.routes.checkout_sessions``) and any other transport carrying ACP bodies (MCP
tools): each returns the ACP JSON body; errors are raised as ``AppError`` in the
version's terms (``AcpVersion.error``) and rendered by the transport.

Another transport (e.g. MCP tools carrying ACP bodies)::

    acp = AcpCheckout(runtime.checkout, "2026-04-17")
    req = acp.parse_create(orjson.dumps(arguments))          # 400s as AppError
    call = IdempotentCall(sessionmaker=..., principal=agent_id, path="mcp:create_checkout",
                          key=meta_idempotency_key, body_hash=value_hash(arguments), ...,
                          conflict_status=acp.version.conflict_status)
    outcome = await call.run(lambda db: acp.create(db, Actor(agent_id), req),
                             status_code=201, atomic=True)   # Outcome(status, body, …)
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from checkout.domain import Actor, Claim
from checkout.service import CheckoutService
from models.errors import AppError
from protocols.acp import parse, render
from protocols.acp.schemas import (
    CancelSessionRequest,
    CheckoutSessionCompleteRequest,
    CheckoutSessionCreateRequest,
    CheckoutSessionUpdateRequest,
)
from protocols.acp.versions import CURRENT, AcpVersion, Op, UpContext, negotiate

Json = dict[str, Any]


class AcpCheckout:
    """``service`` spoken in ACP ``version`` (default: the newest)."""

    def __init__(self, service: CheckoutService, version: AcpVersion | str = CURRENT) -> None:
        self.service = service
        self.version = negotiate(version) if isinstance(version, str) else version
        self._ctx = UpContext(default_currency=service.profile.currencies[0])

    # ------------------------------------------------------------ parsing (no database)

    def parse_create(self, raw: bytes) -> CheckoutSessionCreateRequest:
        return self.version.parse(Op.create, CheckoutSessionCreateRequest, raw, self._ctx)

    def parse_update(self, raw: bytes) -> CheckoutSessionUpdateRequest:
        return self.version.parse(Op.update, CheckoutSessionUpdateRequest, raw, self._ctx)

    def parse_complete(self, raw: bytes) -> CheckoutSessionCompleteRequest:
        return self.version.parse(Op.complete, CheckoutSessionCompleteRequest, raw, self._ctx)

    def parse_cancel(self, raw: bytes) -> CancelSessionRequest | None:
        if not raw.strip():
            return None
        return self.version.parse(Op.cancel, CancelSessionRequest, raw, self._ctx)

    # ------------------------------------------------------------ operations

    async def create(self, db: AsyncSession, actor: Actor, req: CheckoutSessionCreateRequest
                     ) -> Json:
        try:
            cmd = parse.create(req)
            return self.version.render(render.session(
                await self.service.create(db, actor, cmd)))
        except AppError as exc:
            raise self.version.error(exc) from None

    async def update(self, db: AsyncSession, actor: Actor, session_id: str,
                     req: CheckoutSessionUpdateRequest) -> Json:
        try:
            cmd = parse.update(req)
            return self.version.render(render.session(
                await self.service.update(db, actor, session_id, cmd)))
        except AppError as exc:
            raise self.version.error(exc) from None

    async def get(self, db: AsyncSession, actor: Actor, session_id: str) -> Json:
        try:
            return self.version.render(render.session(
                await self.service.get(db, actor, session_id)))
        except AppError as exc:
            raise self.version.error(exc) from None

    async def complete(self, sessionmaker: async_sessionmaker[AsyncSession], db: AsyncSession,
                       actor: Actor, session_id: str, req: CheckoutSessionCompleteRequest,
                       *, claim: Claim | None = None) -> Json:
        try:
            cmd = parse.complete(req)
            return self.version.render(render.session(
                await self.service.complete(sessionmaker, db, actor, session_id, cmd,
                                            claim=claim)))
        except AppError as exc:
            raise self.version.error(exc) from None

    async def cancel(self, db: AsyncSession, actor: Actor, session_id: str,
                     req: CancelSessionRequest | None) -> Json:
        try:
            return self.version.render(render.session(
                await self.service.cancel(db, actor, session_id, parse.cancel(req))))
        except AppError as exc:
            raise self.version.error(exc) from None
