"""Pure translations between Etsy's published shapes and ours (no I/O).

Etsy ``Money`` is ``{amount, divisor, currency_code}`` (e.g. 1250/100 USD); we keep
integers in minor units, so conversion is exact or refused. ``updateListingInventory``
takes prices as decimal numbers: they are written as exact decimal literals, never via
binary floats.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from dataclasses import dataclass, field
from enum import StrEnum
from fractions import Fraction
from typing import Any

from feeds.schemas import ProductRecord, VariantRecord
from models.money import currency_exponent

Json = dict[str, Any]
CHANNEL = "etsy"  # the channel (agent) name Etsy orders carry in the dashboard and finance


class ConflictKind(StrEnum):
    oversold = "oversold"          # an Etsy sale of units we no longer had
    unmatched_line = "unmatched_line"  # an Etsy sale of a listing we do not know
    push_rejected = "push_rejected"  # Etsy refused our inventory update


def money_minor(money: Json | None) -> tuple[int, str] | None:
    """Etsy Money → (minor units, lower-case currency), or None if not exact."""
    if not isinstance(money, dict):
        return None
    try:
        amount, divisor = int(money["amount"]), int(money.get("divisor") or 1)
        currency = str(money["currency_code"]).lower()
    except (KeyError, TypeError, ValueError):
        return None
    if divisor <= 0:
        return None
    minor = Fraction(amount * 10 ** currency_exponent(currency), divisor)
    if minor.denominator != 1 or minor < 0:
        return None
    return int(minor), currency


def decimal_text(minor: int, currency: str) -> str:
    exp = currency_exponent(currency)
    if exp == 0:
        return str(minor)
    whole, frac = divmod(minor, 10 ** exp)
    return f"{whole}.{frac:0{exp}d}"


def property_key(property_values: list[Json] | None) -> str:
    """A stable identity for an inventory product within its listing (Etsy re-issues
    product ids on every inventory update; the chosen property values do not change)."""
    parts = []
    for pv in property_values or []:
        values = ",".join(str(v) for v in sorted(pv.get("value_ids") or []))
        parts.append(f"{pv.get('property_id')}:{values}")
    return "|".join(sorted(parts))


def _live(items: list[Json] | None) -> list[Json]:
    return [i for i in items or [] if not i.get("is_deleted")]


@dataclass(frozen=True, slots=True)
class LinkRow:
    variant_id: str
    product_id: str
    listing_id: str
    etsy_product_id: str | None
    offering_id: str | None
    sku: str | None
    property_key: str


@dataclass(slots=True)
class ListingImport:
    record: ProductRecord
    links: list[LinkRow] = field(default_factory=list)
    updated_timestamp: int = 0


def product_id_for(listing_id: Any) -> str:
    return f"etsy-{listing_id}"


def variant_id_for(listing_id: Any, key: str) -> str:
    if not key:
        return f"etsy-{listing_id}"
    suffix = re.sub(r"[^0-9A-Za-z]+", "-", key).strip("-")
    return f"etsy-{listing_id}-{suffix}"


def listing_import(listing: Json, stock_of: dict[str, int | None]) -> ListingImport | str:
    """A ``ShopListing`` (with ``includes=Images,Inventory``) → our product, or the reason
    it cannot be sold. ``stock_of``: our current stock for variants we already track —
    after the first import ReelCart's count is the truth (sales on both sides adjust it),
    so a later sync never raises it back to Etsy's figure."""
    listing_id = listing.get("listing_id")
    title = (listing.get("title") or "").strip()
    if not listing_id or not title:
        return "listing without id or title"
    images = sorted((i for i in listing.get("images") or [] if i.get("url_fullxfull")),
                    key=lambda i: i.get("rank") or 0)
    media = [{"type": "image", "url": i["url_fullxfull"],
              **({"alt_text": i["alt_text"]} if i.get("alt_text") else {})} for i in images]
    url = listing.get("url") if str(listing.get("url") or "").startswith("https://") else None
    product_id = product_id_for(listing_id)
    inventory = listing.get("inventory") or {}
    products = _live(inventory.get("products"))
    if not products:  # no inventory records: the listing itself is the one product
        products = [{"product_id": None, "sku": (listing.get("skus") or [None])[0],
                     "property_values": [], "offerings": [{
                         "offering_id": None, "quantity": listing.get("quantity"),
                         "is_enabled": True, "price": listing.get("price")}]}]
    variants: list[VariantRecord] = []
    links: list[LinkRow] = []
    for product in products:
        offerings = _live(product.get("offerings"))
        if not offerings:
            continue
        offering = next((o for o in offerings if o.get("is_enabled", True)), offerings[0])
        price = money_minor(offering.get("price"))
        if price is None:
            return f"product {product.get('product_id')} has no exact price"
        key = property_key(product.get("property_values"))
        variant_id = variant_id_for(listing_id, key)
        values = [", ".join(str(v) for v in pv.get("values") or [])
                  for pv in product.get("property_values") or []]
        quantity = offering.get("quantity")
        etsy_stock = max(int(quantity), 0) if isinstance(quantity, int) else None
        stock = stock_of[variant_id] if variant_id in stock_of else etsy_stock
        enabled = bool(offering.get("is_enabled", True))
        sku = product.get("sku") or None
        variants.append(VariantRecord(
            id=variant_id, title=f"{title} — {' / '.join(values)}" if values else title,
            price_amount=price[0], currency=price[1], sku=sku, url=url,
            image_url=media[0]["url"] if media else None,
            availability="in_stock" if enabled and (stock is None or stock > 0)
            else "out_of_stock",
            stock=stock, requires_shipping=not listing.get("is_digital"),
            variant_options=[{"name": pv.get("property_name") or str(pv.get("property_id")),
                              "value": v} for pv, v in zip(
                                  product.get("property_values") or [], values, strict=False)]))
        links.append(LinkRow(
            variant_id=variant_id, product_id=product_id, listing_id=str(listing_id),
            etsy_product_id=str(product["product_id"]) if product.get("product_id") else None,
            offering_id=str(offering["offering_id"]) if offering.get("offering_id") else None,
            sku=sku, property_key=key))
    if not variants:
        return "no purchasable product"
    record = ProductRecord(id=product_id, title=title, variants=variants,
                           description=listing.get("description") or None, url=url,
                           media=media)
    updated = listing.get("updated_timestamp") or listing.get("last_modified_timestamp") or 0
    return ListingImport(record=record, links=links, updated_timestamp=int(updated))


def inventory_update_body(inventory: Json, quantities: dict[str, int]) -> bytes:
    """The full ``updateListingInventory`` body from the current inventory, with the
    quantity of each product whose property key is in ``quantities`` replaced."""
    prices: list[str] = []
    products = []
    for product in _live(inventory.get("products")):
        key = property_key(product.get("property_values"))
        offerings = []
        for offering in _live(product.get("offerings")):
            price = money_minor(offering.get("price"))
            if price is None:
                raise ValueError(f"offering {offering.get('offering_id')} has no exact price")
            prices.append(decimal_text(*price))
            quantity = quantities.get(key, offering.get("quantity") or 0)
            offerings.append({"price": f"__price_{len(prices) - 1}__",
                              "quantity": max(int(quantity), 0),
                              "is_enabled": bool(offering.get("is_enabled", True))})
        products.append({
            "sku": product.get("sku") or "",
            "property_values": [{
                "property_id": pv.get("property_id"), "value_ids": pv.get("value_ids") or [],
                "scale_id": pv.get("scale_id"), "property_name": pv.get("property_name"),
                "values": pv.get("values") or []} for pv in product.get("property_values") or []],
            "offerings": offerings})
    body = json.dumps({
        "products": products,
        "price_on_property": inventory.get("price_on_property") or [],
        "quantity_on_property": inventory.get("quantity_on_property") or [],
        "sku_on_property": inventory.get("sku_on_property") or []}, separators=(",", ":"))
    for index, text in enumerate(prices):  # exact decimal literals, not floats
        body = body.replace(f'"__price_{index}__"', text, 1)
    return body.encode()


# ---------------------------------------------------------------------- receipts

RECEIPT_URL = re.compile(r"/receipts/(\d+)")


def receipt_id_from(resource_url: Any) -> str | None:
    match = RECEIPT_URL.search(str(resource_url or ""))
    return match.group(1) if match else None


def _total(type_: str, text: str, amount: int) -> Json:
    return {"type": type_, "display_text": text, "amount": amount}


@dataclass(frozen=True, slots=True)
class ReceiptLine:
    transaction_id: str
    listing_id: str
    etsy_product_id: str | None
    sku: str | None
    property_key: str
    title: str
    quantity: int
    unit_amount: int


@dataclass(frozen=True, slots=True)
class ReceiptFacts:
    receipt_id: str
    currency: str
    lines: list[ReceiptLine]
    totals: list[Json]
    total_amount: int
    buyer: Json | None
    address: Json | None
    created_timestamp: int
    updated_timestamp: int


def receipt_facts(receipt: Json) -> ReceiptFacts | str:
    """A paid ``ShopReceipt`` → the facts an order needs, or why it cannot be taken."""
    receipt_id = receipt.get("receipt_id")
    if not receipt_id:
        return "receipt without id"
    grand = money_minor(receipt.get("grandtotal"))
    if grand is None:
        return f"receipt {receipt_id} has no exact grand total"
    total_amount, currency = grand

    def amount(name: str) -> int:
        value = money_minor(receipt.get(name))
        return value[0] if value else 0

    lines = []
    for t in receipt.get("transactions") or []:
        price = money_minor(t.get("price"))
        quantity = int(t.get("quantity") or 0)
        if quantity <= 0:
            continue
        variations = [{"property_id": v.get("property_id"), "value_ids": [v.get("value_id")]}
                      for v in t.get("variations") or [] if v.get("value_id") is not None]
        product_data = t.get("product_data") or []
        lines.append(ReceiptLine(
            transaction_id=str(t.get("transaction_id")), listing_id=str(t.get("listing_id")),
            etsy_product_id=str(t["product_id"]) if t.get("product_id") else None,
            sku=t.get("sku") or None,
            property_key=property_key(product_data or variations),
            title=t.get("title") or f"Etsy listing {t.get('listing_id')}",
            quantity=quantity, unit_amount=price[0] if price else 0))
    base = amount("total_price")
    discount = amount("discount_amt")
    shipping = amount("total_shipping_cost")
    tax = amount("total_tax_cost") + amount("total_vat_cost")
    totals = [_total("items_base_amount", "Items", base),
              _total("items_discount", "Item discounts", 0),
              _total("subtotal", "Subtotal", base),
              _total("discount", "Discount", discount),
              _total("fulfillment", "Shipping", shipping),
              _total("tax", "Tax", tax),
              _total("total", "Total", total_amount)]
    address = None
    if receipt.get("first_line") or receipt.get("city"):
        address = {"name": receipt.get("name") or "", "line_one": receipt.get("first_line"),
                   "line_two": receipt.get("second_line") or None,
                   "city": receipt.get("city"), "state": receipt.get("state"),
                   "country": receipt.get("country_iso"), "postal_code": receipt.get("zip")}
    buyer = {"email": receipt["buyer_email"]} if receipt.get("buyer_email") else None
    created = receipt.get("created_timestamp") or receipt.get("create_timestamp") or 0
    updated = receipt.get("updated_timestamp") or receipt.get("update_timestamp") or created
    return ReceiptFacts(receipt_id=str(receipt_id), currency=currency, lines=lines,
                        totals=totals, total_amount=total_amount, buyer=buyer,
                        address=address, created_timestamp=int(created),
                        updated_timestamp=int(updated))


def shipment_posted(receipt: Json, tracking_code: str) -> bool:
    return any(str(s.get("tracking_code") or "") == tracking_code
               for s in receipt.get("shipments") or [])


# ---------------------------------------------------------------------- webhooks

def verify_webhook(secret: str, *, webhook_id: str | None, timestamp: str | None,
                   body: bytes, signature: str | None, now: float,
                   tolerance: int = 300) -> bool:
    """Etsy signs deliveries the Standard Webhooks way: ``webhook-signature`` holds
    ``v1,<base64 HMAC-SHA256>`` entries (space-separated) over
    ``<webhook-id>.<webhook-timestamp>.<raw body>``, keyed with the base64 part of the
    ``whsec_…`` signing secret. Stale timestamps are refused (replays)."""
    if not (secret and webhook_id and timestamp and signature):
        return False
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    if abs(now - sent) > tolerance:
        return False
    raw_secret = secret.removeprefix("whsec_")
    try:
        key = base64.b64decode(raw_secret, validate=True)
    except ValueError:
        key = raw_secret.encode()
    signed = webhook_id.encode() + b"." + timestamp.encode() + b"." + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    for candidate in signature.split():
        version, _, value = candidate.partition(",")
        if not value:
            version, value = "v1", version
        if version == "v1" and hmac.compare_digest(value, expected):
            return True
    return False
