from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import BigInteger, cast, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Product, Video, VideoProduct


async def products_of(db: AsyncSession, video_ids: Iterable[str]
                      ) -> dict[str, list[tuple[str, str | None]]]:
    ids = list(video_ids)
    out: dict[str, list[tuple[str, str | None]]] = {i: [] for i in ids}
    if not ids:
        return out
    rows = await db.execute(select(VideoProduct.video_id, VideoProduct.product_id,
                                   VideoProduct.variant_id)
                            .where(VideoProduct.video_id.in_(ids))
                            .order_by(VideoProduct.product_id))
    for video_id, product_id, variant_id in rows:
        out[video_id].append((product_id, variant_id))
    return out


async def replace_products(db: AsyncSession, video_id: str,
                           products: list[tuple[str, str | None]]) -> None:
    await db.execute(delete(VideoProduct).where(VideoProduct.video_id == video_id))
    for product_id, variant_id in products:
        db.add(VideoProduct(video_id=video_id, product_id=product_id, variant_id=variant_id))


async def existing_products(db: AsyncSession, ids: Iterable[str]) -> set[str]:
    wanted = list(set(ids))
    if not wanted:
        return set()
    return set(await db.scalars(select(Product.id).where(Product.id.in_(wanted))))


async def page(db: AsyncSession, *, limit: int, offset: int, product_id: str | None,
               campaign: str | None, generator: str | None) -> tuple[int, list[Video]]:
    stmt = select(Video)
    if product_id:
        stmt = stmt.join(VideoProduct, VideoProduct.video_id == Video.id).where(
            VideoProduct.product_id == product_id)
    if campaign:
        stmt = stmt.where(Video.campaign == campaign)
    if generator:
        stmt = stmt.where(Video.generator == generator)
    total = await db.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = await db.scalars(stmt.order_by(Video.created_at.desc(), Video.id)
                            .limit(limit).offset(offset))
    return int(total), list(rows)


async def lineage(db: AsyncSession, video_id: str, depth: int = 50) -> list[str]:
    """The chain of ancestors, nearest first (bounded: lineage data is merchant input)."""
    chain: list[str] = []
    current = await db.get(Video, video_id)
    while current is not None and current.parent_video_id and len(chain) < depth:
        chain.append(current.parent_video_id)
        current = await db.get(Video, current.parent_video_id)
    return chain


async def videos_for_products(db: AsyncSession, product_ids: list[str]
                              ) -> dict[str, list[Video]]:
    if not product_ids:
        return {}
    rows = await db.execute(select(VideoProduct.product_id, Video)
                            .join(Video, Video.id == VideoProduct.video_id)
                            .where(VideoProduct.product_id.in_(product_ids))
                            .order_by(VideoProduct.product_id, Video.published_at.desc(),
                                      Video.id))
    out: dict[str, list[Video]] = {}
    for product_id, video in rows:
        out.setdefault(product_id, []).append(video)
    return out


async def revenue(db: AsyncSession, *, group_by: str, model: str, start: datetime | None,
                  end: datetime | None, view: str) -> list[dict[str, object]]:
    """Ledger sums per group; cash view dates by order, accrual view by touch."""
    from models import LedgerEntry

    column = {"video": LedgerEntry.video_id, "campaign": LedgerEntry.campaign,
              "creator": LedgerEntry.creator, "generator": LedgerEntry.generator,
              "agent": LedgerEntry.agent_id}[group_by]
    when = LedgerEntry.order_at if view == "cash" else func.coalesce(
        LedgerEntry.touch_at, LedgerEntry.order_at)
    stmt = (select(column.label("key"), LedgerEntry.currency,
                   func.count(func.distinct(LedgerEntry.order_id)).label("orders"),
                   *[cast(func.sum(getattr(LedgerEntry, c)), BigInteger).label(c) for c in (
                       "gross", "discount", "tax", "shipping", "commissionable", "fee", "net")])
            .where(LedgerEntry.model == model)
            .group_by(column, LedgerEntry.currency).order_by(column))
    if start is not None:
        stmt = stmt.where(when >= start)
    if end is not None:
        stmt = stmt.where(when < end)
    return [dict(row._mapping) for row in await db.execute(stmt)]
