"""Read models for dashboard pages (all the dashboard's SQL)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String, cast, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import (
    Agent,
    AttributionTouch,
    DeliveryAttempt,
    InboxEvent,
    LedgerEntry,
    Order,
    OutboxMessage,
    Video,
    VideoProduct,
)
from models.statuses import OutboxStatus


async def orders_page(db: AsyncSession, *, status: str | None, agent: str | None,
                      video: str | None, q: str | None, start: datetime | None,
                      end: datetime | None, limit: int, offset: int
                      ) -> tuple[int, list[Order]]:
    stmt = select(Order)
    if status:
        stmt = stmt.where(Order.status == status)
    if agent:
        stmt = stmt.where(Order.agent_id == agent)
    if video:
        stmt = stmt.where(Order.checkout_session_id.in_(
            select(AttributionTouch.checkout_session_id).where(
                AttributionTouch.video_id == video)))
    if q:
        like = f"%{q.strip()}%"
        stmt = stmt.where(or_(Order.id == q.strip(), Order.order_number.ilike(like),
                              cast(Order.buyer, String).ilike(like)))
    if start:
        stmt = stmt.where(Order.created_at >= start)
    if end:
        stmt = stmt.where(Order.created_at < end)
    total = await db.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = await db.scalars(stmt.order_by(Order.created_at.desc(), Order.id)
                            .limit(limit).offset(offset))
    return int(total), list(rows)


async def agents(db: AsyncSession) -> list[Agent]:
    return list(await db.scalars(select(Agent).order_by(Agent.name)))


async def touches_of(db: AsyncSession, session_id: str) -> list[AttributionTouch]:
    return list(await db.scalars(select(AttributionTouch).where(
        AttributionTouch.checkout_session_id == session_id).order_by(
        AttributionTouch.touched_at)))


async def credits_of(db: AsyncSession, order_id: str) -> list[Any]:
    return list((await db.execute(
        select(LedgerEntry.model, LedgerEntry.video_id,
               cast(func.sum(LedgerEntry.gross), LedgerEntry.gross.type).label("gross"))
        .where(LedgerEntry.order_id == order_id)
        .group_by(LedgerEntry.model, LedgerEntry.video_id)
        .order_by(LedgerEntry.model, LedgerEntry.video_id))).all())


async def videos_with_revenue(db: AsyncSession) -> list[Any]:
    revenue = (select(LedgerEntry.video_id, cast(func.sum(LedgerEntry.gross),
                                                 LedgerEntry.gross.type).label("gross"),
                      func.count(func.distinct(LedgerEntry.order_id)).label("orders"))
               .where(LedgerEntry.model == "last_touch", LedgerEntry.kind == "sale")
               .group_by(LedgerEntry.video_id).subquery())
    net = (select(LedgerEntry.video_id, cast(func.sum(LedgerEntry.gross),
                                             LedgerEntry.gross.type).label("gross"))
           .where(LedgerEntry.model == "last_touch").group_by(LedgerEntry.video_id)
           .subquery())
    products = (select(VideoProduct.video_id, func.count().label("products"))
                .group_by(VideoProduct.video_id).subquery())
    stmt = (select(Video, net.c.gross, revenue.c.orders, products.c.products)
            .join(net, net.c.video_id == Video.id, isouter=True)
            .join(revenue, revenue.c.video_id == Video.id, isouter=True)
            .join(products, products.c.video_id == Video.id, isouter=True)
            .order_by(net.c.gross.desc().nulls_last(), Video.id))
    return list((await db.execute(stmt)).all())


async def video_sales_by_day(db: AsyncSession, video_id: str) -> list[tuple[str, int]]:
    day = func.substr(cast(LedgerEntry.order_at, String), 1, 10)
    rows = await db.execute(select(day.label("day"), cast(func.sum(LedgerEntry.gross),
                                                          LedgerEntry.gross.type))
                            .where(LedgerEntry.video_id == video_id,
                                   LedgerEntry.model == "last_touch")
                            .group_by(day).order_by(day))
    return [(str(d), int(v or 0)) for d, v in rows]


async def delivery_health(db: AsyncSession) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for topic in ("agent_webhook", "shopify_order", "feeds_refresh"):
        pending = await db.scalar(select(func.count()).where(
            OutboxMessage.topic == topic, OutboxMessage.status == OutboxStatus.pending)) or 0
        failed = await db.scalar(select(func.count()).where(
            OutboxMessage.topic == topic, OutboxMessage.status == OutboxStatus.failed)) or 0
        last_ok = await db.scalar(select(func.max(OutboxMessage.delivered_at)).where(
            OutboxMessage.topic == topic))
        last_error = await db.scalar(
            select(DeliveryAttempt.error).join(OutboxMessage,
                                               OutboxMessage.id == DeliveryAttempt.message_id)
            .where(OutboxMessage.topic == topic, DeliveryAttempt.error.is_not(None))
            .order_by(DeliveryAttempt.id.desc()).limit(1))
        out[topic] = {"pending": pending, "failed": failed, "last_success": last_ok,
                      "last_error": last_error}
    for source in ("stripe", "shopify"):
        waiting = await db.scalar(select(func.count()).where(
            InboxEvent.source == source, InboxEvent.processed_at.is_(None))) or 0
        last = await db.scalar(select(func.max(InboxEvent.processed_at)).where(
            InboxEvent.source == source))
        out[f"inbox_{source}"] = {"pending": waiting, "last_processed": last}
    return out


async def catalog_page(db: AsyncSession, *, limit: int, offset: int) -> tuple[int, list[Any]]:
    from models import Product, Variant

    total = await db.scalar(select(func.count()).select_from(Variant)) or 0
    rows = await db.execute(
        select(Variant, Product.title.label("product_title"))
        .join(Product, Product.id == Variant.product_id)
        .order_by(Variant.product_id, Variant.id).limit(limit).offset(offset))
    return int(total), list(rows.all())


async def recent_pushes(db: AsyncSession) -> list[Any]:
    from models import FeedPush

    return list(await db.scalars(select(FeedPush).order_by(FeedPush.started_at.desc())
                                 .limit(10)))



async def revenue_by_day(db: AsyncSession, *, model: str, start: datetime, end: datetime
                         ) -> list[tuple[str, int]]:
    day = func.substr(cast(LedgerEntry.order_at, String), 1, 10)
    rows = await db.execute(select(day.label("day"), cast(func.sum(LedgerEntry.gross),
                                                          LedgerEntry.gross.type))
                            .where(LedgerEntry.model == model, LedgerEntry.order_at >= start,
                                   LedgerEntry.order_at < end)
                            .group_by(day).order_by(day))
    return [(str(d), int(v or 0)) for d, v in rows]
