"""Recording shipments against orders, whoever reports them (merchant API or Shopify).

Upserts are keyed by the reporter's id and forward-only: a stale update (older
``source_updated_at``) never overwrites a newer one, and a delivered or canceled
shipment does not go back to shipped.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from fulfillment.errors import InvalidFulfillment
from models import Fulfillment, Order
from models.base import new_id, utc_now
from models.urls import is_http_url
from orders import notify, repository
from orders.service import derive_status

Json = dict[str, Any]
# How far along a shipment is; status only moves forward along this scale.
PROGRESS = {"pending": 0, "processing": 1, "shipped": 2, "in_transit": 3,
            "out_for_delivery": 4, "ready_for_pickup": 4, "delivered": 5, "failed": 5,
            "canceled": 6}


async def record_fulfillment(
    db: AsyncSession, order: Order, *, status: str, actor: str,
    external_id: str | None = None, carrier: str | None = None,
    tracking_number: str | None = None, tracking_url: str | None = None,
    line_items: list[Json] | None = None, source_updated_at: str | None = None,
    type_: str = "shipping", existing: Fulfillment | None = None,
) -> Fulfillment:
    """Create or update a fulfilment: ``existing`` when the caller has it, else found by
    ``external_id``. A ``tracking_url`` must be http(s): it is rendered as a link."""
    if tracking_url is not None and not is_http_url(tracking_url):
        raise InvalidFulfillment("tracking_url must be an absolute http or https URL.",
                                 param="$.tracking_url")
    fulfillment = existing
    if fulfillment is None and external_id:
        fulfillment = await repository.fulfillment_by_external_id(db, external_id)
    now = utc_now()
    if fulfillment is None:
        fulfillment = Fulfillment(
            id=new_id("ful"), order_id=order.id, external_id=external_id, type=type_,
            status=status, carrier=carrier, tracking_number=tracking_number,
            tracking_url=tracking_url, line_items=line_items or _remaining(order, []),
            events=[], source_updated_at=source_updated_at, created_at=now, updated_at=now)
        db.add(fulfillment)
        changed = True
    else:
        stale = (source_updated_at and fulfillment.source_updated_at
                 and source_updated_at < fulfillment.source_updated_at)
        backwards = PROGRESS.get(status, 0) < PROGRESS.get(fulfillment.status, 0)
        changed = False
        if not stale:
            for key, value in (("carrier", carrier), ("tracking_number", tracking_number),
                               ("tracking_url", tracking_url)):
                if value and getattr(fulfillment, key) != value:
                    setattr(fulfillment, key, value)
                    changed = True
            if line_items and line_items != fulfillment.line_items:
                fulfillment.line_items = line_items
                changed = True
            if source_updated_at:
                fulfillment.source_updated_at = source_updated_at
        if not backwards and status != fulfillment.status:
            fulfillment.status = status
            changed = True
    if changed:
        fulfillment.events = [*fulfillment.events, {
            "id": new_id("fev"), "type": status, "occurred_at": now.isoformat().replace(
                "+00:00", "Z")}]
        fulfillment.updated_at = now
        await db.flush()
        await refresh_order_status(db, order, actor, {
            "fulfillment_id": fulfillment.id, "status": fulfillment.status,
            "tracking_number": fulfillment.tracking_number, "carrier": fulfillment.carrier})
    return fulfillment


async def refresh_order_status(db: AsyncSession, order: Order, actor: str, data: Json) -> None:
    fulfillments = await repository.fulfillments_of(db, order.id)
    order.status = derive_status(order, fulfillments)
    order.updated_at = utc_now()
    await repository.add_event(db, order.id, "fulfillment.updated", actor, data)
    await notify.order_changed(db, order)


def _remaining(order: Order, fulfillments: list[Fulfillment]) -> list[Json]:
    from orders.service import fulfilled_quantities

    done = fulfilled_quantities(fulfillments)
    return [{"id": line["id"], "quantity": line["quantity"] - done.get(line["id"], 0)}
            for line in order.line_items if line["quantity"] - done.get(line["id"], 0) > 0]


async def ship_manually(db: AsyncSession, order: Order, *, carrier: str | None,
                        tracking_number: str | None, tracking_url: str | None,
                        line_items: list[Json] | None, actor: str) -> Fulfillment:
    """Built-in fulfillment when no Shopify store is connected: the merchant ships."""
    if order.status == "canceled":
        raise InvalidFulfillment(f"Order {order.id} is canceled.")
    existing = await repository.fulfillments_of(db, order.id)
    remaining = {li["id"]: li["quantity"] for li in _remaining(order, existing)}
    lines = line_items or [{"id": k, "quantity": v} for k, v in remaining.items()]
    if not lines:
        raise InvalidFulfillment(f"Everything on order {order.id} has already shipped.")
    for index, line in enumerate(lines):
        if line["quantity"] > remaining.get(line["id"], 0):
            raise InvalidFulfillment(
                f"Line {line['id']!r} has only {remaining.get(line['id'], 0)} left to ship.",
                param=f"$.line_items[{index}]")
    return await record_fulfillment(
        db, order, status="shipped", actor=actor, carrier=carrier,
        tracking_number=tracking_number, tracking_url=tracking_url, line_items=lines)
