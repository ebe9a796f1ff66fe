"""Seeding a store from the UCP conformance suite's CSV layout
(``shopping/fixtures/flower_shop/``): ``products.csv``, ``inventory.csv``,
``discounts.csv``, ``shipping_rates.csv``, ``promotions.csv``, ``customers.csv``,
``addresses.csv``.

Parsing is pure (files → records and a merchant configuration); ``seed`` writes the
catalog and the saved addresses in the caller's transaction. Shipping rates and discount
codes are merchant configuration (``REELCART_MERCHANT_CONFIG``), written as JSON.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from checkout.profile import DiscountCode, MerchantProfile, ShippingRate
from feeds.schemas import ImportReport, ProductRecord, VariantRecord
from feeds.service import upsert_products
from protocols.ucp import repository

Json = dict[str, Any]


def _rows(directory: Path, name: str) -> list[dict[str, str]]:
    path = directory / name
    if not path.exists():
        return []
    with path.open(encoding="utf-8", newline="") as f:
        return [{k: (v or "").strip() for k, v in row.items()} for row in csv.DictReader(f)]


@dataclass
class Fixtures:
    products: list[ProductRecord]
    discount_codes: list[DiscountCode]
    shipping_rates: list[ShippingRate]
    addresses: list[tuple[str, str, Json]] = field(default_factory=list)  # (email, id, address)

    def merchant_profile(self, base: MerchantProfile | None = None) -> MerchantProfile:
        """The store's checkout configuration: USD, these rates and codes, ship anywhere,
        no sales tax (the fixtures' totals carry none)."""
        base = base or MerchantProfile()
        return base.model_copy(update={
            "currencies": ["usd"], "shipping_countries": ["*"], "tax_rates": [],
            "shipping_rates": self.shipping_rates, "discount_codes": self.discount_codes,
            "pickup_locations": [], "low_stock_threshold": 0,
            "max_quantity_per_line": 100_000})


def load(directory: Path) -> Fixtures:
    stock = {r["product_id"]: int(r["quantity"]) for r in _rows(directory, "inventory.csv")
             if r.get("quantity", "").lstrip("-").isdigit()}
    products = []
    for r in _rows(directory, "products.csv"):
        qty = stock.get(r["id"])
        products.append(ProductRecord(id=r["id"], title=r["title"], variants=[VariantRecord(
            id=r["id"], title=r["title"], price_amount=int(r["price"]), currency="usd",
            image_url=r.get("image_url") or None, stock=qty,
            availability="out_of_stock" if qty is not None and qty <= 0 else "in_stock")]))
    codes = [DiscountCode(code=r["code"], type="percentage" if r["type"] == "percentage"
                          else "fixed_amount", value=int(r["value"]),
                          title=r.get("description") or r["code"])
             for r in _rows(directory, "discounts.csv")]
    promotions = [p for p in _rows(directory, "promotions.csv") if p["type"] == "free_shipping"]
    free_over = min((int(p["min_subtotal"]) for p in promotions if p.get("min_subtotal")),
                    default=None)
    free_items = sorted({i for p in promotions if p.get("eligible_item_ids")
                         for i in json.loads(p["eligible_item_ids"])})
    rates_rows = _rows(directory, "shipping_rates.csv")
    specific = {r["country_code"] for r in rates_rows if r["country_code"] != "default"}
    rates = []
    for r in rates_rows:
        country = r["country_code"]
        # A "default" rate of a service level that has a country-specific rate applies
        # everywhere else (International Express outside the US).
        same_level = {x["country_code"] for x in rates_rows
                      if x["service_level"] == r["service_level"] and x is not r}
        excluded = sorted(specific & same_level) if country == "default" else []
        standard = r["service_level"] == "standard"
        rates.append(ShippingRate(
            id=r["id"], title=r["title"], amount=int(r["price"]),
            countries=["*"] if country == "default" else [country],
            excluded_countries=excluded, min_days=3 if standard else 1,
            max_days=7 if standard else 3,
            free_over_amount=free_over if standard else None,
            free_for_items=free_items if standard else []))
    emails = {c["id"]: c["email"] for c in _rows(directory, "customers.csv")}
    addresses = [(emails[a["customer_id"]], a["id"], {
        "street_address": a["street_address"], "address_locality": a["city"],
        "address_region": a["state"], "postal_code": a["postal_code"],
        "address_country": a["country"]})
        for a in _rows(directory, "addresses.csv") if a.get("customer_id") in emails]
    return Fixtures(products, codes, rates, addresses)


async def seed(db: AsyncSession, fixtures: Fixtures) -> ImportReport:
    report = ImportReport()
    await upsert_products(db, fixtures.products, report, list(range(1, len(fixtures.products)
                                                                       + 1)))
    for email, address_id, address in fixtures.addresses:
        await repository.save_address(db, email, address, address_id)
    return report
