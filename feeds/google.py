"""Google Merchant Center: catalog rows → Google product data (pure functions).

Two shapes of the same data, both from Google's product data specification
(support.google.com/merchants/answer/7052112):

- ``google_tsv_rows``: the attribute names of a text (TSV) feed, the downloadable
  fallback (``id``, ``title``, ``description``, ``link``, ``image_link``,
  ``availability``, ``price``, ``brand``, ``gtin``/``mpn`` or ``identifier_exists``,
  ``condition``, ``shipping``, ``video_link`` …);
- ``product_input``: the Merchant API ``ProductInput`` resource (products_v1:
  ``offerId``, ``contentLanguage``, ``feedLabel`` and camelCase ``productAttributes``,
  prices as ``{amountMicros, currencyCode}``, enums upper-case).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from typing import Any

import orjson

from feeds.builder import (
    FeedConfig,
    ProductRow,
    VariantRow,
    feed_url,
    price_text,
    video_params,
)
from models.money import currency_exponent, format_minor

Json = dict[str, Any]

GOOGLE_TSV_COLUMNS = (
    "id", "title", "description", "link", "image_link", "additional_image_link",
    "video_link", "availability", "price", "sale_price", "brand", "gtin", "mpn",
    "identifier_exists", "condition", "item_group_id", "product_type", "shipping",
)
_TSV_AVAILABILITY = {"in_stock": "in_stock", "limited_stock": "in_stock",
                     "backorder": "backorder", "preorder": "preorder",
                     "pre_order": "preorder", "out_of_stock": "out_of_stock",
                     "discontinued": "out_of_stock"}
_API_AVAILABILITY = {"in_stock": "IN_STOCK", "out_of_stock": "OUT_OF_STOCK",
                     "preorder": "PREORDER", "backorder": "BACKORDER"}
# Characters that force the product input name to be base64url-encoded (Merchant API).
_RESERVED = set("%.+/:~,(*!)&?=@#$")


def _variant_fields(product: ProductRow, variant: VariantRow, config: FeedConfig
                    ) -> Json:
    """What both shapes share, in spec terms."""
    on_sale = variant.list_price_amount is not None and \
        variant.list_price_amount > variant.price_amount
    images = [m["url"] for m in product.media if m.get("type") == "image"]
    primary = variant.image_url or (images[0] if images else "")
    extra = [u for u in images if u != primary][:10]
    return {
        "id": variant.id,
        "title": variant.title[:150],
        "description": (variant.description or product.description or variant.title)[:5000],
        "link": feed_url(product, variant.url or product.url, config, "google",
                         video_params(config, product)) or "",
        "image_link": primary,
        "additional_image_link": extra,
        "video_link": [v[0] for v in product.videos[:10]],
        "availability": _TSV_AVAILABILITY.get(variant.availability, "out_of_stock"),
        "regular": variant.list_price_amount if on_sale else variant.price_amount,
        "sale": variant.price_amount if on_sale else None,
        "currency": variant.currency,
        "brand": (product.brand or config.brand)[:70],
        "mpn": variant.sku,
        "item_group_id": product.id if len(product.variants) > 1 else None,
        "product_type": variant.categories[0] if variant.categories else None,
        "shipping": config.shipping if variant.requires_shipping else (),
    }


def google_tsv_rows(product: ProductRow, config: FeedConfig) -> Iterator[Json]:
    for variant in product.variants:
        f = _variant_fields(product, variant, config)
        currency = f["currency"]
        row: Json = {
            "id": f["id"], "title": f["title"], "description": f["description"],
            "link": f["link"], "image_link": f["image_link"],
            "additional_image_link": f["additional_image_link"],
            "video_link": f["video_link"], "availability": f["availability"],
            "price": price_text(f["regular"], currency), "brand": f["brand"],
            "condition": "new",
        }
        if f["sale"] is not None:
            row["sale_price"] = price_text(f["sale"], currency)
        if f["mpn"]:
            row["mpn"] = f["mpn"]
        else:
            row["identifier_exists"] = "no"
        if f["item_group_id"]:
            row["item_group_id"] = f["item_group_id"]
        if f["product_type"]:
            row["product_type"] = f["product_type"]
        if f["shipping"]:  # country:region:service:price, several comma-separated
            row["shipping"] = ",".join(f"{country}::{service}:{format_minor(amount, currency)}"
                                       for country, service, amount in f["shipping"])
        yield row


def micros(amount_minor: int, currency: str) -> str:
    """Minor units → Google's ``amountMicros`` (int64, a string in proto3 JSON)."""
    return str(amount_minor * 10 ** (6 - currency_exponent(currency)))


def _price(amount: int, currency: str) -> Json:
    return {"amountMicros": micros(amount, currency), "currencyCode": currency.upper()}


def product_input(product: ProductRow, variant: VariantRow, config: FeedConfig, *,
                  content_language: str, feed_label: str) -> Json:
    f = _variant_fields(product, variant, config)
    currency = f["currency"]
    attributes: Json = {
        "title": f["title"], "description": f["description"], "link": f["link"],
        "imageLink": f["image_link"],
        "availability": _API_AVAILABILITY[f["availability"]],
        "price": _price(f["regular"], currency), "brand": f["brand"], "condition": "NEW",
    }
    if f["additional_image_link"]:
        attributes["additionalImageLinks"] = f["additional_image_link"]
    if f["video_link"]:
        attributes["videoLinks"] = f["video_link"]
    if f["sale"] is not None:
        attributes["salePrice"] = _price(f["sale"], currency)
    if f["mpn"]:
        attributes["mpn"] = f["mpn"]
    else:
        attributes["identifierExists"] = False
    if f["item_group_id"]:
        attributes["itemGroupId"] = f["item_group_id"]
    if f["product_type"]:
        attributes["productTypes"] = [f["product_type"]]
    if f["shipping"]:
        attributes["shipping"] = [{"country": country, "service": service,
                                   "price": _price(amount, currency)}
                                  for country, service, amount in f["shipping"]]
    return {"offerId": variant.id, "contentLanguage": content_language,
            "feedLabel": feed_label, "productAttributes": attributes}


API_REQUIRED = ("title", "description", "link", "imageLink", "availability", "price",
                "brand", "condition")
TSV_REQUIRED = ("id", "title", "description", "link", "image_link", "availability", "price",
                "brand", "condition")


def missing_api_fields(body: Json) -> list[str]:
    """Google's required attributes missing from a ProductInput (it would be refused)."""
    attributes = body.get("productAttributes", {})
    return [name for name in API_REQUIRED if not attributes.get(name)]


def missing_tsv_fields(row: Json) -> list[str]:
    return [name for name in TSV_REQUIRED if not row.get(name)]


def input_name(account: str, content_language: str, feed_label: str, offer_id: str) -> str:
    """``accounts/{a}/productInputs/{contentLanguage}~{feedLabel}~{offerId}``; encoded as
    unpadded base64url when the offer id holds a character the API reserves."""
    key = f"{content_language}~{feed_label}~{offer_id}"
    if _RESERVED & set(offer_id):
        key = base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")
    return f"accounts/{account}/productInputs/{key}"


def digest(payload: Json) -> str:
    return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()
