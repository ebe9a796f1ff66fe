"""The five ACP checkout operations: parse → checkout core → render. Shared by the REST
routes (``api.routes.checkout_sessions``) and any other transport carrying ACP bodies
(MCP tools). Each returns the ACP JSON body; errors are raised as ``AppError`` and
rendered by the transport."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from checkout.domain import Actor
from checkout.service import CheckoutService
from protocols.acp import parse, render
from protocols.acp.schemas import (
    CancelSessionRequest,
    CheckoutSessionCompleteRequest,
    CheckoutSessionCreateRequest,
    CheckoutSessionUpdateRequest,
)

Json = dict[str, Any]


async def create(service: CheckoutService, db: AsyncSession, actor: Actor,
                 req: CheckoutSessionCreateRequest) -> Json:
    return render.session(await service.create(db, actor, parse.create(req)))


async def update(service: CheckoutService, db: AsyncSession, actor: Actor, session_id: str,
                 req: CheckoutSessionUpdateRequest) -> Json:
    return render.session(await service.update(db, actor, session_id, parse.update(req)))


async def get(service: CheckoutService, db: AsyncSession, actor: Actor, session_id: str
              ) -> Json:
    return render.session(await service.get(db, actor, session_id))


async def complete(service: CheckoutService, sessionmaker: async_sessionmaker[AsyncSession],
                   db: AsyncSession, actor: Actor, session_id: str,
                   req: CheckoutSessionCompleteRequest) -> Json:
    return render.session(await service.complete(sessionmaker, db, actor, session_id,
                                                 parse.complete(req)))


async def cancel(service: CheckoutService, db: AsyncSession, actor: Actor, session_id: str,
                 req: CancelSessionRequest | None) -> Json:
    return render.session(await service.cancel(db, actor, session_id, parse.cancel(req)))
