"""The importer's batched upsert: created / updated / unchanged decided column by column,
variants owned by another product refused, every stored value and the search index as the
last row says (SQLite and PostgreSQL)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import IntegrityError

from api.runtime import Runtime
from catalog import service
from catalog.schemas import SearchFilters, query_terms
from feeds.schemas import ImportReport, ProductRecord, VariantRecord
from feeds.service import upsert_products
from models import Product, Variant
from models.db import transaction


def record(pid: str, title: str, *variants: VariantRecord, **extra: Any) -> ProductRecord:
    return ProductRecord(id=pid, title=title, variants=list(variants), **extra)


def variant(vid: str, title: str, price: int = 1000, **extra: Any) -> VariantRecord:
    return VariantRecord(id=vid, title=title, price_amount=price, currency="usd", **extra)


async def upsert(rt: Runtime, *records: ProductRecord) -> ImportReport:
    report = ImportReport()
    async with transaction(rt.sessionmaker) as db:
        await upsert_products(db, list(records), report, list(range(1, len(records) + 1)))
    return report


def counts(report: ImportReport) -> tuple[int, int, int, list[tuple[int, str]]]:
    return (report.created, report.updated, report.unchanged,
            [(r.line, r.reason) for r in report.rejected])


async def found(rt: Runtime, words: str) -> list[str]:
    async with rt.read_sessionmaker() as db:
        page = await service.search(db, SearchFilters(terms=tuple(query_terms(words))),
                                    cursor=None, limit=50)
    return [p["id"] for p in page["products"]]


async def stored_variants(rt: Runtime, product_id: str) -> dict[str, Any]:
    async with rt.sessionmaker() as db:
        return {v.id: v for v in await db.scalars(
            select(Variant).where(Variant.product_id == product_id))}


async def test_created_unchanged_updated_and_stored_values(runtime: Runtime) -> None:
    tent = record("tent", "Quokka Dome Tent",
                  variant("tent-2p", "Quokka Two Person", 19900, stock=3,
                          variant_options=[{"name": "Size", "value": "2P"}],
                          categories=["Outdoor > Tents"]),
                  variant("tent-4p", "Quokka Four Person", 29900, sku="QKFOUR",
                          requires_shipping=True, is_eligible_checkout=False),
                  brand="Marsupial", media=[{"type": "image", "url": "https://x.test/t.jpg"}])
    assert counts(await upsert(runtime, tent)) == (1, 0, 0, [])
    # Indexed once, with every variant's words (its variants went in before it).
    assert await found(runtime, "quokka") == ["tent"]
    assert await found(runtime, "marsupial four") == ["tent"]
    assert await found(runtime, "qkfour") == ["tent"]
    assert counts(await upsert(runtime, tent)) == (0, 0, 1, [])

    rows = await stored_variants(runtime, "tent")
    assert rows["tent-2p"].stock == 3
    assert rows["tent-2p"].variant_options == [{"name": "Size", "value": "2P"}]
    assert rows["tent-2p"].categories == ["Outdoor > Tents"]
    assert rows["tent-4p"].is_eligible_checkout is False
    first_update = rows["tent-2p"].updated_at

    # A price and a stock change: updated, the index untouched and still right.
    cheaper = replace(tent, variants=[replace(tent.variants[0], price_amount=17900, stock=0),
                                      tent.variants[1]])
    assert counts(await upsert(runtime, cheaper)) == (0, 1, 0, [])
    rows = await stored_variants(runtime, "tent")
    assert (rows["tent-2p"].price_amount, rows["tent-2p"].stock) == (17900, 0)
    assert rows["tent-2p"].updated_at >= first_update
    assert rows["tent-4p"].price_amount == 29900
    assert await found(runtime, "quokka") == ["tent"]

    # Words change on the product and on one variant; a variant is added.
    renamed = replace(cheaper, title="Wombat Dome Tent", variants=[
        replace(cheaper.variants[0], title="Wombat Pair"), cheaper.variants[1],
        variant("tent-6p", "Wombat Six Person", 39900)])
    assert counts(await upsert(runtime, renamed)) == (0, 1, 0, [])
    assert await found(runtime, "wombat six") == ["tent"]
    assert await found(runtime, "two") == []  # the old variant title's own word
    assert await found(runtime, "quokka four") == ["tent"]  # the untouched variant's words
    async with runtime.sessionmaker() as db:
        product = await db.get(Product, "tent")
    assert product is not None
    assert product.title == "Wombat Dome Tent"
    assert product.brand == "Marsupial"
    assert set(await stored_variants(runtime, "tent")) == {"tent-2p", "tent-4p", "tent-6p"}

    # A record without a stored variant keeps it (imports never delete).
    assert counts(await upsert(runtime, replace(renamed, variants=renamed.variants[:1]))) == (
        0, 0, 1, [])
    assert len(await stored_variants(runtime, "tent")) == 3


async def test_variants_owned_by_another_product_reject_the_row(runtime: Runtime) -> None:
    assert counts(await upsert(runtime, record("a", "Aardvark Lamp",
                                               variant("a-1", "Aardvark Lamp")))) == (
        1, 0, 0, [])
    thief = record("b", "Bilby Lamp", variant("b-1", "Bilby Lamp"), variant("a-1", "Stolen"))
    twice = record("c", "Cassowary Lamp", variant("b-1", "Claimed in this batch"))
    fine = record("d", "Dingo Lamp", variant("d-1", "Dingo Lamp"))
    report = await upsert(runtime, thief, fine)
    assert counts(report) == (1, 0, 0, [(1, "variant 'a-1' belongs to another product")])
    report = await upsert(runtime, record("e", "Echidna", variant("e-1", "Echidna")),
                          record("f", "Fossa", variant("e-1", "Fossa")))
    assert counts(report) == (1, 0, 0, [(2, "variant 'e-1' belongs to another product")])
    assert counts(await upsert(runtime, twice)) == (1, 0, 0, [])
    assert (await stored_variants(runtime, "a"))["a-1"].title == "Aardvark Lamp"
    assert set(await stored_variants(runtime, "e")) == {"e-1"}
    assert await found(runtime, "bilby") == []
    assert await found(runtime, "fossa") == []


async def test_a_product_twice_in_one_batch_ends_as_its_last_row(runtime: Runtime) -> None:
    first = record("g", "Gecko Mug", variant("g-1", "Gecko Mug", 900))
    last = record("g", "Galah Mug", variant("g-1", "Galah Mug", 1100),
                  variant("g-2", "Galah Mug Large", 1500))
    assert counts(await upsert(runtime, first, last)) == (1, 1, 0, [])
    rows = await stored_variants(runtime, "g")
    assert {v: (r.title, r.price_amount) for v, r in rows.items()} == {
        "g-1": ("Galah Mug", 1100), "g-2": ("Galah Mug Large", 1500)}
    assert await found(runtime, "galah") == ["g"]
    assert await found(runtime, "gecko") == []
    # Stored already: two changes in one batch, both kept.
    retitled = replace(last, title="Goanna Mug")
    repriced = replace(last, variants=[replace(last.variants[0], price_amount=1200),
                                       last.variants[1]], brand="Kiln")
    assert counts(await upsert(runtime, retitled, repriced)) == (0, 2, 0, [])
    async with runtime.sessionmaker() as db:
        product = await db.get(Product, "g")
    assert product is not None
    assert (product.title, product.brand) == ("Galah Mug", "Kiln")
    assert (await stored_variants(runtime, "g"))["g-1"].price_amount == 1200



async def _document_writes(db: Any) -> int:
    """Search documents written so far in this transaction: on SQLite the rows FTS5 adds to
    its ``docsize`` table (one per document written, counted by a TEMP trigger that
    ``_counting_document_writes`` adds), on PostgreSQL the index table's row writes."""
    if db.get_bind().dialect.name == "sqlite":
        return int((await db.execute(text(
            "SELECT count(*) FROM temp.search_document_writes"))).scalar_one())
    return int((await db.execute(text(
        "SELECT coalesce(sum(n_tup_ins + n_tup_upd), 0) "
        "FROM pg_stat_xact_user_tables WHERE relname = 'catalog_search'"))).scalar_one())


async def _counting_document_writes(db: Any, on: bool) -> None:
    if db.get_bind().dialect.name != "sqlite":
        return
    statements = [
        "CREATE TEMP TABLE search_document_writes (n INTEGER)",
        "CREATE TEMP TRIGGER count_search_document_writes AFTER INSERT ON "
        "main.catalog_search_docsize BEGIN INSERT INTO search_document_writes VALUES (1); END",
    ] if on else ["DROP TRIGGER temp.count_search_document_writes",
                  "DROP TABLE temp.search_document_writes"]
    for statement in statements:
        await db.execute(text(statement))


async def test_a_batch_writes_each_touched_products_search_document_once(
        runtime: Runtime) -> None:
    """The per-row search triggers are deferred during an import batch and the documents
    rebuilt once per product (migration 1641): retitling 4 variants of 10 products writes
    10 documents (the old triggers rebuilt a product's document twice per variant: 80)."""
    def lamps(word: str) -> list[ProductRecord]:
        return [record(f"lamp-{i}", f"Lamp {i}", *(variant(f"lamp-{i}-{j}", f"{word} {j}")
                                                 for j in range(4))) for i in range(10)]

    assert counts(await upsert(runtime, *lamps("Ruby"))) == (10, 0, 0, [])
    async with transaction(runtime.sessionmaker) as db:
        await _counting_document_writes(db, True)
        # One document write: a product retitled outside an import (per-row trigger).
        before = await _document_writes(db)
        await db.execute(update(Product).where(Product.id == "lamp-0")
                         .values(title="Lamp zero"))
        one_document = await _document_writes(db) - before
        assert one_document > 0
        before = await _document_writes(db)
        report = ImportReport()
        await upsert_products(db, lamps("Teal"), report, list(range(1, 11)))
        writes = await _document_writes(db) - before
        await _counting_document_writes(db, False)
    assert counts(report) == (0, 10, 0, [])
    assert writes == 10 * one_document
    assert sorted(await found(runtime, "teal")) == [f"lamp-{i}" for i in range(10)]
    assert await found(runtime, "ruby") == []
    assert await found(runtime, "zero") == []  # lamp-0's title is the file's again


async def test_a_failed_batch_writes_nothing_and_leaves_the_search_triggers_live(
        runtime: Runtime) -> None:
    """All or nothing per batch: a row the database refuses (no currency) undoes the whole
    batch, and the caller's transaction goes on with the per-row search triggers live."""
    assert counts(await upsert(runtime, record("moth", "Moth Lamp",
                                               variant("moth-1", "Moth Lamp")))) == (
        1, 0, 0, [])
    good = record("newt", "Newt Lamp", variant("newt-1", "Newt Lamp"))
    bad = record("oryx", "Oryx Lamp", replace(variant("oryx-1", "Oryx Lamp"),
                                              currency=None))  # type: ignore[arg-type]
    async with transaction(runtime.sessionmaker) as db:
        with pytest.raises(IntegrityError):
            async with db.begin_nested():
                await upsert_products(db, [good, bad], ImportReport(), [1, 2])
        # Not an import: the product trigger indexes the new title at once.
        await db.execute(update(Product).where(Product.id == "moth")
                         .values(title="Pangolin Lamp"))
    async with runtime.sessionmaker() as db:
        assert await db.get(Product, "newt") is None
        assert await db.get(Product, "oryx") is None
    assert await found(runtime, "newt") == []
    assert await found(runtime, "pangolin") == ["moth"]
