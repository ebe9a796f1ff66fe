"""Delivering ACP order webhooks to agents (outbox topic ``agent_webhook``)."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import Agent
from models.outbound import OutboundRefused, error_excerpt, retry_after_seconds
from webhooks.outbox import DeliveryResult, Message
from webhooks.signing import sign

TIMEOUT = httpx.Timeout(10.0, connect=3.0)
MAX_RETRY_AFTER = 3600.0  # an agent cannot park its messages longer than the backoff cap


class AgentWebhookDeliverer:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession],
                 http: httpx.AsyncClient) -> None:
        self.sessionmaker = sessionmaker
        self.http = http

    async def __call__(self, message: Message) -> DeliveryResult:
        async with self.sessionmaker() as db:
            # Looked up per attempt: the merchant may have rotated the URL or secret.
            agent = await db.get(Agent, message.target)
            url = agent.webhook_url if agent else None
            secret = agent.webhook_secret if agent else None
        if not url or not secret:
            return DeliveryResult(ok=False, error="agent has no webhook endpoint or secret",
                                  retryable=False)
        body = message.payload.encode()  # the exact bytes written with the change
        headers = {
            "Content-Type": "application/json",
            "Merchant-Signature": sign(secret, body),
            "Request-Id": f"{message.id}-{message.attempt}-{uuid.uuid4().hex[:8]}",
            "Timestamp": datetime.now(UTC).isoformat(),
        }
        started = time.perf_counter()
        try:
            async with self.http.stream("POST", url, content=body, headers=headers,
                                        timeout=TIMEOUT) as response:
                head = await _head(response)  # never the whole body of a hostile answer
        except httpx.HTTPError as exc:
            return DeliveryResult(ok=False, error=f"{type(exc).__name__}: {exc}"[:500],
                                  retryable=not isinstance(exc, OutboundRefused),
                                  duration_ms=int((time.perf_counter() - started) * 1000))
        elapsed = int((time.perf_counter() - started) * 1000)
        status = response.status_code
        return DeliveryResult(
            ok=200 <= status < 300, status_code=status, excerpt=error_excerpt(head),
            # 400/401 mean our payload or signature is wrong: retrying will not help.
            retryable=status in (408, 409, 425, 429) or status >= 500,
            retry_after=retry_after_seconds(response.headers.get("retry-after"),
                                            cap=MAX_RETRY_AFTER),
            duration_ms=elapsed)


async def _head(response: httpx.Response, limit: int = 4096) -> bytes:
    """The first ``limit`` bytes of the body (enough for an excerpt)."""
    head = b""
    async for chunk in response.aiter_bytes():
        head += chunk
        if len(head) >= limit:
            break
    return head[:limit]
