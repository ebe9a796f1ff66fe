"""Pure parsers: ACP ``Product`` JSONL and OpenAI flat-file CSV/TSV → catalog records.

Each parser yields ``(line_number, ProductRecord | RejectedRow)`` so a bad row is
reported with its line and reason without stopping the good ones.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from feeds.schemas import ProductRecord, RejectedRow, VariantRecord
from models.money import parse_major
from models.urls import url_problem

Parsed = tuple[int, ProductRecord | RejectedRow]
AVAILABILITY = {"in_stock", "limited_stock", "backorder", "preorder", "pre_order",
                "out_of_stock", "discontinued", "unknown"}


class RowError(ValueError):
    pass


_SCALAR = (str, int)  # a tuple: ``str | int`` would build a union object on every call


def _str(obj: dict[str, Any], key: str, *, required: bool = False, max_len: int = 5000
         ) -> str | None:
    value = obj.get(key)
    if value is None or value == "":
        if required:
            raise RowError(f"'{key}' is required")
        return None
    if not isinstance(value, _SCALAR):
        raise RowError(f"'{key}' must be a string")
    text = str(value).strip()
    if len(text) > max_len:
        raise RowError(f"'{key}' is longer than {max_len} characters")
    return text


def _url(value: Any, where: str) -> str | None:
    """A URL we will render or publish: absolute http(s) only (no ``javascript:``)."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    problem = url_problem(text)
    if problem is not None:
        raise RowError(f"'{where}' {problem}")
    return text


def _acp_price(obj: Any, where: str) -> tuple[int, str]:
    if not isinstance(obj, dict):
        raise RowError(f"{where} must be an object with amount and currency")
    amount, currency = obj.get("amount"), obj.get("currency")
    if type(amount) is not int or amount < 0:  # bool is an int subclass: refused too
        raise RowError(f"{where}.amount must be a non-negative integer (minor units)")
    if not isinstance(currency, str) or len(currency) != 3 or not currency.isalpha():
        raise RowError(f"{where}.currency must be a 3-letter ISO 4217 code")
    return amount, currency.lower()


def _short(raw: dict[str, Any], key: str, max_len: int, *, required: bool = False
           ) -> str | None:
    """``_str`` with a fast path for the common case, a short enough string (an import
    reads millions)."""
    value = raw.get(key)
    if type(value) is str and value and len(value) <= max_len:
        return value.strip()
    if value is None and not required:
        return None
    return _str(raw, key, required=required, max_len=max_len)


def _acp_variant(raw: Any, index: int) -> VariantRecord:
    # Hot path (an import parses millions): no per-variant f-strings, no lookups twice.
    if not isinstance(raw, dict):
        raise RowError(f"variants[{index}] must be an object")
    get = raw.get
    vid = _short(raw, "id", 200, required=True)
    title = _short(raw, "title", 500, required=True)
    price = get("price")
    if price is None and "price" not in raw:
        raise RowError(f"variants[{index}].price is required to sell it")
    amount, currency = _acp_price(price, f"variants[{index}].price")
    list_price = None
    if get("list_price") is not None:
        list_price, list_currency = _acp_price(get("list_price"),
                                               f"variants[{index}].list_price")
        if list_currency != currency:
            raise RowError(f"variants[{index}].list_price currency differs from price "
                           "currency")
    availability = get("availability") or {}
    if not isinstance(availability, dict):
        raise RowError(f"variants[{index}].availability must be an object")
    status = availability.get("status")
    if type(status) is not str or not status:
        status = str(status or ("in_stock" if availability.get("available", True)
                                else "out_of_stock"))
    description = get("description")
    media = get("media")
    image = None
    if media:
        image = next((m.get("url") for m in media if isinstance(m, dict) and
                      m.get("type") == "image"), None)
        if image is not None and image != "":
            image = _url(image, f"variants[{index}].media.url")
    stock = get("inventory_quantity")  # ReelCart extension (ACP has no stock count)
    if stock is not None and (not isinstance(stock, int) or stock < 0):
        raise RowError(f"variants[{index}].inventory_quantity must be a non-negative integer")
    categories = [c["value"] for c in get("categories") or []
                  if isinstance(c, dict) and isinstance(c.get("value"), str)]
    digital = bool(get("is_digital")) or (
        bool(categories) and "digital" in "\n".join(categories).lower())  # in any of them
    sku = get("sku")
    if sku is not None:
        sku = _short(raw, "sku", 200)
    url = get("url")
    if url is not None:
        url = _url(_str(raw, "url"), f"variants[{index}].url")
    shopify = get("shopify_variant_id")
    return VariantRecord(
        vid or "", title or "", amount, currency,
        description.get("plain") if isinstance(description, dict) else None,
        sku, url, image, list_price, status,
        stock, not digital,
        [{"name": str(o["name"]), "value": str(o["value"])}
         for o in get("variant_options") or []
         if isinstance(o, dict) and "name" in o and "value" in o],
        categories, bool(get("is_eligible_search", True)),
        bool(get("is_eligible_checkout", True)),
        None if shopify is None else _short(raw, "shopify_variant_id", 100))


def acp_product(raw: Any) -> ProductRecord:
    if not isinstance(raw, dict):
        raise RowError("each line must be a JSON object (an ACP Product)")
    pid = _str(raw, "id", required=True, max_len=200)
    variants_raw = raw.get("variants")
    if not isinstance(variants_raw, list) or not variants_raw:
        raise RowError("'variants' must be a non-empty array")
    variants = [_acp_variant(v, i) for i, v in enumerate(variants_raw)]
    if len({v.id for v in variants}) != len(variants):
        raise RowError("variant ids must be unique within a product")
    description = raw.get("description") or {}
    media = [m for m in raw.get("media") or [] if isinstance(m, dict) and "url" in m]
    for index, item in enumerate(media):
        _url(item["url"], f"media[{index}].url")
    return ProductRecord(
        id=str(pid), title=_str(raw, "title", max_len=500) or variants[0].title,
        variants=variants,
        description=description.get("plain") if isinstance(description, dict) else None,
        url=_url(_str(raw, "url"), "url"), brand=_str(raw, "brand", max_len=200), media=media)


def parse_acp_jsonl(lines: Iterable[str]) -> Iterator[Parsed]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield number, acp_product(orjson.loads(line))
        except json.JSONDecodeError as exc:
            yield number, RejectedRow(number, f"invalid JSON: {exc.msg}")
        except RowError as exc:
            yield number, RejectedRow(number, str(exc))


def _bool(value: str | None, default: bool) -> bool:
    if value is None or value.strip() == "":
        return default
    lowered = value.strip().lower()
    if lowered in ("true", "yes", "1"):
        return True
    if lowered in ("false", "no", "0"):
        return False
    raise RowError(f"{value!r} is not true/false")


def _flat_price(value: str | None, field_name: str) -> tuple[int, str]:
    if not value or not value.strip():
        raise RowError(f"'{field_name}' is required")
    parts = value.strip().split()
    if len(parts) != 2 or len(parts[1]) != 3 or not parts[1].isalpha():
        raise RowError(f"'{field_name}' must look like '79.99 USD'")
    currency = parts[1].lower()
    try:
        return parse_major(parts[0], currency), currency
    except ValueError as exc:
        raise RowError(f"'{field_name}': {exc}") from None


def openai_variant(row: dict[str, str | None]) -> tuple[str, dict[str, Any], VariantRecord]:
    """One flat-file row → (group id, product fields, variant)."""
    item_id = row.get("item_id") or row.get("id")
    if not item_id:
        raise RowError("'item_id' is required")
    title = row.get("title")
    if not title:
        raise RowError("'title' is required")
    amount, currency = _flat_price(row.get("price"), "price")
    list_price = None
    if row.get("sale_price"):
        sale, sale_currency = _flat_price(row.get("sale_price"), "sale_price")
        if sale_currency != currency or sale > amount:
            raise RowError("'sale_price' must be in the same currency and ≤ price")
        list_price, amount = amount, sale
    availability = (row.get("availability") or "in_stock").strip().lower()
    if availability not in AVAILABILITY:
        raise RowError(f"'availability' {availability!r} is not one of {sorted(AVAILABILITY)}")
    stock_text = (row.get("inventory_quantity") or "").strip()
    if stock_text and not stock_text.isdigit():
        raise RowError("'inventory_quantity' must be a non-negative integer")
    options = [{"name": name.title(), "value": str(row[name])}
               for name in ("color", "size", "material") if row.get(name)]
    search = _bool(row.get("is_eligible_search") or row.get("enable_search"), True)
    checkout = _bool(row.get("is_eligible_checkout") or row.get("enable_checkout"), True)
    if checkout and not search:
        raise RowError("'is_eligible_checkout' requires 'is_eligible_search'")
    variant = VariantRecord(
        id=str(item_id).strip(), title=title.strip(), price_amount=amount, currency=currency,
        description=row.get("description") or None, sku=row.get("mpn") or None,
        url=_url(row.get("url") or row.get("link"), "url"),
        image_url=_url(row.get("image_url") or row.get("image_link"), "image_url"),
        list_price_amount=list_price, availability=availability.replace("pre_order", "preorder"),
        stock=int(stock_text) if stock_text else None,
        requires_shipping=not _bool(row.get("is_digital"), False),
        variant_options=options,
        categories=[str(row["product_category"])] if row.get("product_category") else [],
        is_eligible_search=search, is_eligible_checkout=checkout,
    )
    group = (row.get("group_id") or row.get("item_group_id") or variant.id).strip()
    product = {"title": row.get("item_group_title") or title, "brand": row.get("brand") or None,
               "description": row.get("description") or None,
               "url": _url(row.get("url") or row.get("link"), "url")}
    return group, product, variant


def parse_openai_flat(lines: Iterable[str], delimiter: str) -> Iterator[Parsed]:
    """Rows sharing ``group_id`` become one product; the first row's line number is kept."""
    reader = csv.DictReader(lines, delimiter=delimiter)
    groups: dict[str, tuple[int, dict[str, Any], list[VariantRecord]]] = {}
    for row in reader:
        number = reader.line_num
        try:
            group, product, variant = openai_variant(row)
        except RowError as exc:
            yield number, RejectedRow(number, str(exc))
            continue
        if group not in groups:
            groups[group] = (number, product, [])
        variants = groups[group][2]
        if any(v.id == variant.id for v in variants):
            yield number, RejectedRow(number, f"duplicate item_id {variant.id!r}")
            continue
        variants.append(variant)
    for group, (number, product, variants) in groups.items():
        yield number, ProductRecord(id=group, variants=variants, **product)
