"""Catalog import: upsert parsed records, counting created / updated / unchanged."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from feeds import repository
from feeds.schemas import ImportReport, ProductRecord, RejectedRow
from models import Product, Variant
from models.base import utc_now


def _differs(row: Any, columns: dict[str, Any]) -> bool:
    return any(getattr(row, key) != value for key, value in columns.items())


async def upsert_products(db: AsyncSession, records: list[ProductRecord], report: ImportReport,
                          lines: list[int]) -> None:
    """Upsert one batch. A variant id already owned by another product rejects the row."""
    products, variants = await repository.products_with_variants(db, [r.id for r in records])
    foreign = await repository.variants_by_ids(
        db, [v.id for r in records for v in r.variants if v.id not in variants])
    now = utc_now()
    for record, line in zip(records, lines, strict=True):
        clash = next((v.id for v in record.variants if v.id in foreign
                      and foreign[v.id].product_id != record.id), None)
        if clash:
            report.rejected.append(
                RejectedRow(line, f"variant {clash!r} belongs to another product"))
            continue
        product = products.get(record.id)
        changed = False
        if product is None:
            product = Product(id=record.id, created_at=now, updated_at=now, **record.columns())
            db.add(product)
            products[record.id] = product
            created = True
        else:
            created = False
            if _differs(product, record.columns()):
                for key, value in record.columns().items():
                    setattr(product, key, value)
                product.updated_at = now
                changed = True
        for vr in record.variants:
            variant = variants.get(vr.id)
            if variant is None:
                variant = Variant(id=vr.id, product_id=record.id, created_at=now, updated_at=now,
                                  **vr.columns())
                db.add(variant)
                variants[vr.id] = variant
                changed = True
            elif _differs(variant, vr.columns()):
                for key, value in vr.columns().items():
                    setattr(variant, key, value)
                variant.updated_at = now
                changed = True
        if created:
            report.created += 1
        elif changed:
            report.updated += 1
        else:
            report.unchanged += 1
    await db.flush()


def batches(parsed: Iterable[tuple[int, ProductRecord | RejectedRow]], report: ImportReport,
            size: int = 500) -> Iterable[tuple[list[ProductRecord], list[int]]]:
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
