"""All SQL for the Etsy integration."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from etsy.schemas import LinkRow, ReceiptLine
from models import (
    Agent,
    EtsyConflict,
    EtsyConnection,
    EtsyListingLink,
    EtsyReceipt,
    EtsyVideoPush,
    Variant,
    Video,
    VideoProduct,
)
from models.base import new_id, utc_now
from models.creative import promoted_first

CONNECTION_ID = "default"
VARIANTS = cast(Table, Variant.__table__)


def _insert(db: AsyncSession) -> Any:
    return pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert


async def connection(db: AsyncSession, *, for_update: bool = False) -> EtsyConnection | None:
    stmt = select(EtsyConnection).where(EtsyConnection.id == CONNECTION_ID)
    if for_update:
        stmt = stmt.with_for_update()
    return await db.scalar(stmt.execution_options(populate_existing=True))


async def ensure_connection(db: AsyncSession) -> EtsyConnection:
    await db.execute(_insert(db)(EtsyConnection).values(
        id=CONNECTION_ID, rate_limited_count=0, updated_at=utc_now()).on_conflict_do_nothing())
    found = await connection(db, for_update=True)
    assert found is not None
    return found


async def stock_of(db: AsyncSession, product_ids: list[str]) -> dict[str, int | None]:
    rows = await db.execute(select(Variant.id, Variant.stock).where(
        Variant.product_id.in_(product_ids)))
    return {vid: stock for vid, stock in rows}


async def existing_variants(db: AsyncSession, ids: list[str]) -> dict[str, str]:
    if not ids:
        return {}
    rows = await db.execute(select(Variant.id, Variant.product_id).where(Variant.id.in_(ids)))
    return {vid: pid for vid, pid in rows}


async def upsert_links(db: AsyncSession, rows: Iterable[LinkRow]) -> None:
    now = utc_now()
    for row in rows:
        values = {"product_id": row.product_id, "listing_id": row.listing_id,
                  "etsy_product_id": row.etsy_product_id, "offering_id": row.offering_id,
                  "sku": row.sku, "property_key": row.property_key, "updated_at": now}
        await db.execute(_insert(db)(EtsyListingLink).values(variant_id=row.variant_id, **values)
                         .on_conflict_do_update(index_elements=["variant_id"], set_=values))


# Built once: every paid order asks (``etsy.hooks.stock_sold``).
_LINKS_OF_VARIANTS = select(EtsyListingLink).where(
    EtsyListingLink.variant_id.in_(bindparam("ids", expanding=True)))


async def links_of_variants(db: AsyncSession, variant_ids: list[str]) -> list[EtsyListingLink]:
    if not variant_ids:
        return []
    return list(await db.scalars(_LINKS_OF_VARIANTS, {"ids": variant_ids}))


async def links_of_listing(db: AsyncSession, listing_id: str) -> list[EtsyListingLink]:
    return list(await db.scalars(select(EtsyListingLink).where(
        EtsyListingLink.listing_id == listing_id).order_by(EtsyListingLink.variant_id)))


async def variant_for_line(db: AsyncSession, line: ReceiptLine) -> str | None:
    """Which of our variants an Etsy transaction sold: its current product id, else its
    SKU, else its property values, else the listing's only product."""
    links = await links_of_listing(db, line.listing_id)
    for matches in ((lambda k: line.etsy_product_id is not None
                     and k.etsy_product_id == line.etsy_product_id),
                    (lambda k: line.sku is not None and k.sku == line.sku),
                    (lambda k: bool(line.property_key) and k.property_key == line.property_key)):
        found = [k for k in links if matches(k)]
        if len(found) == 1:
            return found[0].variant_id
    return links[0].variant_id if len(links) == 1 else None


async def take_stock(db: AsyncSession, variant_id: str, quantity: int) -> bool:
    """Decrement a tracked variant's stock only if enough is left (the same conditional
    UPDATE checkout uses): two channels can never both take the last unit."""
    result = await db.execute(
        update(VARIANTS).where(VARIANTS.c.id == variant_id, VARIANTS.c.stock.is_not(None),
                               VARIANTS.c.stock >= quantity)
        .values(stock=VARIANTS.c.stock - quantity))
    if result.rowcount:  # type: ignore[attr-defined]
        return True
    tracked = await db.scalar(select(Variant.stock).where(Variant.id == variant_id))
    return tracked is None


async def current_stock(db: AsyncSession, variant_ids: list[str]) -> dict[str, int | None]:
    rows = await db.execute(select(Variant.id, Variant.stock).where(Variant.id.in_(variant_ids)))
    return {vid: stock for vid, stock in rows}


async def claim_receipt(db: AsyncSession, receipt_id: str, order_id: str) -> bool:
    """Record a receipt once (ON CONFLICT DO NOTHING): False if it was taken before."""
    result = await db.execute(_insert(db)(EtsyReceipt).values(
        receipt_id=receipt_id, order_id=order_id, created_at=utc_now())
        .on_conflict_do_nothing(index_elements=["receipt_id"]))
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def receipt_of_order(db: AsyncSession, order_id: str) -> EtsyReceipt | None:
    return await db.scalar(select(EtsyReceipt).where(EtsyReceipt.order_id == order_id))


async def channel_agent(db: AsyncSession, name: str) -> str:
    """The agent row Etsy orders are filed under (the ``etsy`` channel)."""
    await db.execute(_insert(db)(Agent).values(id="agt_etsy", name=name, created_at=utc_now())
                     .on_conflict_do_nothing())
    found = await db.scalar(select(Agent.id).where(Agent.name == name))
    assert found is not None
    return found


async def add_conflict(db: AsyncSession, kind: str, *, receipt_id: str | None = None,
                       order_id: str | None = None, variant_id: str | None = None,
                       detail: dict[str, Any] | None = None) -> None:
    db.add(EtsyConflict(id=new_id("etc"), kind=kind, receipt_id=receipt_id, order_id=order_id,
                        variant_id=variant_id, detail=detail or {}, created_at=utc_now()))
    await db.flush()


async def open_conflicts(db: AsyncSession, limit: int = 50) -> list[EtsyConflict]:
    return list(await db.scalars(select(EtsyConflict).where(EtsyConflict.resolved_at.is_(None))
                                 .order_by(EtsyConflict.created_at.desc()).limit(limit)))


async def linked_listings(db: AsyncSession) -> dict[str, str]:
    """product id → Etsy listing id, for every product linked to a listing."""
    rows = await db.execute(select(EtsyListingLink.product_id, EtsyListingLink.listing_id)
                            .distinct())
    return {pid: lid for pid, lid in rows}


async def featured_videos(db: AsyncSession, product_ids: list[str]
                          ) -> dict[str, tuple[str, str]]:
    """product id → (video id, file URL) of its featured video: the one promoted for it
    (an experiment's winner), else the newest generated video featuring it that has a file
    (``source_url``)."""
    if not product_ids:
        return {}
    rows = await db.execute(
        select(VideoProduct.product_id, Video.id, Video.source_url)
        .join(Video, Video.id == VideoProduct.video_id)
        .where(VideoProduct.product_id.in_(product_ids), Video.source_url.is_not(None))
        .order_by(VideoProduct.product_id, promoted_first(VideoProduct.product_id, Video.id),
                  Video.published_at.desc(), Video.created_at.desc(), Video.id.desc()))
    out: dict[str, tuple[str, str]] = {}
    for product_id, video_id, url in rows:
        if url:
            out.setdefault(product_id, (video_id, url))
    return out


async def video_pushes(db: AsyncSession) -> dict[str, EtsyVideoPush]:
    return {p.product_id: p for p in await db.scalars(select(EtsyVideoPush))}


async def record_video_push(db: AsyncSession, product_id: str, listing_id: str,
                            video_id: str, etsy_video_id: str | None, at: datetime) -> None:
    values = {"listing_id": listing_id, "video_id": video_id, "etsy_video_id": etsy_video_id,
              "pushed_at": at}
    await db.execute(_insert(db)(EtsyVideoPush).values(product_id=product_id, **values)
                     .on_conflict_do_update(index_elements=["product_id"], set_=values))


async def health(db: AsyncSession) -> dict[str, Any]:
    """Integration health for the dashboard: connection, last runs, errors, rate limits,
    queued pushes and open conflicts."""
    from sqlalchemy import func

    from models import OutboxMessage

    row = await connection(db)
    queues = {}
    for topic in ("etsy_stock", "etsy_tracking"):
        counts = dict((await db.execute(
            select(OutboxMessage.status, func.count()).where(OutboxMessage.topic == topic)
            .group_by(OutboxMessage.status))).all())
        queues[topic] = {"pending": counts.get("pending", 0), "failed": counts.get("failed", 0)}
    return {"row": row, "connected": bool(row and (row.refresh_token_enc
                                                      or row.access_token_enc)),
            "queues": queues, "conflicts": await open_conflicts(db, 20)}


async def record_click(db: AsyncSession, listing_id: str, video_id: str,
                       campaign: str | None) -> None:
    from models import EtsyLinkClick

    db.add(EtsyLinkClick(id=new_id("clk"), listing_id=listing_id, video_id=video_id,
                         campaign=campaign, clicked_at=utc_now()))
    await db.flush()


async def latest_click(db: AsyncSession, listing_ids: list[str], *, before: datetime,
                       after: datetime | None) -> Any:
    """The most recent shoppable-link click on any of these listings in the window."""
    from models import EtsyLinkClick

    stmt = (select(EtsyLinkClick).where(EtsyLinkClick.listing_id.in_(listing_ids),
                                        EtsyLinkClick.clicked_at <= before)
            .order_by(EtsyLinkClick.clicked_at.desc()).limit(1))
    if after is not None:
        stmt = stmt.where(EtsyLinkClick.clicked_at >= after)
    return await db.scalar(stmt)


async def add_order_event(db: AsyncSession, order_id: str, type_: str,
                          data: dict[str, Any]) -> None:
    """An entry in the order's history, by the ``etsy`` actor."""
    from models import OrderEvent

    db.add(OrderEvent(order_id=order_id, type=type_, actor="etsy", data=data,
                      created_at=utc_now()))
