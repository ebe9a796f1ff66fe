from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import Table, func, insert, inspect, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import (
    Dispute,
    Fulfillment,
    Order,
    OrderEvent,
    PaymentAttempt,
    PaymentAuthorization,
    Refund,
)
from models.prepared import Prepared


async def get_order(db: AsyncSession, order_id: str) -> Order | None:
    return await db.scalar(select(Order).where(Order.id == order_id))


async def get_agent_order(db: AsyncSession, order_id: str, agent_id: str) -> Order | None:
    """An order, only if this agent placed it (another agent's looks like none)."""
    return await db.scalar(select(Order).where(Order.id == order_id, Order.agent_id == agent_id))


async def add_event(db: AsyncSession, order_id: str, type_: str, actor: str, data: dict) -> None:
    db.add(OrderEvent(order_id=order_id, type=type_, actor=actor, data=data))


_INSERT_EVENT = Prepared(insert(cast(Table, OrderEvent.__table__)))
_ORDERS = cast(Table, Order.__table__)
_ORDER_COLUMNS = [(prop.key, prop.columns[0].key) for prop in inspect(Order).column_attrs]
_INSERT_ORDER = Prepared(insert(_ORDERS))


async def insert_order(db: AsyncSession, order: Order) -> None:
    """Insert a new order with one Core statement; ``order`` stays transient (the value
    the caller renders and passes to listeners, which only read it). Columns it leaves
    unset get their defaults in the row, not on the object."""
    state = order.__dict__
    await _INSERT_ORDER.execute(db, {column: state[attr] for attr, column in _ORDER_COLUMNS
                                     if attr in state})


async def insert_event(db: AsyncSession, order_id: str, type_: str, actor: str, data: dict,
                       at: datetime) -> None:
    """``add_event`` as one Core INSERT, for an order already flushed (the order's creation
    on the checkout hot path: no unit-of-work bookkeeping for a row nothing reads back)."""
    await _INSERT_EVENT.execute(db, {"order_id": order_id, "type": type_, "actor": actor,
                                     "data": data, "created_at": at})


async def lock_order(db: AsyncSession, order_id: str) -> Order | None:
    return await db.scalar(select(Order).where(Order.id == order_id).with_for_update()
                           .execution_options(populate_existing=True))


async def refunds_of(db: AsyncSession, order_id: str) -> list[Refund]:
    return list(await db.scalars(select(Refund).where(Refund.order_id == order_id)
                                 .order_by(Refund.created_at, Refund.id)))


async def disputes_of(db: AsyncSession, order_id: str) -> list[Dispute]:
    return list(await db.scalars(select(Dispute).where(Dispute.order_id == order_id)
                                 .order_by(Dispute.created_at)))


async def events_of(db: AsyncSession, order_id: str) -> list[OrderEvent]:
    return list(await db.scalars(select(OrderEvent).where(OrderEvent.order_id == order_id)
                                 .order_by(OrderEvent.id)))


async def order_by_payment_reference(db: AsyncSession, reference: str) -> Order | None:
    return await db.scalar(select(Order).where(Order.payment_reference == reference))


async def refund_by_external_id(db: AsyncSession, external_id: str) -> Refund | None:
    return await db.scalar(select(Refund).where(Refund.external_id == external_id))


async def fulfillments_of(db: AsyncSession, order_id: str) -> list[Fulfillment]:
    return list(await db.scalars(select(Fulfillment).where(Fulfillment.order_id == order_id)
                                 .order_by(Fulfillment.created_at, Fulfillment.id)))


async def fulfillment_by_external_id(db: AsyncSession, external_id: str) -> Fulfillment | None:
    return await db.scalar(select(Fulfillment).where(Fulfillment.external_id == external_id))


async def order_by_shopify_id(db: AsyncSession, shopify_id: str) -> Order | None:
    return await db.scalar(select(Order).where(Order.shopify_order_id == shopify_id))


async def restock(db: AsyncSession, quantities: dict[str, int]) -> None:
    """Put units of a canceled order back on sale (tracked variants only)."""
    from sqlalchemy import update

    from models import Variant

    for variant_id, qty in sorted(quantities.items()):  # fixed order: no lock cycles
        await db.execute(update(Variant).where(Variant.id == variant_id,
                                               Variant.stock.is_not(None))
                         .values(stock=Variant.stock + qty))


async def payment_attempt(db: AsyncSession, reference: str) -> PaymentAttempt | None:
    """The checkout's payment attempt for a provider payment, locked."""
    return await db.scalar(select(PaymentAttempt).where(
        PaymentAttempt.provider_reference == reference).limit(1).with_for_update())


async def captured_amounts(db: AsyncSession, order_ids: list[str]) -> dict[str, int]:
    """What was captured of manual-capture orders that were captured (all or part)."""
    if not order_ids:
        return {}
    rows = await db.execute(select(PaymentAuthorization.order_id,
                                   PaymentAuthorization.amount_captured).where(
        PaymentAuthorization.order_id.in_(order_ids),
        PaymentAuthorization.status == "captured"))
    return {order_id: int(amount) for order_id, amount in rows}


async def partial_capture_of(db: AsyncSession, order_id: str
                             ) -> tuple[PaymentAuthorization, datetime] | None:
    """The order's manual-capture payment if it was captured for less than was
    authorised, with when it was captured (its first ``payment.captured`` event)."""
    auth = await db.scalar(select(PaymentAuthorization).where(
        PaymentAuthorization.order_id == order_id,
        PaymentAuthorization.status == "captured",
        PaymentAuthorization.amount_captured < PaymentAuthorization.amount_authorized))
    if auth is None:
        return None
    at = await db.scalar(select(func.min(OrderEvent.created_at)).where(
        OrderEvent.order_id == order_id, OrderEvent.type == "payment.captured"))
    return auth, at or auth.updated_at
