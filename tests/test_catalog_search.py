"""Catalog search in the database's own full-text index: matching, filters, paging, and the
index following every catalog write (triggers from migration 0401)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import delete, update

from api.runtime import Runtime
from catalog import service
from catalog.errors import InvalidCursor, InvalidFilter
from catalog.schemas import SearchFilters, query_terms
from feeds.demo import demo_catalog
from feeds.schemas import ImportReport, ProductRecord, VariantRecord
from feeds.service import upsert_products
from models import Product, Variant
from models.db import transaction
from tests.mcp_client import call, mcp_session, serving


async def _search(rt: Runtime, query: str | None = None, *, cursor: str | None = None,
                  limit: int = 50, **filters: Any) -> dict[str, Any]:
    async with rt.read_sessionmaker() as db:
        return await service.search(db, SearchFilters(terms=tuple(query_terms(query)),
                                                      **filters),
                                    cursor=cursor, limit=limit)


async def _ids(rt: Runtime, query: str | None = None, **filters: Any) -> list[str]:
    return [p["id"] for p in (await _search(rt, query, **filters))["products"]]


async def test_words_match_stemmed_and_as_a_prefix(runtime: Runtime) -> None:
    assert await _ids(runtime, "mug") == ["ceramic-mug"]
    assert await _ids(runtime, "mugs") == ["ceramic-mug"]  # stemmed
    assert await _ids(runtime, "headph") == ["headphones"]  # unfinished last word
    assert await _ids(runtime, "kiln mug") == ["ceramic-mug"]  # brand + title, all words
    assert "ceramic-mug" in await _ids(runtime, "charcoal")  # variant option
    assert await _ids(runtime, "zzzznothing") == []
    # Operators and punctuation are words, never query syntax.
    assert await _ids(runtime, 'mug" OR * NEAR(') == []
    assert await _ids(runtime, 'mug" OR zzzz') == []  # OR as an operator would find mugs
    assert await _ids(runtime, "-mug") == ["ceramic-mug"]  # not a negation


async def test_filters_price_availability_brand_category(runtime: Runtime) -> None:
    page = await _search(runtime, None, min_price=2000, max_price=3000, currency="usd")
    prices = [v["price"]["amount"] for p in page["products"] for v in p["variants"]]
    assert prices
    assert all(2000 <= amount <= 3000 for amount in prices)
    assert "ceramic-mug" in [p["id"] for p in page["products"]]
    assert "headphones" not in [p["id"] for p in page["products"]]

    brand = await _search(runtime, None, brand="kiln & co")
    assert {p["brand"] for p in brand["products"]} == {"Kiln & Co"}
    assert len(brand["products"]) == sum(1 for r in demo_catalog() if r.brand == "Kiln & Co")

    digital = await _ids(runtime, None, category="digital goods")
    assert set(digital) == {r.id for r in demo_catalog()
                            if r.variants[0].categories == ["Digital Goods"]}

    everything = await _search(runtime, None)
    sold_out = [v["id"] for p in everything["products"] for v in p["variants"]
                if not v["availability"]["available"]]
    assert sold_out  # the demo catalog has some
    available = await _search(runtime, None, available_only=True)
    shown = [v["id"] for p in available["products"] for v in p["variants"]]
    assert shown
    assert not set(shown) & set(sold_out)

    with pytest.raises(InvalidFilter):
        await _search(runtime, None, min_price=100)
    with pytest.raises(InvalidFilter):
        await _search(runtime, None, min_price=300, max_price=100, currency="usd")


async def test_cursor_pages_cover_everything_once(runtime: Runtime) -> None:
    seen: list[str] = []
    cursor = None
    for _ in range(20):
        page = await _search(runtime, None, cursor=cursor, limit=7)
        seen += [p["id"] for p in page["products"]]
        cursor = page.get("next_cursor")
        if cursor is None:
            break
    assert len(seen) == len(set(seen))
    async with runtime.read_sessionmaker() as db:
        from sqlalchemy import select

        all_ids = set(await db.scalars(select(Product.id)))
    assert set(seen) == all_ids
    text_pages = [await _search(runtime, "reel", limit=3)]
    while "next_cursor" in text_pages[-1]:
        text_pages.append(await _search(runtime, "reel", cursor=text_pages[-1]["next_cursor"],
                                        limit=3))
    ranked = [p["id"] for page in text_pages for p in page["products"]]
    assert ranked == await _ids(runtime, "reel")
    with pytest.raises(InvalidCursor):
        await _search(runtime, None, cursor="not-a-cursor")


async def test_the_index_follows_catalog_writes(runtime: Runtime) -> None:
    record = ProductRecord(id="kayak", title="Zanzibar Sea Kayak", brand="Paddleworks",
                           variants=[VariantRecord(id="kayak-red", title="Zanzibar Sea Kayak "
                                                   "— Red", price_amount=89900, currency="usd",
                                                   stock=2)])
    async with transaction(runtime.sessionmaker) as db:
        await upsert_products(db, [record], ImportReport(), [1])
    assert await _ids(runtime, "zanzibar") == ["kayak"]
    assert await _ids(runtime, "paddleworks") == ["kayak"]

    record.title = "Mombasa Touring Kayak"  # product fields: every variant's document
    record.variants[0].title = "Mombasa Touring Kayak — Red"
    async with transaction(runtime.sessionmaker) as db:
        await upsert_products(db, [record], ImportReport(), [1])
    assert await _ids(runtime, "zanzibar") == []
    assert await _ids(runtime, "mombasa") == ["kayak"]

    async with transaction(runtime.sessionmaker) as db:  # brand alone
        await db.execute(update(Product).where(Product.id == "kayak").values(brand="Oarsome"))
    assert await _ids(runtime, "oarsome") == ["kayak"]
    assert await _ids(runtime, "paddleworks") == []

    async with transaction(runtime.sessionmaker) as db:  # stock changes leave text alone
        await db.execute(update(Variant).where(Variant.id == "kayak-red").values(stock=0))
    assert await _ids(runtime, "mombasa") == ["kayak"]
    assert await _ids(runtime, "mombasa", available_only=True) == []

    async with transaction(runtime.sessionmaker) as db:  # in stock, but not sold to agents
        await db.execute(update(Variant).where(Variant.id == "kayak-red")
                         .values(stock=2, is_eligible_checkout=False))
    assert await _ids(runtime, "mombasa", available_only=True) == []
    shown = (await _search(runtime, "mombasa"))["products"][0]["variants"][0]
    assert shown["availability"] == {"status": "in_stock", "available": False}
    assert shown["purchasable"] is False

    async with transaction(runtime.sessionmaker) as db:
        await db.execute(update(Variant).where(Variant.id == "kayak-red")
                         .values(is_eligible_search=False))
    assert await _ids(runtime, "mombasa") == []

    async with transaction(runtime.sessionmaker) as db:
        await db.execute(delete(Product).where(Product.id == "kayak"))
    async with transaction(runtime.sessionmaker) as db:  # a new variant, same words
        await upsert_products(db, [ProductRecord(
            id="raft", title="Mombasa Raft", variants=[VariantRecord(
                id="raft-1", title="Mombasa Raft", price_amount=100, currency="usd")])],
            ImportReport(), [1])
    assert await _ids(runtime, "mombasa") == ["raft"]


async def test_product_detail_and_search_over_mcp(runtime: Runtime) -> None:
    async with serving(runtime) as app, mcp_session(app) as session:
        detail, _ = await call(session, "get_product", {"product_id": "desk-lamp"})
        page, _ = await call(session, "search_products", {"query": "lamp", "limit": 1})
    assert [v["id"] for v in detail["variants"]] == ["desk-lamp-black", "desk-lamp-brass",
                                                    "desk-lamp-white"]
    assert detail["variants"][0]["options"] == [{"name": "Finish", "value": "Black"}]
    assert detail["images"]
    assert detail["media"][0]["type"] == "image"
    assert set(detail["policies"]) == {"terms_of_use", "privacy", "returns"}
    assert page["products"][0]["id"] == "desk-lamp"
