"""All SQL for the catalog (products and variants)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol, cast

from sqlalchemy import Table, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Product, Variant

VARIANTS = cast(Table, Variant.__table__)
# Checkout prices every create and update from this lookup: a Core statement built once
# (rows, not ORM entities) costs less than half as much per call.
_VARIANTS_BY_ID = select(VARIANTS).where(VARIANTS.c.id.in_(bindparam("ids", expanding=True)))


class VariantView(Protocol):
    """A read-only variant row (a ``Variant`` entity fits too)."""

    @property
    def id(self) -> str: ...
    @property
    def product_id(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def description(self) -> str | None: ...
    @property
    def sku(self) -> str | None: ...
    @property
    def image_url(self) -> str | None: ...
    @property
    def price_amount(self) -> int: ...
    @property
    def currency(self) -> str: ...
    @property
    def stock(self) -> int | None: ...
    @property
    def availability(self) -> str: ...
    @property
    def requires_shipping(self) -> bool: ...
    @property
    def max_quantity_per_order(self) -> int | None: ...
    @property
    def variant_options(self) -> list[Any]: ...
    @property
    def is_eligible_checkout(self) -> bool: ...


async def products_with_variants(
    db: AsyncSession, product_ids: list[str]
) -> tuple[dict[str, Product], dict[str, Variant]]:
    products = {p.id: p for p in await db.scalars(
        select(Product).where(Product.id.in_(product_ids)))}
    variants = {v.id: v for v in await db.scalars(
        select(Variant).where(Variant.product_id.in_(product_ids)))}
    return products, variants


async def variants_by_ids(db: AsyncSession, ids: Iterable[str]) -> dict[str, VariantView]:
    """Catalog variants by id (read-only rows), for the importer and for checkout pricing."""
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return {}
    return {row.id: row for row in await db.execute(_VARIANTS_BY_ID, {"ids": wanted})}


async def product_page(db: AsyncSession, after: str | None, limit: int) -> list[Any]:
    """Products in id order (keyset pagination: constant cost per page at any depth)."""
    products = Product.__table__
    stmt = select(products.c.id, products.c.title, products.c.description, products.c.url,
                  products.c.brand, products.c.media).order_by(products.c.id).limit(limit)
    if after is not None:
        stmt = stmt.where(products.c.id > after)
    return list((await db.execute(stmt)).all())


async def variants_of(db: AsyncSession, product_ids: list[str]) -> list[Any]:
    variants = Variant.__table__
    stmt = (select(variants).where(variants.c.product_id.in_(product_ids))
            .order_by(variants.c.product_id, variants.c.id))
    return list((await db.execute(stmt)).all())


async def videos_of(db: AsyncSession, product_ids: list[str]
                    ) -> dict[str, list[tuple[str, str | None, str]]]:
    """Public URLs of the videos featuring each product: the promoted one first, then
    newest first."""
    from models import Video, VideoProduct
    from models.creative import promoted_first

    rows = await db.execute(
        select(VideoProduct.product_id, Video.published_url, Video.source_url, Video.title,
               Video.id)
        .join(Video, Video.id == VideoProduct.video_id)
        .where(VideoProduct.product_id.in_(product_ids))
        .order_by(VideoProduct.product_id,
                  promoted_first(VideoProduct.product_id, Video.id),  # an experiment's winner
                  Video.published_at.desc(), Video.id))
    out: dict[str, list[tuple[str, str | None, str]]] = {}
    for product_id, published, source, title, video_id in rows:
        url = published or source
        if url:
            out.setdefault(product_id, []).append((url, title, video_id))
    return out


# ------------------------------------------------------------ destination deliveries

async def start_delivery(db: AsyncSession, *, destination: str, run_id: str, mode: str,
                         file: str | None = None) -> str:
    """A delivery record, committed by the caller before the partner is called."""
    from models import DeliveryStatus, FeedDelivery
    from models.base import new_id, utc_now

    delivery = FeedDelivery(id=new_id("fd"), destination=destination, run_id=run_id,
                            mode=mode, status=DeliveryStatus.running, file=file,
                            started_at=utc_now())
    db.add(delivery)
    await db.flush()
    return delivery.id


async def finish_delivery(db: AsyncSession, delivery_id: str, **outcome: Any) -> None:
    from models import FeedDelivery
    from models.base import utc_now

    record = await db.get(FeedDelivery, delivery_id)
    if record is None:
        return
    for key, value in outcome.items():
        setattr(record, key, value)
    record.finished_at = utc_now()


async def known_items(db: AsyncSession, destination: str
                      ) -> dict[str, tuple[str, str | None]]:
    """item id → (content hash, stock hash) the destination last acknowledged."""
    from models import FeedDestinationItem

    rows = await db.execute(select(FeedDestinationItem.item_id,
                                   FeedDestinationItem.content_hash,
                                   FeedDestinationItem.stock_hash)
                            .where(FeedDestinationItem.destination == destination))
    return {item_id: (content, stock) for item_id, content, stock in rows}


async def acknowledge_items(db: AsyncSession, destination: str,
                            hashes: dict[str, tuple[str, str | None]]) -> None:
    from sqlalchemy.dialects.postgresql import insert as pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    from models import FeedDestinationItem
    from models.base import utc_now

    if not hashes:
        return
    insert = pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
    now = utc_now()
    stmt = insert(FeedDestinationItem).values([
        {"destination": destination, "item_id": item_id, "content_hash": content,
         "stock_hash": stock, "pushed_at": now}
        for item_id, (content, stock) in hashes.items()])
    await db.execute(stmt.on_conflict_do_update(
        index_elements=["destination", "item_id"],
        set_={"content_hash": stmt.excluded.content_hash,
              "stock_hash": stmt.excluded.stock_hash, "pushed_at": stmt.excluded.pushed_at}))


async def forget_items(db: AsyncSession, destination: str, item_ids: Iterable[str]) -> None:
    from sqlalchemy import delete

    from models import FeedDestinationItem

    ids = list(item_ids)
    if ids:
        await db.execute(delete(FeedDestinationItem).where(
            FeedDestinationItem.destination == destination,
            FeedDestinationItem.item_id.in_(ids)))


async def forget_all(db: AsyncSession, destination: str) -> None:
    """The destination lost track (e.g. an import failed): send everything next time."""
    from sqlalchemy import delete

    from models import FeedDestinationItem

    await db.execute(delete(FeedDestinationItem).where(
        FeedDestinationItem.destination == destination))


async def recent_deliveries(db: AsyncSession, limit: int = 100) -> list[Any]:
    from models import FeedDelivery

    return list(await db.scalars(select(FeedDelivery).order_by(
        FeedDelivery.started_at.desc(), FeedDelivery.id.desc()).limit(limit)))


async def open_deliveries(db: AsyncSession, destination: str) -> list[Any]:
    """Deliveries whose partner-side processing has not reached a final state."""
    from models import FeedDelivery

    return list(await db.scalars(select(FeedDelivery).where(
        FeedDelivery.destination == destination,
        FeedDelivery.remote_ref.is_not(None),
        FeedDelivery.remote_status.in_(("awaiting_upload", "processing")))))


async def destination_health(db: AsyncSession) -> list[dict[str, Any]]:
    """Per destination: the last delivery, the last success, failures since it."""
    from models import DeliveryStatus, FeedDelivery, FeedPush

    out: dict[str, dict[str, Any]] = {}
    rows = await db.scalars(select(FeedDelivery).order_by(FeedDelivery.started_at.desc())
                            .limit(500))
    for d in rows:
        entry = out.setdefault(d.destination, {"destination": d.destination, "last": d,
                                               "last_success": None, "failures": 0})
        if d.status == DeliveryStatus.succeeded and entry["last_success"] is None:
            entry["last_success"] = d.finished_at or d.started_at
        elif d.status == DeliveryStatus.failed and entry["last_success"] is None:
            entry["failures"] += 1
    from models import Agent

    names = dict((await db.execute(select(Agent.id, Agent.name))).tuples().all())
    pushes = await db.scalars(select(FeedPush).order_by(FeedPush.started_at.desc())
                              .limit(500))
    for p in pushes:
        key = f"acp_feed_api:{names.get(p.agent_id, p.agent_id)}"
        entry = out.setdefault(key, {"destination": key, "last": p, "last_success": None,
                                     "failures": 0})
        if p.status == DeliveryStatus.succeeded and entry["last_success"] is None:
            entry["last_success"] = p.finished_at or p.started_at
        elif p.status == DeliveryStatus.failed and entry["last_success"] is None:
            entry["failures"] += 1
    return sorted(out.values(), key=lambda e: e["destination"])


async def fail_stale_running(db: AsyncSession, before: Any) -> int:
    """Deliveries and pushes still ``running`` since before ``before`` belong to a process
    that stopped mid-way: close them as failed so health shows the truth."""
    from sqlalchemy import update

    from models import DeliveryStatus, FeedDelivery, FeedPush
    from models.base import utc_now

    closed = 0
    for table in (FeedDelivery, FeedPush):
        result = await db.execute(
            update(table).where(table.status == DeliveryStatus.running,
                                table.started_at < before)
            .values(status=DeliveryStatus.failed, finished_at=utc_now(),
                    error="interrupted: the process stopped during this delivery"))
        closed += int(getattr(result, "rowcount", 0) or 0)
    return closed
