"""Pure feed building: catalog rows → ACP ``Product`` objects and OpenAI flat-file items,
plus the OpenAI field rules used by ``reelcart feeds validate``."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from functools import cached_property, lru_cache
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import orjson

from feeds.openai_spec import (
    CURRENTLY_STABLE,
    OpenAISpec,
    Problem,
    all_plain_http_urls,
    is_http_url,
    validate_item,
    validate_shared,
)
from models.money import format_minor

# A catalog repeats its prices: each price text is made once.
price_text = lru_cache(maxsize=65536)(format_minor)

Json = dict[str, Any]
OPENAI_AVAILABILITY = {"in_stock": "in_stock", "limited_stock": "in_stock",
                       "backorder": "backorder", "preorder": "pre_order",
                       "pre_order": "pre_order", "out_of_stock": "out_of_stock",
                       "discontinued": "out_of_stock", "unknown": "unknown"}


_STORE_URLS = frozenset({"seller_url", "seller_privacy_policy", "seller_tos",
                         "return_policy"})


@dataclass(frozen=True)
class FeedConfig:
    feed_id: str
    seller_name: str
    seller_url: str
    privacy_url: str
    terms_url: str
    return_policy_url: str
    target_country: str
    store_country: str
    brand: str
    url_params: tuple[tuple[str, str], ...] = ()
    # (country, service, amount in minor units) for physical goods (Google's shipping)
    shipping: tuple[tuple[str, str, int], ...] = ()
    # Where shoppable links live (``{base}/v/{code}``); "" leaves product URLs as they are.
    short_link_base: str = ""

    @cached_property
    def encoded_params(self) -> str:
        return urlencode(self.url_params)

    @cached_property
    def configured_store_fields(self) -> Json:
        """The seller fields as configured (what ``validate_store`` checks)."""
        return {"seller_name": self.seller_name, "seller_url": self.seller_url,
                "seller_privacy_policy": self.privacy_url, "seller_tos": self.terms_url,
                "return_policy": self.return_policy_url,
                "target_countries": [self.target_country],
                "store_country": self.store_country}

    @cached_property
    def openai_store_fields(self) -> Json:
        """As configured, except that a policy link which is not http(s) is never published
        (it is reported by ``validate_store`` and left empty)."""
        return {k: ("" if k in _STORE_URLS and not is_http_url(v) else v)
                for k, v in self.configured_store_fields.items()}

    @cached_property
    def seller(self) -> Json:
        links = [{"type": kind, "url": url} for kind, url in (
            ("privacy_policy", self.privacy_url), ("terms_of_service", self.terms_url),
            ("refund_policy", self.return_policy_url)) if is_http_url(url)]
        return {"name": self.seller_name, "links": links} if links else \
            {"name": self.seller_name}

    @cached_property
    def seller_encoded(self) -> orjson.Fragment:
        return orjson.Fragment(orjson.dumps(self.seller))


# Rows are values: never changed once built (``dataclasses.replace`` makes another). Not
# ``frozen``: a frozen dataclass's constructor costs ~7x more, and a feed build makes a
# million of them.
@dataclass(slots=True)
class VariantRow:
    id: str
    title: str
    price_amount: int
    currency: str
    description: str | None = None
    sku: str | None = None
    url: str | None = None
    image_url: str | None = None
    list_price_amount: int | None = None
    availability: str = "in_stock"
    stock: int | None = None
    requires_shipping: bool = True
    variant_options: tuple[tuple[str, str], ...] = ()
    categories: tuple[str, ...] = ()
    is_eligible_search: bool = True
    is_eligible_checkout: bool = True


@dataclass(slots=True)
class ProductRow:
    id: str
    title: str
    variants: tuple[VariantRow, ...]
    description: str | None = None
    url: str | None = None
    brand: str | None = None
    media: tuple[Json, ...] = ()
    # The generated videos that feature this product: (url, title, id), newest first.
    videos: tuple[tuple[str, str | None, str], ...] = ()
    # Its shoppable links for the feed channels: (channel, code), one per channel.
    links: tuple[tuple[str, str], ...] = ()


def with_params(url: str | None, params: tuple[tuple[str, str], ...] | str) -> str | None:
    """Append tracking parameters (UTM, video/campaign) without clobbering existing ones."""
    if not url or not params:
        return url
    encoded = params if isinstance(params, str) else urlencode(params)
    if "#" in url:
        parts = urlsplit(url)
        query = parts.query + ("&" if parts.query else "") + encoded
        return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))
    return f"{url}{'&' if '?' in url else '?'}{encoded}"


def video_params(config: FeedConfig, product: ProductRow) -> str:
    """Tracking on product URLs: the configured UTM parameters, plus ``rc_video`` naming the
    newest video featuring the product, so a buyer landing through it is attributed."""
    if not product.videos:
        return config.encoded_params
    extra = urlencode({"rc_video": product.videos[0][2]})
    return f"{config.encoded_params}&{extra}" if config.encoded_params else extra


_AVAILABLE = frozenset({"in_stock", "limited_stock", "backorder", "preorder"})


# A catalog repeats the same few availability, option and category sets: each is built
# once and shared (read-only) by every item carrying it, either as the JSON object
# (``acp_product``) or already encoded (``acp_product_json``: an ``orjson.Fragment`` is
# written out verbatim, so the bytes are those of the object).
@lru_cache(maxsize=256)
def _acp_availability(status: str) -> Json:
    return {"available": status in _AVAILABLE, "status": status}


@lru_cache(maxsize=4096)
def _acp_options(options: tuple[tuple[str, str], ...]) -> list[Json]:
    return [{"name": n, "value": val} for n, val in options]


@lru_cache(maxsize=4096)
def _acp_categories(categories: tuple[str, ...]) -> list[Json]:
    return [{"value": c, "taxonomy": "merchant"} for c in categories]


@lru_cache(maxsize=256)
def _acp_availability_encoded(status: str) -> orjson.Fragment:
    return orjson.Fragment(orjson.dumps(_acp_availability(status)))


@lru_cache(maxsize=4096)
def _acp_options_encoded(options: tuple[tuple[str, str], ...]) -> orjson.Fragment:
    return orjson.Fragment(orjson.dumps(_acp_options(options)))


@lru_cache(maxsize=4096)
def _acp_categories_encoded(categories: tuple[str, ...]) -> orjson.Fragment:
    return orjson.Fragment(orjson.dumps(_acp_categories(categories)))


FEED_CHANNELS = ("acp", "openai", "google")  # link channels named after the feeds


def feed_url(product: ProductRow, url: str | None, config: FeedConfig, channel: str,
             params: str) -> str | None:
    """A product URL in the ``channel`` feed: the product's shoppable link for that
    channel when it has one (its redirect adds the video's attribution and records the
    click), else ``url`` with the tracking parameters."""
    return _short_link(product, config, channel) or with_params(url, params)


def _short_link(product: ProductRow, config: FeedConfig, channel: str) -> str | None:
    """The product's shoppable link in the ``channel`` feed, if it has one."""
    if not product.links or not config.short_link_base:
        return None
    code = next((c for ch, c in product.links if ch == channel), None)
    return f"{config.short_link_base.rstrip('/')}/v/{code}" if code else None


def acp_product(product: ProductRow, config: FeedConfig) -> Json:
    """The ACP ``Product``. Parts shared between products (the seller, availability,
    option and category lists) are shared objects: serialise the result, don't edit it."""
    return _acp(product, config, config.seller, _acp_availability, _acp_options,
                _acp_categories)


def acp_product_json(product: ProductRow, config: FeedConfig) -> bytes:
    """``orjson.dumps(acp_product(product, config))``, byte for byte, with the shared
    parts encoded once per build instead of once per variant."""
    return orjson.dumps(_acp(product, config, config.seller_encoded,
                             _acp_availability_encoded, _acp_options_encoded,
                             _acp_categories_encoded))


def _acp(product: ProductRow, config: FeedConfig, seller: Any,
         availability: Callable[[str], Any],
         options: Callable[[tuple[tuple[str, str], ...]], Any],
         categories: Callable[[tuple[str, ...]], Any]) -> Json:
    params = video_params(config, product)
    # What every variant without a URL of its own shares: computed once per product.
    short_link = _short_link(product, config, "acp")
    product_url = short_link or with_params(product.url, params)
    variants: list[Json] = []
    add = variants.append
    for v in product.variants:
        currency = v.currency.upper()
        variant: Json = {
            "id": v.id, "title": v.title,
            "price": {"amount": v.price_amount, "currency": currency},
            "availability": availability(v.availability),
            "seller": seller,
        }
        if v.description:
            variant["description"] = {"plain": v.description}
        url = short_link or (with_params(v.url, params) if v.url else product_url)
        if url:
            variant["url"] = url
        if v.list_price_amount is not None and v.list_price_amount > v.price_amount:
            variant["list_price"] = {"amount": v.list_price_amount, "currency": currency}
        if v.variant_options:
            variant["variant_options"] = options(v.variant_options)
        if v.categories:
            variant["categories"] = categories(v.categories)
        if v.image_url:
            variant["media"] = [{"type": "image", "url": v.image_url}]
        add(variant)
    out: Json = {"id": product.id, "title": product.title, "variants": variants}
    if product.description:
        out["description"] = {"plain": product.description}
    if product_url:
        out["url"] = product_url
    media = list(product.media) + [
        {"type": "video", "url": url, **({"alt_text": title} if title else {})}
        for url, title, _ in product.videos]
    if media:
        out["media"] = media
    return out


def _bool(value: bool) -> str:
    return "true" if value else "false"


def group_id_for(product: ProductRow) -> str | None:
    """OpenAI "Variants": one group id shared by every variant of a multi-variant listing,
    naming the parent (never equal to a variant's item id); none for a single item."""
    if len(product.variants) < 2:
        return None
    variant_ids = {v.id for v in product.variants}
    group = product.id
    while group in variant_ids:
        group = f"{group}-group"
    return group


def openai_items(product: ProductRow, config: FeedConfig,
                 spec: OpenAISpec = CURRENTLY_STABLE) -> Iterator[Json]:
    """One flat row per variant, with exactly the spec version's column names and formats:
    booleans as lower-case strings, lists as lists, prices as '79.99 USD'."""
    group = group_id_for(product)
    shared: Json = {  # what every variant of this product has in common
        **config.openai_store_fields,
        "brand": product.brand or config.brand,
        "listing_has_variations": _bool(group is not None),
    }
    if group is not None:
        shared["group_id"] = group
    extra_images = [m["url"] for m in product.media[1:] if m.get("type") == "image"]
    if extra_images:
        shared["additional_image_urls"] = extra_images
    if product.videos and "video_url" in spec.columns:  # the featured (newest) video
        shared["video_url"] = product.videos[0][0]
    primary_image = next((m["url"] for m in product.media if m.get("type") == "image"), "")
    params = video_params(config, product)
    for v in product.variants:
        on_sale = v.list_price_amount is not None and v.list_price_amount > v.price_amount
        item: Json = dict(shared)
        item["is_eligible_search"] = _bool(v.is_eligible_search)
        item["is_eligible_checkout"] = _bool(v.is_eligible_checkout and v.is_eligible_search)
        item["item_id"] = v.id
        item["title"] = v.title
        item["description"] = v.description or product.description or ""
        item["url"] = feed_url(product, v.url or product.url, config, "openai", params) or ""
        item["image_url"] = v.image_url or primary_image
        item["price"] = price_text(v.list_price_amount if on_sale and
                                     v.list_price_amount is not None else v.price_amount,
                                     v.currency)
        item["availability"] = OPENAI_AVAILABILITY.get(v.availability, "unknown")
        item["is_digital"] = _bool(not v.requires_shipping)
        if on_sale:
            item["sale_price"] = price_text(v.price_amount, v.currency)
        if v.sku:
            item["mpn"] = v.sku
        if v.categories:
            item["product_category"] = v.categories[0]
        if group is not None and v.variant_options:
            item["variant_dict"] = dict(v.variant_options)
        yield {k: item[k] for k in spec.columns if k in item}


OPENAI_COLUMNS = CURRENTLY_STABLE.columns

# ------------------------------------------------------------------ validation

STORE_FIELDS = ("seller_name", "seller_url", "seller_privacy_policy", "seller_tos",
                "return_policy", "target_countries", "store_country")


def validate_store(config: FeedConfig, spec: OpenAISpec = CURRENTLY_STABLE
                   ) -> list[Problem]:
    """Fields every row shares: checked once per build, not once per item."""
    return validate_shared(config.configured_store_fields, spec)


SHARED_FIELDS = frozenset(STORE_FIELDS)


def validate_openai_item(item: Json, spec: OpenAISpec = CURRENTLY_STABLE, *,
                         store_checked: bool = False) -> list[Problem]:
    """One row against the spec; with ``store_checked`` the shared seller fields are left
    to ``validate_store`` (run once per build)."""
    return validate_item(item, spec, SHARED_FIELDS if store_checked else frozenset())


def screen_urls(product: ProductRow) -> tuple[ProductRow | None, list[tuple[str, Problem]]]:
    """Every URL we publish must be http(s). A variant whose own link or image is not is
    left out; a product whose link, media or video is not is left out entirely. Returns
    the publishable product (or None) and a problem per item left out."""
    urls = [product.url] if product.url is not None else []
    try:
        urls += [m["url"] for m in product.media if m.get("url") is not None]
        urls += [video[0] for video in product.videos]
        for v in product.variants:
            if v.url is not None:
                urls.append(v.url)
            if v.image_url is not None:
                urls.append(v.image_url)
        if all_plain_http_urls(urls):  # the common case: one check for the lot
            return product, []
    except TypeError:  # a URL that is not a string: found and reported below
        pass
    bad_product = [(name, url) for name, url in
                   [("url", product.url)]
                   + [("image_url" if m.get("type") == "image" else "video_url",
                       m.get("url")) for m in product.media]
                   + [("video_url", video[0]) for video in product.videos]
                   if url is not None and not is_http_url(url)]
    problems: list[tuple[str, Problem]] = []
    if bad_product:
        name = bad_product[0][0]
        for v in product.variants:
            problems.append((v.id, Problem("bad_url", name,
                                           f"product {name} is not an http(s) URL; "
                                           "item left out of the feeds")))
        return None, problems
    kept = []
    for v in product.variants:
        bad = next((n for n, u in (("url", v.url), ("image_url", v.image_url))
                    if u is not None and not is_http_url(u)), None)
        if bad:
            problems.append((v.id, Problem("bad_url", bad, f"{bad} is not an http(s) URL; "
                                                           "item left out of the feeds")))
        else:
            kept.append(v)
    if not kept:
        return None, problems
    if len(kept) == len(product.variants):
        return product, problems
    return replace(product, variants=tuple(kept)), problems


@dataclass
class ValidationReport:
    spec_version: str = CURRENTLY_STABLE.version
    items: int = 0
    valid: int = 0
    excluded: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[Json]] = field(default_factory=dict)

    def add(self, item: Json, problems: Iterable[Problem]) -> None:
        self.items += 1
        seen = False
        for p in problems:
            seen = True
            key = f"{p.code}:{p.field}"
            self.counts[key] = self.counts.get(key, 0) + 1
            bucket = self.examples.setdefault(key, [])
            if len(bucket) < 5:
                bucket.append({"item_id": item.get("item_id"), "message": p.message})
        if not seen:
            self.valid += 1

    def exclude(self, item_id: str, problem: Problem) -> None:
        """An item left out of every feed (e.g. a non-http(s) URL): counted as a problem."""
        self.excluded += 1
        self.add({"item_id": item_id}, [problem])

    def as_dict(self) -> Json:
        return {"spec_version": self.spec_version, "items": self.items, "valid": self.valid,
                "invalid": self.items - self.valid, "excluded": self.excluded,
                "problems": [{"problem": k, "count": v, "examples": self.examples[k]}
                             for k, v in sorted(self.counts.items(), key=lambda kv: -kv[1])]}
