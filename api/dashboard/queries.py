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
                              cast(Order.buyer, String).ilike(like),
                              cast(Order.fulfillment_details, String).ilike(like)))
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


# ------------------------------------------------------------------ home


def _day(column: Any) -> Any:
    return func.substr(cast(column, String), 1, 10)


async def sales_summary(db: AsyncSession, *, currency: str, start: datetime, end: datetime
                        ) -> dict[str, int]:
    """Orders in ``[start, end)`` in one currency: count, gross, refunded, disputed
    orders, and the last-touch ledger's attributed and total sales (same basis)."""
    from models import Dispute

    in_period = (Order.currency == currency, Order.created_at >= start, Order.created_at < end)
    count, gross, refunded = (await db.execute(
        select(func.count(), func.coalesce(func.sum(Order.total_amount), 0),
               func.coalesce(func.sum(Order.refunded_amount), 0)).where(*in_period))).one()
    disputed = await db.scalar(
        select(func.count(func.distinct(Dispute.order_id)))
        .join(Order, Order.id == Dispute.order_id).where(*in_period)) or 0
    sale = (LedgerEntry.model == "last_touch", LedgerEntry.kind == "sale",
            LedgerEntry.currency == currency, LedgerEntry.order_at >= start,
            LedgerEntry.order_at < end)
    ledger_total, attributed = (await db.execute(
        select(func.coalesce(func.sum(LedgerEntry.gross), 0),
               func.coalesce(func.sum(LedgerEntry.gross).filter(
                   LedgerEntry.video_id.is_not(None)), 0)).where(*sale))).one()
    return {"orders": int(count), "gross": int(gross), "refunded": int(refunded),
            "disputed": int(disputed), "ledger_total": int(ledger_total),
            "attributed": int(attributed)}


async def order_currencies(db: AsyncSession, *, start: datetime, end: datetime
                           ) -> set[str]:
    """The currencies of the orders placed in ``[start, end)``."""
    rows = await db.scalars(select(Order.currency).where(
        Order.created_at >= start, Order.created_at < end).distinct())
    return {str(c).lower() for c in rows}


async def gross_by_day(db: AsyncSession, *, currency: str, start: datetime, end: datetime
                       ) -> list[tuple[str, int]]:
    day = _day(Order.created_at)
    rows = await db.execute(select(day, func.sum(Order.total_amount))
                            .where(Order.currency == currency, Order.created_at >= start,
                                   Order.created_at < end)
                            .group_by(day).order_by(day))
    return [(str(d), int(v or 0)) for d, v in rows]


async def top_videos(db: AsyncSession, *, currency: str, start: datetime, end: datetime,
                     limit: int = 5) -> list[dict[str, Any]]:
    """Last-touch revenue net of refunds and disputes per video, with its title; a video
    id the catalog does not know (an unknown creative) has ``known`` False."""
    total = func.sum(LedgerEntry.gross)
    rows = await db.execute(
        select(LedgerEntry.video_id, Video.id, Video.title, total.label("net"),
               func.count(func.distinct(LedgerEntry.order_id)).label("orders"))
        .join(Video, Video.id == LedgerEntry.video_id, isouter=True)
        .where(LedgerEntry.model == "last_touch", LedgerEntry.video_id.is_not(None),
               LedgerEntry.currency == currency, LedgerEntry.order_at >= start,
               LedgerEntry.order_at < end)
        .group_by(LedgerEntry.video_id, Video.id, Video.title)
        .order_by(total.desc(), LedgerEntry.video_id).limit(limit))
    return [{"id": vid, "title": title or vid, "known": known is not None,
             "net": int(net or 0), "orders": int(orders)}
            for vid, known, title, net, orders in rows]


async def top_agents(db: AsyncSession, *, currency: str, start: datetime, end: datetime,
                     limit: int = 5) -> list[dict[str, Any]]:
    total = func.sum(Order.total_amount)
    rows = await db.execute(
        select(Order.agent_id, Agent.name, total.label("gross"), func.count().label("orders"))
        .join(Agent, Agent.id == Order.agent_id, isouter=True)
        .where(Order.currency == currency, Order.created_at >= start, Order.created_at < end)
        .group_by(Order.agent_id, Agent.name).order_by(total.desc(), Order.agent_id)
        .limit(limit))
    return [{"id": aid, "name": name or aid, "gross": int(gross or 0), "orders": int(n)}
            for aid, name, gross, n in rows]


async def alerts(db: AsyncSession, *, limit: int = 5) -> dict[str, Any]:
    """What needs the merchant: orders in manual review or whose forwarding needs
    attention, dead letters, open disputes by evidence due date."""
    from models import Dispute
    from orders.disputes import CLOSED

    attention = or_(Order.status == "manual_review", Order.forwarding_status == "needs_attention")
    attention_count = await db.scalar(select(func.count()).where(attention)) or 0
    attention_rows = list(await db.scalars(select(Order).where(attention)
                                           .order_by(Order.created_at.desc()).limit(limit)))
    dead_count = await db.scalar(select(func.count()).where(
        OutboxMessage.status == OutboxStatus.failed)) or 0
    open_dispute = Dispute.status.not_in([str(s) for s in CLOSED])
    dispute_count = await db.scalar(select(func.count()).where(open_dispute)) or 0
    disputes = (await db.execute(
        select(Dispute, Order.order_number).join(Order, Order.id == Dispute.order_id)
        .where(open_dispute)
        .order_by(Dispute.evidence_due_by.asc().nulls_last(), Dispute.created_at)
        .limit(limit))).all()
    return {"attention_count": int(attention_count), "attention": attention_rows,
            "dead_count": int(dead_count), "dispute_count": int(dispute_count),
            "disputes": [{"dispute": d, "order_number": n} for d, n in disputes]}


# ------------------------------------------------------------------ names


async def video_titles(db: AsyncSession, ids: list[str]) -> dict[str, str | None]:
    """Titles of the videos the catalog knows among ``ids`` (unknown ids are absent)."""
    wanted = [i for i in {*ids} if i]
    if not wanted:
        return {}
    rows = await db.execute(select(Video.id, Video.title).where(Video.id.in_(wanted)))
    return {vid: title for vid, title in rows}


async def actor_names(db: AsyncSession, actors: list[str]) -> dict[str, str]:
    """``agent:<id>`` → the agent's name, ``merchant:<key id>`` → the key's name,
    ``user:<name>`` → the user name; anything else as it is."""
    from models import MerchantApiKey

    agent_ids = [a.split(":", 1)[1] for a in actors if a.startswith("agent:")]
    key_ids = [a.split(":", 1)[1] for a in actors if a.startswith("merchant:")]
    agents = dict((await db.execute(select(Agent.id, Agent.name).where(
        Agent.id.in_(agent_ids)))).all()) if agent_ids else {}
    keys = dict((await db.execute(select(MerchantApiKey.id, MerchantApiKey.name).where(
        MerchantApiKey.id.in_(key_ids)))).all()) if key_ids else {}
    out: dict[str, str] = {}
    for actor in actors:
        kind, _, ref = actor.partition(":")
        if kind == "agent" and ref in agents:
            out[actor] = f"{agents[ref]} (agent)"
        elif kind == "merchant" and ref in keys:
            out[actor] = f"{keys[ref]} (merchant API key)"
        elif actor == "merchant:mk_development":  # REELCART_MERCHANT_API_KEYS
            out[actor] = "development (merchant API key)"
        elif kind == "user" and ref:
            out[actor] = f"{ref} (dashboard)"
        else:
            out[actor] = {"stripe": "Stripe", "shopify": "Shopify", "capture": "Capture worker",
                          "recovery": "Recovery worker"}.get(actor, actor)
    return out


async def remix_tree(db: AsyncSession, video_id: str, depth: int = 20, width: int = 200
                     ) -> dict[str, Any] | None:
    """The remix family of a video: from its oldest known ancestor down, each node
    ``{id, title, generator, children}``. Bounded (lineage is merchant input)."""
    root = await db.get(Video, video_id)
    if root is None:
        return None
    seen = {root.id}
    while root.parent_video_id and len(seen) < depth:
        parent = await db.get(Video, root.parent_video_id)
        if parent is None or parent.id in seen:
            break
        seen.add(parent.id)
        root = parent
    nodes: dict[str, dict[str, Any]] = {root.id: {"id": root.id, "title": root.title or root.id,
                                                  "generator": root.generator, "children": []}}
    level, count = [root.id], 1
    for _ in range(depth):
        if not level or count >= width:
            break
        children = list(await db.scalars(select(Video).where(
            Video.parent_video_id.in_(level)).order_by(Video.created_at, Video.id)
            .limit(width - count)))
        level = []
        for child in children:
            if child.id in nodes:
                continue
            node: dict[str, Any] = {"id": child.id, "title": child.title or child.id,
                    "generator": child.generator, "children": []}
            nodes[child.id] = node
            nodes[child.parent_video_id or ""]["children"].append(node)
            level.append(child.id)
            count += 1
    return nodes[root.id]


async def unknown_creatives(db: AsyncSession, limit: int = 20) -> list[dict[str, Any]]:
    """Video ids credited in the ledger that the video catalog does not know."""
    total = func.sum(LedgerEntry.gross)
    rows = await db.execute(
        select(LedgerEntry.video_id, LedgerEntry.currency, total,
               func.count(func.distinct(LedgerEntry.order_id)))
        .join(Video, Video.id == LedgerEntry.video_id, isouter=True)
        .where(LedgerEntry.model == "last_touch", LedgerEntry.video_id.is_not(None),
               Video.id.is_(None))
        .group_by(LedgerEntry.video_id, LedgerEntry.currency)
        .order_by(total.desc(), LedgerEntry.video_id).limit(limit))
    return [{"id": vid, "currency": cur, "net": int(net or 0), "orders": int(n)}
            for vid, cur, net, n in rows]
