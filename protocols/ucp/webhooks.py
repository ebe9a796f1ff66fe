"""UCP order webhooks (order.md "Order Event Webhook"): the full ``Order`` as of each
change, queued in the outbox in the change's transaction, then POSTed to the platform's
``webhook_url`` signed per signatures.md (RFC 9421, ES256, ``Content-Digest``), with
Standard Webhooks' ``Webhook-Id`` / ``Webhook-Timestamp``."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import httpx
import orjson
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import Order
from models.base import new_id, rfc3339, utc_now
from models.outbound import OutboundRefused, error_excerpt, retry_after_seconds
from protocols.ucp import repository
from protocols.ucp.service import AGENT_PREFIX, UcpCheckoutService
from protocols.ucp.signing import SigningKey, sign_request
from webhooks.outbox import DeliveryResult, Message, emit

TOPIC = "ucp_order_webhook"
TIMEOUT = httpx.Timeout(10.0, connect=3.0)


def listener(service: UcpCheckoutService
             ) -> Callable[[AsyncSession, Order, str], Awaitable[None]]:
    """An ``orders.notify`` listener: queue the UCP Order for the platform, if it listens."""

    async def order_changed(db: AsyncSession, order: Order, event_type: str) -> None:
        if not order.agent_id.startswith(AGENT_PREFIX):
            return  # not a UCP order (see AGENT_PREFIX): no look-up on the ACP hot path
        u = await repository.get(db, order.checkout_session_id)
        if u is None or not u.webhook_url:
            return
        await db.flush()
        body = await service.render_order(db, order, u)
        body["event_id"] = new_id("evt")
        body["created_time"] = rfc3339(utc_now())
        await emit(db, topic=TOPIC, key=order.id, target=order.checkout_session_id,
                   event_type=event_type, payload=orjson.dumps(body).decode())

    return order_changed


class UcpWebhookDeliverer:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], http: httpx.AsyncClient,
                 key: SigningKey, business_profile_url: str,
                 check_url: Callable[[str], None]) -> None:
        self.sessionmaker = sessionmaker
        self.http = http
        self.key = key
        self.business_profile_url = business_profile_url
        self.check_url = check_url

    async def __call__(self, message: Message) -> DeliveryResult:
        async with self.sessionmaker() as db:
            u = await repository.get(db, message.target or "")
            url = u.webhook_url if u else None
        if not url:
            return DeliveryResult(ok=False, error="the platform has no webhook_url",
                                  retryable=False)
        try:
            self.check_url(url)
        except Exception as exc:  # the policy says no: never retried
            return DeliveryResult(ok=False, error=f"webhook URL refused: {exc}"[:500],
                                  retryable=False)
        body = message.payload.encode()  # the exact bytes written with the change
        event_id = orjson.loads(body).get("event_id", message.id)
        headers = {"Content-Type": "application/json",
                   "UCP-Agent": f'profile="{self.business_profile_url}"',
                   "Webhook-Id": str(event_id), "Webhook-Timestamp": str(int(time.time()))}
        headers.update(sign_request(self.key, method="POST", url=url, body=body,
                                    headers=headers))
        started = time.perf_counter()
        try:
            response = await self.http.post(url, content=body, headers=headers,
                                            timeout=TIMEOUT)
        except OutboundRefused as exc:  # the policy refused the address DNS gave: final
            return DeliveryResult(ok=False, error=str(exc)[:500], retryable=False)
        except httpx.HTTPError as exc:
            return DeliveryResult(ok=False, error=f"{type(exc).__name__}: {exc}"[:500],
                                  duration_ms=int((time.perf_counter() - started) * 1000))
        status = response.status_code
        return DeliveryResult(
            ok=200 <= status < 300, status_code=status, excerpt=error_excerpt(response.text),
            retryable=status in (408, 409, 425, 429) or status >= 500,
            retry_after=retry_after_seconds(response.headers.get("retry-after"), cap=3600),
            duration_ms=int((time.perf_counter() - started) * 1000))
