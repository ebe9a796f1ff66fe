"""Catalog in from Shopify: products and variants (cursor pagination), images, stock,
and the Shopify variant ids that order forwarding uses to link inventory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from feeds.schemas import ImportReport, ProductRecord, RejectedRow, VariantRecord
from feeds.service import upsert_products
from fulfillment.shopify_client import ShopifyAdmin
from models.money import currency_exponent
from models.urls import is_http_url

Json = dict[str, Any]


def _minor(amount: Any, currency: str) -> int | None:
    try:
        value = Decimal(str(amount))
    except (InvalidOperation, TypeError):
        return None
    minor = value * (10 ** currency_exponent(currency))
    return int(minor) if minor == minor.to_integral_value() and minor >= 0 else None


def product_record(node: Json, currency: str) -> ProductRecord | str:
    """A Shopify product → our record, or the reason it cannot be sold."""
    images = [{"type": "image", "url": i["url"], **({"alt_text": i["altText"]}
                                                    if i.get("altText") else {})}
              for i in (node.get("images") or {}).get("nodes") or [] if i.get("url")]
    variants = []
    for v in (node.get("variants") or {}).get("nodes") or []:
        price = _minor(v.get("price"), currency)
        if price is None:
            return f"variant {v.get('id')} has no usable price ({v.get('price')!r})"
        compare = _minor(v.get("compareAtPrice"), currency) if v.get("compareAtPrice") \
            else None
        stock = v.get("inventoryQuantity")
        available = v.get("availableForSale", True)
        variants.append(VariantRecord(
            id=v.get("sku") or f"shopify-{v['legacyResourceId']}",
            title=f"{node['title']} — {v['title']}" if v.get("title") not in (
                None, "Default Title") else node["title"],
            price_amount=price, currency=currency.lower(), sku=v.get("sku") or None,
            url=_http_or_none(node.get("onlineStoreUrl")),
            image_url=_http_or_none((v.get("image") or {}).get("url") or (
                images[0]["url"] if images else None)),
            list_price_amount=compare if compare and compare > price else None,
            availability="in_stock" if available else "out_of_stock",
            stock=max(int(stock), 0) if isinstance(stock, int) else None,
            variant_options=[{"name": o["name"], "value": o["value"]}
                             for o in v.get("selectedOptions") or []
                             if o.get("name") != "Title"],
            shopify_variant_id=v["id"]))
    if not variants:
        return "no variants"
    return ProductRecord(id=f"shopify-{node['legacyResourceId']}", title=node["title"],
                         variants=variants, description=node.get("description") or None,
                         url=node.get("onlineStoreUrl"), brand=node.get("vendor") or None,
                         media=images)


async def shopify_products(admin: ShopifyAdmin) -> AsyncIterator[tuple[int, ProductRecord |
                                                                      RejectedRow]]:
    cursor: str | None = None
    number = 0
    while True:
        page = await admin.products_page(cursor)
        currency = (page.get("shop") or {}).get("currencyCode", "USD")
        products = page["products"]
        for node in products["nodes"]:
            number += 1
            record = product_record(node, currency)
            yield number, (record if isinstance(record, ProductRecord)
                           else RejectedRow(number, f"{node.get('id')}: {record}"))
        if not products["pageInfo"]["hasNextPage"]:
            return
        cursor = products["pageInfo"]["endCursor"]


async def sync_catalog(sessionmaker: async_sessionmaker[AsyncSession], admin: ShopifyAdmin,
                       progress: Callable[[int], None] | None = None) -> ImportReport:
    report = ImportReport()
    batch: list[ProductRecord] = []
    lines: list[int] = []

    async def flush() -> None:
        async with sessionmaker() as db, db.begin():
            await upsert_products(db, batch, report, lines)
        if progress is not None:
            progress(len(batch))
        batch.clear()
        lines.clear()

    async for number, item in shopify_products(admin):
        if isinstance(item, RejectedRow):
            report.rejected.append(item)
            continue
        batch.append(item)
        lines.append(number)
        if len(batch) >= 200:
            await flush()
    if batch:
        await flush()
    return report


def _http_or_none(value: object) -> str | None:
    """Only http(s) URLs are kept: they are rendered and published."""
    return str(value) if is_http_url(value) else None
