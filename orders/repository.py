from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Order, OrderEvent


async def get_order(db: AsyncSession, order_id: str) -> Order | None:
    return await db.scalar(select(Order).where(Order.id == order_id))


async def add_event(db: AsyncSession, order_id: str, type_: str, actor: str, data: dict) -> None:
    db.add(OrderEvent(order_id=order_id, type=type_, actor=actor, data=data))
