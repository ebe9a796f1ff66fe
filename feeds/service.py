"""Catalog import: upsert parsed records, counting created / updated / unchanged."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from feeds import repository
from feeds.repository import PRODUCT_COLUMNS, VARIANT_COLUMNS
from feeds.schemas import ImportReport, ProductRecord, RejectedRow
from models.base import utc_now

BATCH = 1000  # products per transaction


async def upsert_products(db: AsyncSession, records: list[ProductRecord], report: ImportReport,
                          lines: list[int]) -> None:
    """Upsert one batch: created / updated / unchanged per product, compared column by
    column with what is stored. A variant id already owned by another product (stored, or
    earlier in this batch) rejects the row. Variants missing from a record are kept."""
    stored_products, stored_variants = await repository.catalog_for_import(
        db, list(dict.fromkeys(r.id for r in records)))
    owners = await repository.variant_owners(db, list(dict.fromkeys(
        v.id for r in records for v in r.variants if v.id not in stored_variants)))
    for vid, row in stored_variants.items():
        owners[vid] = row.product_id
    now = utc_now()
    new_products: dict[str, dict[str, Any]] = {}
    new_variants: dict[str, dict[str, Any]] = {}
    product_updates: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {}
    variant_updates: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {}
    for record, line in zip(records, lines, strict=True):
        clash = next((v.id for v in record.variants
                      if owners.get(v.id, record.id) != record.id), None)
        if clash:
            report.rejected.append(
                RejectedRow(line, f"variant {clash!r} belongs to another product"))
            continue
        values = (record.title, record.description, record.url, record.brand, record.media)
        changed = False
        created = record.id not in stored_products
        row = dict(zip(PRODUCT_COLUMNS, values, strict=True))
        if created:
            new_products[record.id] = {"id": record.id, **row, "created_at": now,
                                       "updated_at": now}
        elif record.id in new_products:  # seen earlier in this batch: the later row wins
            changed = any(new_products[record.id][c] != row[c] for c in PRODUCT_COLUMNS)
            new_products[record.id].update(row)
        else:
            columns = tuple(c for c, old, new in zip(PRODUCT_COLUMNS,
                                                     stored_products[record.id], values,
                                                     strict=True) if old != new)
            if columns:
                earlier = product_updates.get(record.id, ((), {}))[0]
                merged = tuple(c for c in PRODUCT_COLUMNS if c in columns or c in earlier)
                product_updates[record.id] = (merged, {"_id": record.id, "updated_at": now,
                                                       **{c: row[c] for c in merged}})
                changed = True
        stored_products[record.id] = values
        for vr in record.variants:
            owners[vr.id] = record.id
            columns_now = vr.columns()
            if vr.id in new_variants:
                new_variants[vr.id].update(columns_now)
                changed = True
                continue
            if vr.id not in stored_variants:
                new_variants[vr.id] = {"id": vr.id, "product_id": record.id, **columns_now,
                                       "created_at": now, "updated_at": now}
                changed = True
                continue
            stored = stored_variants[vr.id]
            diff = tuple(c for c in VARIANT_COLUMNS if getattr(stored, c) != columns_now[c])
            if diff:
                earlier = variant_updates.get(vr.id, ((), {}))[0]
                merged = tuple(c for c in VARIANT_COLUMNS if c in diff or c in earlier)
                variant_updates[vr.id] = (merged, {"_id": vr.id, "updated_at": now,
                                                   **{c: columns_now[c] for c in merged}})
                changed = True
        if created:
            report.created += 1
        elif changed:
            report.updated += 1
        else:
            report.unchanged += 1
    await repository.write_catalog(db, new_products=list(new_products.values()),
                                   new_variants=list(new_variants.values()),
                                   product_updates=list(product_updates.values()),
                                   variant_updates=list(variant_updates.values()))


def batches(parsed: Iterable[tuple[int, ProductRecord | RejectedRow]], report: ImportReport,
            size: int = BATCH) -> Iterable[tuple[list[ProductRecord], list[int]]]:
    """Group parsed rows into batches of records, recording rejects as they pass."""
    records: list[ProductRecord] = []
    lines: list[int] = []
    for line, item in parsed:
        if isinstance(item, RejectedRow):
            report.rejected.append(item)
            continue
        records.append(item)
        lines.append(line)
        if len(records) >= size:
            yield records, lines
            records, lines = [], []
    if records:
        yield records, lines


async def import_catalog(sessionmaker: async_sessionmaker[AsyncSession],
                         parsed: Iterable[tuple[int, ProductRecord | RejectedRow]], *,
                         batch_size: int = BATCH,
                         progress: Callable[[int], None] | None = None) -> ImportReport:
    """Upsert a parsed file, one transaction per batch (``progress``: the last line done)."""
    report = ImportReport()
    for records, line_numbers in batches(parsed, report, batch_size):
        async with sessionmaker() as db, db.begin():
            await upsert_products(db, records, report, line_numbers)
        if progress is not None:
            progress(line_numbers[-1])
    return report
