"""SQL for links, link touches and pixel view counts (the funnel's reads are in
``links.funnel``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import BigInteger, Date, String, Table, literal, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from links.schemas import LinkTarget
from models import LinkTouch, Product, ShoppableLink, Video, VideoViewCount
from models.base import UTCDateTime, utc_now

TOUCHES = cast(Table, LinkTouch.__table__)
VIEW_COUNTS = cast(Table, VideoViewCount.__table__)

_TARGET = (select(ShoppableLink.code, ShoppableLink.video_id, ShoppableLink.channel,
                  ShoppableLink.destination_url, Product.url, Video.campaign)
           .join(Video, Video.id == ShoppableLink.video_id)
           .outerjoin(Product, Product.id == ShoppableLink.product_id))


async def target(db: AsyncSession, code: str) -> LinkTarget | None:
    row = (await db.execute(_TARGET.where(ShoppableLink.code == code))).first()
    if row is None:
        return None
    code_, video_id, channel, destination, product_url, campaign = row
    return LinkTarget(code_, video_id, channel, destination or product_url, campaign)


async def insert_touches(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    """One executemany of a cached statement (batched into multi-row INSERTs by the
    driver layer); a row already there (a retried batch) is skipped."""
    if not rows:
        return
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    await conn.execute(insert(TOUCHES).on_conflict_do_nothing(index_elements=["id"]), rows)


async def count_pixel_views(conn: AsyncConnection, video_id: str, day: date, count: int,
                            at: datetime) -> None:
    """``video_view_counts`` (source ``pixel``) + ``count``: one upsert, safe under
    concurrency (other processes add to the same row); nothing for a video deleted since
    (so one such view never blocks a batch)."""
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    source = select(Video.id, literal(day, Date), literal("pixel", String),
                    literal(count, BigInteger), literal(at, UTCDateTime())).where(
        Video.id == video_id)
    stmt = insert(VIEW_COUNTS).from_select(
        ["video_id", "day", "source", "views", "updated_at"], source)
    await conn.execute(stmt.on_conflict_do_update(
        index_elements=["video_id", "day", "source"],
        set_={"views": VIEW_COUNTS.c.views + count, "updated_at": at}))


async def find_link(db: AsyncSession, video_id: str, product_id: str, channel: str,
                    *, for_update: bool = False) -> ShoppableLink | None:
    stmt = select(ShoppableLink).where(ShoppableLink.video_id == video_id,
                                       ShoppableLink.product_id == product_id,
                                       ShoppableLink.channel == channel)
    if for_update:
        stmt = stmt.with_for_update()
    return cast(ShoppableLink | None, await db.scalar(stmt))


async def insert_link_once(db: AsyncSession, values: dict[str, Any]) -> bool:
    """Insert unless the (video, product, channel) link or the code exists; True if new."""
    insert = pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
    result = await db.execute(insert(ShoppableLink).values(
        **values, created_at=utc_now()).on_conflict_do_nothing())
    return bool(getattr(result, "rowcount", 0))


async def get_link(db: AsyncSession, code: str) -> ShoppableLink | None:
    return await db.get(ShoppableLink, code)


async def list_links(db: AsyncSession, *, video_id: str | None, product_id: str | None,
                     channel: str | None, limit: int, offset: int) -> list[ShoppableLink]:
    stmt = select(ShoppableLink)
    if video_id:
        stmt = stmt.where(ShoppableLink.video_id == video_id)
    if product_id:
        stmt = stmt.where(ShoppableLink.product_id == product_id)
    if channel:
        stmt = stmt.where(ShoppableLink.channel == channel)
    rows = await db.scalars(stmt.order_by(ShoppableLink.created_at.desc(), ShoppableLink.code)
                            .limit(limit).offset(offset))
    return list(rows)


async def links_for_products(db: AsyncSession, product_ids: Sequence[str]
                             ) -> dict[str, list[ShoppableLink]]:
    """Links per product, newest first."""
    if not product_ids:
        return {}
    stmt = select(ShoppableLink).where(ShoppableLink.product_id.in_(list(product_ids)))
    out: dict[str, list[ShoppableLink]] = {}
    for link in await db.scalars(stmt.order_by(ShoppableLink.product_id,
                                               ShoppableLink.created_at.desc(),
                                               ShoppableLink.code)):
        out.setdefault(link.product_id, []).append(link)
    return out


async def click(db: AsyncSession, click_id: str) -> LinkTouch | None:
    return await db.get(LinkTouch, click_id)


async def visitor_touches(db: AsyncSession, visitor: str, *, before: datetime,
                          after: datetime | None, limit: int = 500) -> list[LinkTouch]:
    """A visitor's clicks and views up to ``before`` (newest ``limit``), oldest first."""
    stmt = select(LinkTouch).where(LinkTouch.visitor == visitor,
                                   LinkTouch.touched_at <= before)
    if after is not None:
        stmt = stmt.where(LinkTouch.touched_at >= after)
    rows = list(await db.scalars(stmt.order_by(LinkTouch.touched_at.desc()).limit(limit)))
    return rows[::-1]


async def latest_visitor_touch(db: AsyncSession, visitor: str, *, before: datetime
                               ) -> LinkTouch | None:
    """The visitor's latest click, else latest view."""
    for kind in ("click", "view"):
        found = await db.scalar(select(LinkTouch).where(
            LinkTouch.visitor == visitor, LinkTouch.kind == kind,
            LinkTouch.touched_at <= before).order_by(LinkTouch.touched_at.desc()).limit(1))
        if found is not None:
            return cast(LinkTouch, found)
    return None
