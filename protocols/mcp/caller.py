"""What a tool call runs with: the agent authenticated on the HTTP connection and the
services it may use. Built by the composition root (``api.mcp_endpoint``) per request."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from checkout.domain import Actor
from checkout.profile import MerchantProfile
from checkout.service import CheckoutService
from protocols.ucp.mcp_tools import UcpTools

# (signature, timestamp, body) → None, or raises the ACP error REST would return
SignatureCheck = Callable[[str | None, str | None, bytes], None]


@dataclass(frozen=True, slots=True)
class Caller:
    agent_id: str
    checkout: CheckoutService
    sessionmaker: async_sessionmaker[AsyncSession]
    read_sessionmaker: async_sessionmaker[AsyncSession]
    profile: MerchantProfile
    idempotency_retention: timedelta
    idempotency_lock: timedelta
    check_signature: SignatureCheck
    ucp: UcpTools | None = None  # the UCP checkout tools (None: not offered)

    @property
    def actor(self) -> Actor:
        """The agent scopes sessions, idempotency keys, orders and attribution."""
        return Actor(self.agent_id)
