"""All SQL for the catalog (products and variants)."""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, cast

import orjson
from sqlalchemy import Table, bindparam, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from models import Product, Variant
from models.prepared import Prepared

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
_VARIANT_BY_ID = Prepared(select(*(VARIANTS.c[c] for c in _VIEW_COLUMNS)).where(
    VARIANTS.c.id == bindparam("id")))


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
# What an import writes (and compares to tell "unchanged" from "updated"), in the order of
# the value tuples the importer passes around.
PRODUCT_COLUMNS = ("title", "description", "url", "brand", "media")
VARIANT_COLUMNS = ("title", "description", "sku", "url", "image_url", "price_amount",
                   "list_price_amount", "currency", "stock", "availability",
                   "requires_shipping", "variant_options", "categories", "is_eligible_search",
                   "is_eligible_checkout", "shopify_variant_id")
# JSON columns: the importer passes them serialized (``json_text``), as stored.
JSON_COLUMNS = frozenset({"media", "variant_options", "categories"})
# Columns the search index reads (the triggers of migrations 0401/1641 fire on these).
SEARCHABLE_PRODUCT_COLUMNS = frozenset({"title", "brand", "description"})
SEARCHABLE_VARIANT_COLUMNS = frozenset({"title", "description", "sku", "categories",
                                        "variant_options"})


def json_text(value: Any) -> str:
    """A JSON column's value as the engines of ``models.db`` serialize it (orjson)."""
    return orjson.dumps(value).decode()


def _ids_condition(dialect: str, column: str) -> str:
    """``column`` is one of the ``:ids`` (one parameter, however many ids)."""
    return (f"{column} IN (SELECT value FROM json_each(:ids))" if dialect == "sqlite"
            else f"{column} = ANY(:ids)")


def _ids_param(dialect: str, ids: list[str]) -> Any:
    return json_text(ids) if dialect == "sqlite" else ids


@dataclass(frozen=True, slots=True)
class StoredCatalog:
    """What an import batch compares with, as the driver returns it: ``products`` id →
    values in ``PRODUCT_COLUMNS`` order; ``variants`` id → (owning product id, *values in
    ``VARIANT_COLUMNS`` order). ``json_as_text``: JSON columns come as their stored text
    (SQLite), else decoded (PostgreSQL)."""

    products: dict[str, tuple[Any, ...]]
    variants: dict[str, tuple[Any, ...]]
    json_as_text: bool


async def stored_for_import(db: AsyncSession, product_ids: list[str], variant_ids: list[str]
                            ) -> StoredCatalog:
    """The stored products with these ids, and the stored variants with these ids whoever
    owns them (their owner tells a clash): two queries, plain driver rows (no ORM entities,
    no per-column result processing)."""
    dialect = db.get_bind().dialect.name
    products = await db.execute(text(
        f"SELECT id, {', '.join(PRODUCT_COLUMNS)} FROM products "
        f"WHERE {_ids_condition(dialect, 'id')}"), {"ids": _ids_param(dialect, product_ids)})
    variants = await db.execute(text(
        f"SELECT id, product_id, {', '.join(VARIANT_COLUMNS)} FROM variants "
        f"WHERE {_ids_condition(dialect, 'id')}"), {"ids": _ids_param(dialect, variant_ids)})
    return StoredCatalog(products={row[0]: tuple(row[1:]) for row in products.all()},
                         variants={row[0]: tuple(row[1:]) for row in variants.all()},
                         json_as_text=dialect == "sqlite")


@dataclass(slots=True)
class CatalogWrites:
    """One import batch's writes. Rows are value tuples in the column order given;
    JSON columns serialized with ``json_text``. Updates carry only changed columns:
    (columns, row id, product id, values)."""

    new_products: list[tuple[Any, ...]] = field(default_factory=list)  # id, *PRODUCT_COLUMNS
    new_variants: list[tuple[Any, ...]] = field(  # id, product_id, *VARIANT_COLUMNS
        default_factory=list)
    product_updates: list[tuple[tuple[str, ...], str, str, tuple[Any, ...]]] = field(
        default_factory=list)
    variant_updates: list[tuple[tuple[str, ...], str, str, tuple[Any, ...]]] = field(
        default_factory=list)

    def reindexed(self) -> set[str]:
        """Products whose search document these writes change."""
        out = {row[0] for row in self.new_products}
        out.update(row[1] for row in self.new_variants)
        out.update(pid for columns, _, pid, _ in self.product_updates
                   if not SEARCHABLE_PRODUCT_COLUMNS.isdisjoint(columns))
        out.update(pid for columns, _, pid, _ in self.variant_updates
                   if not SEARCHABLE_VARIANT_COLUMNS.isdisjoint(columns))
        return out


async def write_catalog(db: AsyncSession, writes: CatalogWrites, now: datetime) -> None:
    """One import batch in a few multi-row statements, the search index rebuilt once.

    Rows changing the same columns share one executemany, and only changed columns are
    written. The per-row search triggers are deferred for these writes (migration 1641),
    and the documents of the products they touch are rebuilt in one statement at the end,
    inside the caller's transaction: readers see the rows and their documents together."""
    dialect = db.get_bind().dialect.name
    reindexed = sorted(writes.reindexed())
    if reindexed:
        await _defer_search_triggers(db, dialect, True)
    try:
        for table, first, rows in (
                (PRODUCTS, ("id",), writes.new_products),
                (VARIANTS, ("id", "product_id"), writes.new_variants)):
            if rows:
                columns = (*first, *(PRODUCT_COLUMNS if table is PRODUCTS
                                     else VARIANT_COLUMNS), "created_at", "updated_at")
                await _executemany(db, table.insert().values(
                    {c: bindparam(c) for c in columns}), columns,
                    [(*row, now, now) for row in rows])
        for table, updates in ((PRODUCTS, writes.product_updates),
                               (VARIANTS, writes.variant_updates)):
            groups: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
            for columns, row_id, _, values in updates:
                groups.setdefault(columns, []).append((*values, now, row_id))
            for columns, rows in groups.items():
                names = (*columns, "updated_at", "_id")
                await _executemany(db, table.update().where(table.c.id == bindparam("_id"))
                                   .values({c: bindparam(c) for c in names[:-1]}), names,
                                   rows)
        if reindexed:
            await _rebuild_search(db, dialect, reindexed)
    except BaseException:
        if reindexed:  # the caller may go on in this transaction (or savepoint)
            with suppress(Exception):
                await _defer_search_triggers(db, dialect, False)
        raise
    if reindexed:
        await _defer_search_triggers(db, dialect, False)


async def _defer_search_triggers(db: AsyncSession, dialect: str, defer: bool) -> None:
    """Turn the search triggers' deferral (migration 1641) on or off in this transaction:
    SQLite, a row no other connection can see (one writer) while the transaction holds the
    write lock; PostgreSQL, a transaction-local setting."""
    if dialect == "sqlite":
        await db.execute(text("INSERT INTO catalog_search_deferred (id) VALUES (1)" if defer
                              else "DELETE FROM catalog_search_deferred"))
    else:
        await db.execute(text("SELECT set_config('reelcart.catalog_search_deferred', "
                              ":value, true)"), {"value": "on" if defer else "off"})


async def _rebuild_search(db: AsyncSession, dialect: str, product_ids: list[str]) -> None:
    """Rewrite these products' search documents (one statement per back end)."""
    ids = _ids_param(dialect, product_ids)
    if dialect == "sqlite":
        await db.execute(text(
            "DELETE FROM catalog_search WHERE rowid IN (SELECT rowid FROM products WHERE "
            f"{_ids_condition(dialect, 'id')})"), {"ids": ids})
        await db.execute(text(
            "INSERT INTO catalog_search (rowid, product_id, title, brand, tags, body) "
            "SELECT product_rowid, product_id, title, brand, tags, body "
            f"FROM catalog_search_documents WHERE {_ids_condition(dialect, 'product_id')}"),
            {"ids": ids})
    else:
        await db.execute(text("SELECT catalog_search_refresh_many(:ids)"), {"ids": ids})


async def _executemany(db: AsyncSession, stmt: Any, names: tuple[str, ...],
                       rows: list[tuple[Any, ...]]) -> None:
    """``stmt`` for every row (tuples in ``names`` order) in one driver ``executemany``.
    The column types' own bind processors (booleans, timestamps) convert the values
    column by column, instead of through the per-row parameter machinery; JSON columns
    come serialized already."""
    dialect = db.get_bind().dialect
    compiled = stmt.compile(dialect=dialect)
    index = {name: i for i, name in enumerate(names)}
    columns: list[list[Any]] = []
    for name in compiled.positiontup or []:
        i = index[name]
        values = [row[i] for row in rows]
        if name not in JSON_COLUMNS:
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
    result: Iterable[Any] = await (
        _VARIANT_BY_ID.execute(db, {"id": wanted[0]}) if len(wanted) == 1
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
