"""Hooks other domains call inside their own transaction (outbox rows, no Etsy calls)."""

from __future__ import annotations

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from etsy import repository
from etsy.schemas import CHANNEL
from models import Fulfillment, Order
from webhooks.outbox import emit

ETSY_STOCK = "etsy_stock"
ETSY_TRACKING = "etsy_tracking"


async def stock_sold(db: AsyncSession, order: Order) -> None:
    """Called with every paid order, in its transaction: queue an inventory push for each
    Etsy listing the order took stock from (nothing if none is linked)."""
    if order.payment_provider == CHANNEL:
        return  # Etsy counted its own sale
    variant_ids = [line["item"]["id"] for line in order.line_items]
    await enqueue_stock_push(db, variant_ids, reason=f"order {order.id}")


async def enqueue_stock_push(db: AsyncSession, variant_ids: list[str], *, reason: str) -> int:
    listings = sorted({link.listing_id for link in await repository.links_of_variants(
        db, variant_ids)})
    for listing_id in listings:
        await emit(db, topic=ETSY_STOCK, key=listing_id, event_type="inventory",
                   payload=orjson.dumps({"listing_id": listing_id, "reason": reason}).decode())
    return len(listings)


async def order_shipped(db: AsyncSession, order: Order, fulfillment: Fulfillment) -> None:
    """Called when we record a shipment: an order from Etsy sends its tracking back."""
    if order.payment_provider != CHANNEL or not fulfillment.tracking_number:
        return
    await emit(db, topic=ETSY_TRACKING, key=order.id, event_type="shipment",
               payload=orjson.dumps({"order_id": order.id,
                                     "fulfillment_id": fulfillment.id}).decode())
