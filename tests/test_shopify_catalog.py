"""Catalog sync from Shopify (Admin GraphQL faked with pytest-httpx): cursor pagination,
upsert counts, Shopify variant ids kept, unsellable products reported."""

from __future__ import annotations

import json

import httpx
from pytest_httpx import HTTPXMock
from sqlalchemy import select

from fulfillment.catalog_sync import sync_catalog
from fulfillment.shopify_client import ShopifyAdmin
from models import Variant
from models.db import create_engine, create_sessionmaker
from tests.conftest import reset_database
from tests.fake_shopify import ENDPOINT, SHOP, TOKEN, VERSION


def product(n: int, price: str = "19.99") -> dict:
    return {"id": f"gid://shopify/Product/{n}", "legacyResourceId": str(n),
            "title": f"Product {n}", "description": "Nice", "vendor": "Acme",
            "onlineStoreUrl": f"https://acme.test/products/p{n}",
            "images": {"nodes": [{"url": f"https://cdn.test/{n}.jpg", "altText": "front"}]},
            "variants": {"nodes": [
                {"id": f"gid://shopify/ProductVariant/{n}1", "legacyResourceId": f"{n}1",
                 "title": "Small", "sku": f"SKU-{n}-S", "price": price,
                 "compareAtPrice": "29.99", "inventoryQuantity": 7, "availableForSale": True,
                 "selectedOptions": [{"name": "Size", "value": "S"}], "image": None},
                {"id": f"gid://shopify/ProductVariant/{n}2", "legacyResourceId": f"{n}2",
                 "title": "Large", "sku": "", "price": price, "compareAtPrice": None,
                 "inventoryQuantity": 0, "availableForSale": False,
                 "selectedOptions": [{"name": "Size", "value": "L"}], "image": None}]}}


PAGES = {None: ([product(1), product(2)], True, "cursor-1"),
         "cursor-1": ([product(3), product(4, price="free")], False, None)}


async def test_sync_pages_through_the_catalog_and_keeps_variant_ids(
        httpx_mock: HTTPXMock, database_url: str, backend: str) -> None:
    requests: list[dict] = []

    def answer(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        requests.append(body)
        assert body["operationName"] == "CatalogPage"
        assert request.headers["X-Shopify-Access-Token"] == TOKEN
        nodes, more, cursor = PAGES[body["variables"]["cursor"]]
        return httpx.Response(200, json={"data": {
            "shop": {"currencyCode": "USD"},
            "products": {"nodes": nodes, "pageInfo": {"hasNextPage": more,
                                                      "endCursor": cursor}}}})

    httpx_mock.add_callback(answer, url=ENDPOINT, method="POST", is_reusable=True)
    await reset_database(database_url)
    engine = create_engine(database_url)
    sessionmaker = create_sessionmaker(engine)
    async with httpx.AsyncClient() as http:
        admin = ShopifyAdmin(http, shop=SHOP, access_token=TOKEN, api_version=VERSION)
        first = await sync_catalog(sessionmaker, admin)
        second = await sync_catalog(sessionmaker, admin)
    assert [r["variables"]["cursor"] for r in requests[:2]] == [None, "cursor-1"]
    assert (first.created, first.updated, first.unchanged) == (3, 0, 0)
    assert [r.line for r in first.rejected] == [4]
    assert "no usable price" in first.rejected[0].reason
    assert (second.created, second.updated, second.unchanged) == (0, 0, 3)
    async with sessionmaker() as db:
        small = await db.get(Variant, "SKU-1-S")
        large = await db.get(Variant, "shopify-12")
        count = len(list(await db.scalars(select(Variant).where(
            Variant.product_id.like("shopify-%")))))
    await engine.dispose()
    assert count == 6
    assert small.shopify_variant_id == "gid://shopify/ProductVariant/11"
    assert (small.price_amount, small.list_price_amount, small.stock) == (1999, 2999, 7)
    assert small.variant_options == [{"name": "Size", "value": "S"}]
    assert small.image_url == "https://cdn.test/1.jpg"
    assert large.availability == "out_of_stock"
