"""Telling the outside world about order changes, through the outbox (same transaction)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from models import Agent, Order
from models.statuses import ForwardingStatus
from orders.documents import acp_snapshot
from webhooks.outbox import emit

AGENT_WEBHOOK = "agent_webhook"
SHOPIFY_ORDER = "shopify_order"

# Protocol bindings that tell their platforms about order changes register here at start-up
# (the core never imports them). Each runs in the change's transaction.
OrderListener = Callable[[AsyncSession, Order, str], Awaitable[None]]
LISTENERS: dict[str, OrderListener] = {}


def set_listener(name: str, listener: OrderListener) -> None:
    """One listener per binding (the latest runtime's wins)."""
    LISTENERS[name] = listener


async def order_changed(db: AsyncSession, order: Order, event_type: str = "order_update"
                        ) -> None:
    """Queue an ACP order webhook for the agent that placed the order (if it listens).

    The payload is the complete ``Order`` as of this change (ACP: full objects, never
    deltas), serialised once; the relay signs and sends exactly these bytes.
    """
    for listener in list(LISTENERS.values()):
        await listener(db, order, event_type)
    agent = await db.get(Agent, order.agent_id)
    if agent is None or not agent.webhook_url:
        return
    await db.flush()
    snapshot = await acp_snapshot(db, order)
    await emit(db, topic=AGENT_WEBHOOK, key=order.id, target=agent.id, event_type=event_type,
               payload=orjson.dumps({"type": event_type, "data": snapshot}).decode())


async def forward_to_shopify(db: AsyncSession, order: Order) -> None:
    order.forwarding_status = ForwardingStatus.pending
    await emit(db, topic=SHOPIFY_ORDER, key=order.id, event_type="order_create",
               payload=orjson.dumps({"order_id": order.id}).decode())
