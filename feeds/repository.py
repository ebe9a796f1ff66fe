"""All SQL for the catalog (products and variants)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol, cast

from sqlalchemy import Table, bindparam, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from models import Product, Variant

VARIANTS = cast(Table, Variant.__table__)
# Checkout prices every create and update from this lookup: a Core statement built once
# (rows, not ORM entities) costs less than half as much per call.
# Only the columns a ``VariantView`` has: the others (categories' JSON, timestamps…) cost
# a conversion per row for nothing.
_VIEW_COLUMNS = ("id", "product_id", "title", "description", "sku", "image_url",
                 "price_amount", "currency", "stock", "availability", "requires_shipping",
                 "max_quantity_per_order", "variant_options", "is_eligible_checkout")
_VARIANTS_BY_ID = select(*(VARIANTS.c[c] for c in _VIEW_COLUMNS)).where(
    VARIANTS.c.id.in_(bindparam("ids", expanding=True)))
# One id (most carts): ``id = ?`` skips rewriting the expanding IN on every execution.
_VARIANT_BY_ID = select(*(VARIANTS.c[c] for c in _VIEW_COLUMNS)).where(
    VARIANTS.c.id == bindparam("id"))


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


assert set(_VIEW_COLUMNS) == {name for name in VariantView.__dict__
                              if isinstance(VariantView.__dict__[name], property)}


PRODUCTS = cast(Table, Product.__table__)
# What an import writes (and compares to tell "unchanged" from "updated").
PRODUCT_COLUMNS = ("title", "description", "url", "brand", "media")
VARIANT_COLUMNS = ("title", "description", "sku", "url", "image_url", "price_amount",
                   "list_price_amount", "currency", "stock", "availability",
                   "requires_shipping", "variant_options", "categories", "is_eligible_search",
                   "is_eligible_checkout", "shopify_variant_id")
# Columns the search index reads (migration 0401's triggers fire on updates of these).
SEARCHABLE_PRODUCT_COLUMNS = frozenset({"title", "brand", "description"})
SEARCHABLE_VARIANT_COLUMNS = frozenset({"title", "description", "sku", "categories",
                                        "variant_options"})
_PRODUCTS_FOR_IMPORT = select(PRODUCTS.c.id, *(PRODUCTS.c[c] for c in PRODUCT_COLUMNS)).where(
    PRODUCTS.c.id.in_(bindparam("ids", expanding=True)))
_VARIANTS_FOR_IMPORT = select(
    VARIANTS.c.id, VARIANTS.c.product_id, *(VARIANTS.c[c] for c in VARIANT_COLUMNS)).where(
    VARIANTS.c.product_id.in_(bindparam("ids", expanding=True)))
_VARIANT_OWNERS = select(VARIANTS.c.id, VARIANTS.c.product_id).where(
    VARIANTS.c.id.in_(bindparam("ids", expanding=True)))


async def catalog_for_import(db: AsyncSession, product_ids: list[str]
                             ) -> tuple[dict[str, tuple[Any, ...]], dict[str, Any]]:
    """The stored products (id → values in ``PRODUCT_COLUMNS`` order) and their variants
    (id → row), as plain rows: no ORM entities to build, track and flush."""
    products = {row[0]: tuple(row[1:]) for row in
                await db.execute(_PRODUCTS_FOR_IMPORT, {"ids": product_ids})}
    variants = {row.id: row for row in
                await db.execute(_VARIANTS_FOR_IMPORT, {"ids": product_ids})}
    return products, variants


async def variant_owners(db: AsyncSession, variant_ids: list[str]) -> dict[str, str]:
    """variant id → the product owning it, for ids stored anywhere in the catalog."""
    if not variant_ids:
        return {}
    return dict((await db.execute(_VARIANT_OWNERS, {"ids": variant_ids})).tuples().all())


async def write_catalog(db: AsyncSession, *, new_products: list[dict[str, Any]],
                        new_variants: list[dict[str, Any]],
                        product_updates: list[tuple[tuple[str, ...], dict[str, Any]]],
                        variant_updates: list[tuple[tuple[str, ...], dict[str, Any]]]
                        ) -> None:
    """One import batch in a few multi-row statements.

    Updates come as (changed columns, row with ``_id``); rows changing the same columns
    share one executemany, and only changed columns are written, so a price or stock
    change never fires the search index's triggers. On SQLite a new product's variants
    are inserted before the product (foreign keys checked at commit): each variant's
    trigger then finds no product yet, and the product's own trigger indexes it once with
    all its variants, instead of once per variant."""
    sqlite = db.get_bind().dialect.name == "sqlite"
    if sqlite and new_products:
        await db.execute(text("PRAGMA defer_foreign_keys = ON"))
    steps: list[tuple[Table, list[dict[str, Any]]]] = [
        (VARIANTS, new_variants), (PRODUCTS, new_products)] if sqlite else [
        (PRODUCTS, new_products), (VARIANTS, new_variants)]
    for table, rows in steps:
        if rows:
            await _executemany(db, table.insert().values(
                {c: bindparam(c) for c in rows[0]}), rows)
    for table, updates in ((PRODUCTS, product_updates), (VARIANTS, variant_updates)):
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for columns, row in updates:
            groups.setdefault(columns, []).append(row)
        for columns, rows in groups.items():
            await _executemany(db, table.update().where(table.c.id == bindparam("_id"))
                               .values({c: bindparam(c) for c in (*columns, "updated_at")}),
                               rows)


async def _executemany(db: AsyncSession, stmt: Any, rows: list[dict[str, Any]]) -> None:
    """``stmt`` for every row in one driver ``executemany``. The column types' own bind
    processors (JSON, booleans, timestamps) convert the values column by column, instead
    of through the per-row parameter machinery (the larger part of an import's time)."""
    dialect = db.get_bind().dialect
    compiled = stmt.compile(dialect=dialect)
    columns: list[list[Any]] = []
    for name in compiled.positiontup or []:
        values = [row[name] for row in rows]
        convert = compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
        if convert is not None:
            values = _converted(values, convert)
        columns.append(values)
    connection = await db.connection()
    await connection.exec_driver_sql(str(compiled), list(zip(*columns, strict=True)))


def _converted(values: list[Any], convert: Any) -> list[Any]:
    """Each value through ``convert`` (None stays None); a value repeated from the row
    before (the batch's one timestamp) is converted once."""
    out: list[Any] = []
    last: Any = object()
    done: Any = None
    for value in values:
        if value is not last:
            last, done = value, None if value is None else convert(value)
        out.append(done)
    return out


async def variants_by_ids(db: AsyncSession, ids: Iterable[str]) -> dict[str, VariantView]:
    """Catalog variants by id (read-only rows), for the importer and for checkout pricing."""
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return {}
    result = await (db.execute(_VARIANT_BY_ID, {"id": wanted[0]}) if len(wanted) == 1
                    else db.execute(_VARIANTS_BY_ID, {"ids": wanted}))
    return {row.id: row for row in result}


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
