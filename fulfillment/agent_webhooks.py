"""Delivering ACP order webhooks to agents (outbox topic ``agent_webhook``)."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import httpx
import orjson
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import Agent
from orders import repository
from orders.service import acp_snapshot
from webhooks.outbox import DeliveryResult, Message
from webhooks.signing import sign

TIMEOUT = httpx.Timeout(10.0, connect=3.0)


class AgentWebhookDeliverer:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession],
                 http: httpx.AsyncClient, *, public_base_url: str,
                 support_email: str | None) -> None:
        self.sessionmaker = sessionmaker
        self.http = http
        self.public_base_url = public_base_url
        self.support_email = support_email

    async def __call__(self, message: Message) -> DeliveryResult:
        order_id = orjson.loads(message.payload)["order_id"]
        async with self.sessionmaker() as db:
            agent = await db.get(Agent, message.target)
            order = await repository.get_order(db, order_id)
            if agent is None or order is None:
                return DeliveryResult(ok=False, error="agent or order is gone",
                                      retryable=False)
            # The complete current Order: ACP receivers get full objects, never deltas.
            snapshot = await acp_snapshot(db, order, self.public_base_url, self.support_email)
            url, secret = agent.webhook_url, agent.webhook_secret
        if not url or not secret:
            return DeliveryResult(ok=False, error="agent has no webhook endpoint or secret",
                                  retryable=False)
        body = orjson.dumps({"type": message.event_type, "data": snapshot})
        headers = {
            "Content-Type": "application/json",
            "Merchant-Signature": sign(secret, body),
            "Request-Id": f"{message.id}-{message.attempt}-{uuid.uuid4().hex[:8]}",
            "Timestamp": datetime.now(UTC).isoformat(),
        }
        started = time.perf_counter()
        try:
            response = await self.http.post(url, content=body, headers=headers,
                                            timeout=TIMEOUT)
        except httpx.HTTPError as exc:
            return DeliveryResult(ok=False, error=f"{type(exc).__name__}: {exc}"[:500],
                                  duration_ms=int((time.perf_counter() - started) * 1000))
        elapsed = int((time.perf_counter() - started) * 1000)
        status = response.status_code
        retry_after = response.headers.get("retry-after")
        return DeliveryResult(
            ok=200 <= status < 300, status_code=status, excerpt=response.text[:500],
            # 400/401 mean our payload or signature is wrong: retrying will not help.
            retryable=status in (408, 409, 425, 429) or status >= 500,
            retry_after=float(retry_after) if retry_after and retry_after.isdigit() else None,
            duration_ms=elapsed)
