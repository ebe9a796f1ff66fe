"""OpenAI's file-upload product feed specification, as data, per spec version.

Source: developers.openai.com/commerce/specs/file-upload/products (the page takes a
``version`` parameter; ``currently-stable`` is the one OpenAI ingests today). Each version
lists the columns we emit (the spec's own names: no legacy aliases such as ``id``,
``link`` or ``enable_search``), which are required, which are list-valued, and the
validation rules of its tables. ``validate_item`` checks those rules and nothing else.

Sections of the spec referred to below: "OpenAI Flags", "Basic Product Data",
"Item Information", "Media", "Price & Promotions", "Availability & Inventory",
"Variants", "Merchant Info", "Returns", "Geo Tagging".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from functools import lru_cache
from typing import Any

from models.money import currency_exponent
from models.urls import MAX_URL_LENGTH, url_problem  # the one rule for URLs we publish

__all__ = ["CURRENTLY_STABLE", "OpenAISpec", "Problem", "all_plain_http_urls", "is_http_url",
           "spec_for", "validate_item", "validate_shared"]

Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Problem:
    code: str
    field: str
    message: str


@dataclass(frozen=True)
class OpenAISpec:
    version: str
    source: str
    columns: tuple[str, ...]
    required: tuple[str, ...]
    required_for_checkout: tuple[str, ...]
    list_fields: frozenset[str]
    boolean_fields: frozenset[str]
    url_fields: frozenset[str]
    date_fields: frozenset[str]
    limits: dict[str, int]
    availability: frozenset[str]
    conditions: frozenset[str] = field(default=frozenset({"new", "refurbished", "used"}))
    # column → its kind ("bool", "list", "url", "list_url", "date", "text"), derived
    kinds: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        kinds = {}
        for name in self.columns:
            if name in self.boolean_fields:
                kind = "bool"
            elif name in self.list_fields:
                kind = "list_url" if name in self.url_fields else "list"
            elif name in self.url_fields:
                kind = "url"
            elif name in self.date_fields:
                kind = "date"
            else:
                kind = "text"
            kinds[name] = kind
        object.__setattr__(self, "kinds", kinds)


CURRENTLY_STABLE = OpenAISpec(
    version="currently-stable",
    source="https://developers.openai.com/commerce/specs/file-upload/products"
           "?version=currently-stable",
    columns=(
        # OpenAI Flags
        "is_eligible_search", "is_eligible_checkout",
        # Basic Product Data
        "item_id", "gtin", "mpn", "title", "description", "url",
        # Item Information
        "condition", "product_category", "brand", "is_digital",
        # Media
        "image_url", "additional_image_urls", "video_url",
        # Price & Promotions
        "price", "sale_price", "sale_price_start_date", "sale_price_end_date",
        # Availability & Inventory
        "availability", "availability_date",
        # Variants
        "group_id", "listing_has_variations", "variant_dict",
        # Merchant Info
        "seller_name", "seller_url", "seller_privacy_policy", "seller_tos",
        # Returns
        "return_policy",
        # Geo Tagging
        "target_countries", "store_country",
    ),
    required=("is_eligible_search", "is_eligible_checkout", "item_id", "title",
              "description", "url", "brand", "image_url", "price", "availability",
              "seller_name", "seller_url", "return_policy", "listing_has_variations",
              "target_countries", "store_country"),
    required_for_checkout=("seller_privacy_policy", "seller_tos"),
    list_fields=frozenset({"target_countries", "additional_image_urls"}),
    boolean_fields=frozenset({"is_eligible_search", "is_eligible_checkout",
                              "listing_has_variations", "is_digital"}),
    url_fields=frozenset({"url", "image_url", "additional_image_urls", "video_url",
                          "seller_url", "seller_privacy_policy", "seller_tos",
                          "return_policy"}),
    date_fields=frozenset({"sale_price_start_date", "sale_price_end_date",
                           "availability_date"}),
    limits={"item_id": 100, "title": 150, "description": 5000, "brand": 70, "mpn": 70,
            "seller_name": 70, "group_id": 70},
    availability=frozenset({"in_stock", "out_of_stock", "pre_order", "backorder",
                            "unknown"}),
)

SPECS: dict[str, OpenAISpec] = {CURRENTLY_STABLE.version: CURRENTLY_STABLE}
DEFAULT_VERSION = CURRENTLY_STABLE.version


def spec_for(version: str) -> OpenAISpec:
    try:
        return SPECS[version]
    except KeyError:
        raise ValueError(f"unknown OpenAI feed spec version {version!r}; "
                         f"known: {', '.join(sorted(SPECS))}") from None


# A strict subset of what ``url_problem`` accepts (a plain host, no port, then only
# RFC 3986 characters): matching it is proof enough; anything else gets the full check.
_PLAIN = (r"https?://[A-Za-z0-9.-]+"
          r"(?:[/?#][A-Za-z0-9\-._~%!$&'()*+,;=:@/?#\[\]]*)?")
_PLAIN_HTTP_URL = re.compile(_PLAIN)
# Several plain URLs, one a line (a plain URL has no line break): one match for them all.
_PLAIN_HTTP_URL_LINES = re.compile(rf"{_PLAIN}(?:\n{_PLAIN})*")


def is_http_url(value: object) -> bool:
    """``models.urls.url_problem`` is None (absolute http(s), a host, no credentials, no
    whitespace/controls), with a fast path for the common plain URL."""
    if not isinstance(value, str):
        return False
    if len(value) <= MAX_URL_LENGTH and _PLAIN_HTTP_URL.fullmatch(value):
        return True
    return url_problem(value) is None


def all_plain_http_urls(urls: list[str]) -> bool:
    """True when every one of ``urls`` (strings) is a plain http(s) URL (so
    ``is_http_url`` holds for each): one regular-expression match for the lot. False
    means "check them one by one", not that one is bad."""
    joined = "\n".join(urls)
    return len(joined) <= MAX_URL_LENGTH and joined.count("\n") == len(urls) - 1 and \
        _PLAIN_HTTP_URL_LINES.fullmatch(joined) is not None  # (no URL has a line break)


_PRICE = re.compile(r"^(\d+)(?:\.(\d{1,3}))? ([A-Z]{3})$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_GTIN = re.compile(r"^\d{8}$|^\d{12,14}$")


@lru_cache(maxsize=65536)  # a catalog repeats its prices
def price_ok(text: str) -> bool:
    """'79.99 USD': a number with the currency's minor-unit decimals, then ISO 4217."""
    found = _PRICE.match(text)
    if not found:
        return False
    return len(found.group(2) or "") in (0, currency_exponent(found.group(3)))


_ABSENT: tuple[object, ...] = (None, "", [], {})


def _present(value: object) -> bool:
    return value not in _ABSENT


def _field_problem(name: str, value: Any, spec: OpenAISpec) -> Problem | None:
    """The per-field rules (type, format, length) for one present value."""
    kind = spec.kinds.get(name)
    if kind is None:
        return Problem("unknown_field", name, f"{name} is not a {spec.version} field")
    if kind == "text":
        limit = spec.limits.get(name)
        if limit is not None and isinstance(value, str) and len(value) > limit:
            return Problem("too_long", name, f"{name} is longer than {limit}")
        return None
    if kind == "bool":
        if value not in ("true", "false"):
            return Problem("bad_boolean", name,
                           f"{name} must be the lower-case string true or false")
        return None
    if kind == "url":
        return None if is_http_url(value) else Problem(
            "bad_url", name, f"{name} is not an http(s) URL")
    if kind in ("list", "list_url"):
        if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            return Problem("bad_list", name, f"{name} must be a list of strings")
        if kind == "list_url" and not all(is_http_url(v) for v in value):
            return Problem("bad_url", name, f"{name} is not an http(s) URL")
        return None
    try:  # date
        date.fromisoformat(str(value))
    except ValueError:
        return Problem("bad_date", name, f"{name} must be an ISO 8601 date")
    return None


def validate_shared(fields: Json, spec: OpenAISpec) -> list[Problem]:
    """Fields every row shares (seller, policies, countries): checked once per build."""
    problems = [Problem("missing_required", name, f"{name} is required")
                for name, value in fields.items() if not _present(value)
                and (name in spec.required or name in spec.required_for_checkout)]
    problems += [p for name, value in fields.items() if _present(value)
                 for p in [_field_problem(name, value, spec)] if p is not None]
    countries = fields.get("target_countries")
    if isinstance(countries, list) and not all(isinstance(c, str) and _COUNTRY.match(c)
                                               for c in countries):
        problems.append(Problem("bad_country", "target_countries", "ISO 3166-1 alpha-2"))
    store = fields.get("store_country")
    if isinstance(store, str) and store and not _COUNTRY.match(store):
        problems.append(Problem("bad_country", "store_country", "ISO 3166-1 alpha-2"))
    return problems


def validate_item(item: Json, spec: OpenAISpec,
                  checked: frozenset[str] = frozenset()) -> list[Problem]:
    """The spec's required/optional rules for one row, and nothing else. ``checked``:
    fields whose (shared) values were already validated once for the whole build."""
    problems: list[Problem] = []
    add = problems.append
    get = item.get
    for name in spec.required:
        if name not in checked and get(name) in _ABSENT:  # (not _present)
            add(Problem("missing_required", name, f"{name} is required"))
    kinds, limits = spec.kinds, spec.limits
    for name, value in item.items():
        if value is None or name in checked:
            continue
        # The common valid cases answered here; anything else by ``_field_problem``.
        kind = kinds.get(name)
        if kind == "text" and type(value) is str:
            limit = limits.get(name)
            if limit is None or len(value) <= limit:
                continue
        elif kind == "bool" and (value == "true" or value == "false"):
            continue
        elif kind == "url" and type(value) is str and is_http_url(value):
            continue
        problem = _field_problem(name, value, spec)
        if problem is not None:
            add(problem)
    price, sale = item.get("price"), item.get("sale_price")
    for name, value in (("price", price), ("sale_price", sale)):
        if value is not None and not (isinstance(value, str) and price_ok(value)):
            add(Problem("bad_price", name, f"{name} must look like '79.99 USD'"))
    if isinstance(price, str) and isinstance(sale, str) and price_ok(price) \
            and price_ok(sale):
        p_amount, p_cur = price.split()
        s_amount, s_cur = sale.split()
        if s_cur != p_cur or Decimal(s_amount) > Decimal(p_amount):
            add(Problem("sale_above_price", "sale_price",
                        "sale_price must be <= price, same currency"))
    availability = item.get("availability")
    if availability is not None and availability not in spec.availability:
        add(Problem("bad_enum", "availability",
                    f"availability must be one of {', '.join(sorted(spec.availability))}"))
    if availability == "pre_order" and not item.get("availability_date"):
        add(Problem("missing_required", "availability_date",
                    "availability_date is required when availability is pre_order"))
    condition = item.get("condition")
    if condition is not None and condition not in spec.conditions:
        add(Problem("bad_enum", "condition", "condition must be new, refurbished or used"))
    gtin = item.get("gtin")
    if gtin is not None and not (isinstance(gtin, str) and _GTIN.match(gtin)):
        add(Problem("bad_gtin", "gtin", "gtin must be 8-14 digits, no dashes or spaces"))
    countries = None if "target_countries" in checked else item.get("target_countries")
    if isinstance(countries, list) and not all(_COUNTRY.match(c) for c in countries
                                               if isinstance(c, str)):
        add(Problem("bad_country", "target_countries", "ISO 3166-1 alpha-2 codes"))
    store = None if "store_country" in checked else item.get("store_country")
    if isinstance(store, str) and store and not _COUNTRY.match(store):
        add(Problem("bad_country", "store_country", "ISO 3166-1 alpha-2 code"))
    if item.get("is_eligible_checkout") == "true":
        if item.get("is_eligible_search") != "true":
            add(Problem("checkout_without_search", "is_eligible_checkout",
                        "is_eligible_checkout needs is_eligible_search=true"))
        for name in spec.required_for_checkout:
            if name not in checked and not _present(item.get(name)):
                add(Problem("missing_required", name,
                            f"{name} is required when is_eligible_checkout=true"))
    if item.get("listing_has_variations") == "true":
        if not item.get("group_id"):
            add(Problem("missing_required", "group_id",
                        "group_id is required on every variant row"))
        elif item.get("group_id") == item.get("item_id"):
            add(Problem("group_is_item", "group_id",
                        "group_id names the parent listing, not the variant"))
    title = item.get("title")
    if isinstance(title, str) and len(title) > 10 and title.isupper():
        add(Problem("all_caps_title", "title", "avoid all-caps titles"))
    return problems
