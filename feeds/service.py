"""Catalog import: upsert parsed records, counting created / updated / unchanged."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from feeds import repository
from feeds.repository import (
    JSON_COLUMNS,
    PRODUCT_COLUMNS,
    VARIANT_COLUMNS,
    CatalogWrites,
    json_text,
)
from feeds.schemas import ImportReport, ProductRecord, RejectedRow, VariantRecord
from models.base import utc_now

BATCH = 500  # products per write transaction (short: the API's writers wait for it)


def _product_values(record: ProductRecord) -> tuple[Any, ...]:
    """``PRODUCT_COLUMNS`` as written: JSON serialized."""
    return (record.title, record.description, record.url, record.brand,
            json_text(record.media))


def _variant_values(v: VariantRecord) -> tuple[Any, ...]:
    """``VARIANT_COLUMNS`` as written: JSON serialized."""
    return (v.title, v.description, v.sku, v.url, v.image_url, v.price_amount,
            v.list_price_amount, v.currency, v.stock, v.availability, v.requires_shipping,
            json_text(v.variant_options), json_text(v.categories), v.is_eligible_search,
            v.is_eligible_checkout, v.shopify_variant_id)


def _same_json(stored: Any, new: str, json_as_text: bool) -> bool:
    """A stored JSON value against a serialized one, by meaning (a document written with
    other spacing or key order is the same)."""
    if stored is None:
        return new == "null"
    return bool((orjson.loads(stored) if json_as_text else stored) == orjson.loads(new))


def _changed(columns: tuple[str, ...], stored: tuple[Any, ...], new: tuple[Any, ...],
             json_as_text: bool) -> tuple[str, ...]:
    """The columns whose new value differs from the stored one. Equal tuples, the common
    case on SQLite (JSON stored as the same text), cost one comparison."""
    if json_as_text and stored == new:
        return ()
    return tuple(c for c, old, value in zip(columns, stored, new, strict=True)
                 if old != value and (c not in JSON_COLUMNS
                                      or not _same_json(old, value, json_as_text)))


@cache
def _pick(order: tuple[str, ...], columns: tuple[str, ...]
          ) -> Callable[[tuple[Any, ...]], tuple[Any, ...]]:
    """A function taking ``columns``' values out of a tuple in ``order``."""
    indexes = [order.index(c) for c in columns]
    return lambda values: tuple([values[i] for i in indexes])


async def upsert_products(db: AsyncSession, records: list[ProductRecord], report: ImportReport,
                          lines: list[int]) -> None:
    """Upsert one batch: created / updated / unchanged per product, compared column by
    column with what is stored. A variant id already owned by another product (stored, or
    earlier in this batch) rejects the row. Variants missing from a record are kept."""
    stored = await repository.stored_for_import(
        db, list(dict.fromkeys(r.id for r in records)),
        list(dict.fromkeys(v.id for r in records for v in r.variants)))
    stored_products, stored_variants, as_text = (stored.products, stored.variants,
                                                 stored.json_as_text)
    owners = {vid: row[0] for vid, row in stored_variants.items()}
    writes = CatalogWrites()
    seen: dict[str, tuple[Any, ...]] = {}  # product id → its latest values in this batch
    new_products: dict[str, list[Any]] = {}  # id → [id, *values]: later rows update it
    new_variants: dict[str, list[Any]] = {}  # id → [id, product_id, *values]
    product_updates: dict[str, tuple[tuple[str, ...], tuple[Any, ...]]] = {}
    variant_updates: dict[str, tuple[tuple[str, ...], str, tuple[Any, ...]]] = {}
    for record, line in zip(records, lines, strict=True):
        pid = record.id
        clash = next((v.id for v in record.variants if owners.get(v.id, pid) != pid), None)
        if clash:
            report.rejected.append(
                RejectedRow(line, f"variant {clash!r} belongs to another product"))
            continue
        values = _product_values(record)
        changed = False
        created = pid not in stored_products and pid not in seen
        if created:
            new_products[pid] = [pid, *values]
        elif pid in new_products:  # seen earlier in this batch: the later row wins
            changed = bool(_changed(PRODUCT_COLUMNS,
                                    tuple(new_products[pid][1:]), values, True))
            new_products[pid][1:] = values
        else:  # compared with the stored row, or with this batch's earlier row (as text)
            earlier_row = seen.get(pid)
            columns = _changed(PRODUCT_COLUMNS, stored_products[pid], values,
                               as_text) if earlier_row is None else _changed(
                PRODUCT_COLUMNS, earlier_row, values, True)
            if columns:
                earlier = product_updates.get(pid, ((), ()))[0]
                merged = columns if not earlier else tuple(
                    c for c in PRODUCT_COLUMNS if c in columns or c in earlier)
                product_updates[pid] = (merged, values)
                changed = True
        seen[pid] = values
        for vr in record.variants:
            vid = vr.id
            owners[vid] = pid
            new = _variant_values(vr)
            if vid in new_variants:
                new_variants[vid][2:] = new
                changed = True
                continue
            row = stored_variants.get(vid)
            if row is None:
                new_variants[vid] = [vid, pid, *new]
                changed = True
                continue
            diff = _changed(VARIANT_COLUMNS, row[1:], new, as_text)
            if diff:
                earlier = variant_updates.get(vid, ((), "", ()))[0]
                merged = diff if not earlier else tuple(
                    c for c in VARIANT_COLUMNS if c in diff or c in earlier)
                variant_updates[vid] = (merged, pid, new)
                changed = True
        if created:
            report.created += 1
        elif changed:
            report.updated += 1
        else:
            report.unchanged += 1
    writes.new_products = [tuple(row) for row in new_products.values()]
    writes.new_variants = [tuple(row) for row in new_variants.values()]
    writes.product_updates = [(columns, pid, pid, _pick(PRODUCT_COLUMNS, columns)(values))
                              for pid, (columns, values) in product_updates.items()]
    writes.variant_updates = [(columns, vid, pid, _pick(VARIANT_COLUMNS, columns)(values))
                              for vid, (columns, pid, values) in variant_updates.items()]
    await repository.write_catalog(db, writes, utc_now())


def batches(parsed: Iterable[tuple[int, ProductRecord | RejectedRow]], report: ImportReport,
            size: int = BATCH) -> Iterable[tuple[list[ProductRecord], list[int]]]:
    """Group parsed rows into batches of records, recording rejects as they pass. A batch
    handed out is no longer referenced here (freed as soon as the caller is done)."""
    pending = _Pending()
    for line, item in parsed:
        if isinstance(item, RejectedRow):
            report.rejected.append(item)
            continue
        pending.records.append(item)
        pending.lines.append(line)
        if len(pending.records) >= size:
            yield pending.take()
    if pending.records:
        yield pending.take()


class _Pending:
    __slots__ = ("records", "lines")

    def __init__(self) -> None:
        self.records: list[ProductRecord] = []
        self.lines: list[int] = []

    def take(self) -> tuple[list[ProductRecord], list[int]]:
        out = self.records, self.lines
        self.records, self.lines = [], []
        return out


async def import_catalog(sessionmaker: async_sessionmaker[AsyncSession],
                         parsed: Iterable[tuple[int, ProductRecord | RejectedRow]], *,
                         batch_size: int = BATCH,
                         progress: Callable[[int], None] | None = None) -> ImportReport:
    """Upsert a parsed file, one transaction per batch (``progress``: the last line done).

    The cycle collector is paused while a batch is parsed and written: a batch's records
    hold no reference cycles and are freed by reference counting once written, but their
    hundreds of thousands of containers made the young generations' collections walk them
    again and again (~15% of an import's CPU). Between batches it runs as usual, so the
    few cycles a batch leaves (its session) are collected."""
    report = ImportReport()
    rows = iter(batches(parsed, report, batch_size))
    while True:
        with _collector_paused():
            batch = next(rows, None)
            if batch is None:
                break
            records, line_numbers = batch
            async with sessionmaker() as db, db.begin():
                await upsert_products(db, records, report, line_numbers)
            last = line_numbers[-1]
            del batch, records, line_numbers  # freed before the collector runs again
        if progress is not None:
            progress(last)
    return report


@contextmanager
def _collector_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
