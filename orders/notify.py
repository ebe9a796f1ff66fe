"""Telling the outside world about order changes, through the outbox (same transaction)."""

from __future__ import annotations

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from models import Agent, Order
from webhooks.outbox import emit

AGENT_WEBHOOK = "agent_webhook"
SHOPIFY_ORDER = "shopify_order"


async def order_changed(db: AsyncSession, order: Order, event_type: str = "order_update"
                        ) -> None:
    """Queue an ACP order webhook for the agent that placed the order (if it listens).

    The message names the order; the deliverer sends the complete *current* ``Order``
    (ACP: always the full object, never a delta), signed at delivery time.
    """
    agent = await db.get(Agent, order.agent_id)
    if agent is None or not agent.webhook_url:
        return
    await emit(db, topic=AGENT_WEBHOOK, key=order.id, target=agent.id, event_type=event_type,
               payload=orjson.dumps({"order_id": order.id}).decode())


async def forward_to_shopify(db: AsyncSession, order: Order) -> None:
    order.forwarding_status = "pending"
    await emit(db, topic=SHOPIFY_ORDER, key=order.id, event_type="order_create",
               payload=orjson.dumps({"order_id": order.id}).decode())
