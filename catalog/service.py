"""Catalog reads for agents: search, product detail, shoppable videos.

Shapes are plain JSON built by pure functions from repository rows; money is integer minor
units with a lowercase ISO currency, as in checkout, so an agent can pass any variant ``id``
straight to ``create_checkout_session``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from catalog import repository
from catalog.errors import InvalidFilter, ProductNotFound
from catalog.schemas import BUYABLE, SearchFilters, decode_cursor, encode_cursor
from links import repository as link_repository
from models import Video

Json = dict[str, Any]
SUMMARY_CHARS = 280


def effective_availability(availability: str, stock: int | None) -> str:
    return "out_of_stock" if stock is not None and stock <= 0 else availability


def variant_json(v: Any) -> Json:
    status = effective_availability(v.availability, v.stock)
    out: Json = {"id": v.id, "title": v.title,
                 "price": {"amount": v.price_amount, "currency": v.currency},
                 "availability": {"status": status,
                                  "available": status in BUYABLE and v.is_eligible_checkout}}
    if v.list_price_amount is not None and v.list_price_amount > v.price_amount:
        out["list_price"] = {"amount": v.list_price_amount, "currency": v.currency}
    if v.variant_options:
        out["options"] = [{"name": o["name"], "value": o["value"]} for o in v.variant_options]
    if v.image_url:
        out["image_url"] = v.image_url
    if v.sku:
        out["sku"] = v.sku
    if v.categories:
        out["categories"] = list(v.categories)
    if not v.is_eligible_checkout:
        out["purchasable"] = False
    return out


Link = tuple[str, str]  # a shoppable link: (code, short URL)
AGENT_LINK_CHANNELS = ("mcp", "acp", "openai")  # preferred for agents, else the newest


def attribution_for(video: Video, link: Link | None = None) -> Json:
    """The ACP ``affiliate_attribution`` an agent sends to credit a sale to ``video``;
    with the product's shoppable link, its code as ``token`` (the sale then joins the
    link: a click-through on the video)."""
    out: Json = {"provider": "reelcart", "publisher_id": video.creator or "reelcart",
                 "creative_id": video.id, "touchpoint": "first"}
    if video.campaign:
        out["campaign_id"] = video.campaign
    if link is not None:
        out["token"] = link[0]
    return out


async def links_for(db: AsyncSession, product_ids: Sequence[str], link_base: str
                    ) -> dict[tuple[str, str], Link]:
    """(product, video) → the shoppable link an agent should use."""
    if not link_base or not product_ids:
        return {}
    out: dict[tuple[str, str], Link] = {}
    by_product = await link_repository.links_for_products(db, product_ids)
    for product_id, links in by_product.items():
        ranked = sorted(links, key=lambda ln: AGENT_LINK_CHANNELS.index(ln.channel)
                        if ln.channel in AGENT_LINK_CHANNELS else len(AGENT_LINK_CHANNELS))
        for link in ranked:  # stable: newest first within a rank
            out.setdefault((product_id, link.video_id),
                           (link.code, f"{link_base.rstrip('/')}/v/{link.code}"))
    return out


def video_json(video: Video, link: Link | None = None) -> Json:
    """A shoppable video; ``creative_id`` is what credits a sale to it."""
    out: Json = {"id": video.id, "creative_id": video.id, "title": video.title,
                 "url": video.published_url or video.source_url,
                 "thumbnail_url": video.thumbnail_url, "platform": video.platform,
                 "duration_seconds": video.duration_seconds, "campaign": video.campaign,
                 "creator": video.creator,
                 "published_at": video.published_at.isoformat() if video.published_at
                 else None}
    if link is not None:
        out["shoppable_link"] = {"code": link[0], "url": link[1]}
    out["affiliate_attribution"] = attribution_for(video, link)
    return {k: v for k, v in out.items() if v is not None}


def _images(product: Any, variants: Sequence[Any]) -> list[str]:
    urls = [m["url"] for m in product.media or []
            if isinstance(m, dict) and m.get("type", "image") == "image" and m.get("url")]
    urls += [v.image_url for v in variants if v.image_url]
    return list(dict.fromkeys(urls))


def product_json(product: Any, variants: Sequence[Any], videos: Sequence[Video], *,
                 summary: bool, links: dict[tuple[str, str], Link] | None = None) -> Json:
    description = product.description or ""
    if summary and len(description) > SUMMARY_CHARS:
        description = description[:SUMMARY_CHARS - 1].rstrip() + "…"
    images = _images(product, variants)
    out: Json = {"id": product.id, "title": product.title}
    if product.brand:
        out["brand"] = product.brand
    if description:
        out["description"] = description
    if product.url:
        out["url"] = product.url
    if images:
        out["image_url"] = images[0]
    prices = {(v.currency, v.price_amount) for v in variants}
    if prices:
        currency = min(prices)[0]
        amounts = [a for c, a in prices if c == currency]
        out["price_range"] = {"min": min(amounts), "max": max(amounts), "currency": currency}
    out["variants"] = [variant_json(v) for v in variants]
    out["videos"] = [video_json(v, (links or {}).get((product.id, v.id))) for v in videos]
    if not summary:
        out["images"] = images
        out["media"] = list(product.media or [])
    return out


def _checked_currency(currency: str | None, min_price: int | None, max_price: int | None
                      ) -> str | None:
    """The currency price bounds are in (required with one), lower-cased."""
    if (min_price is not None or max_price is not None) and not currency:
        raise InvalidFilter("currency is required with a price bound (prices are minor units "
                            "of one currency, e.g. 2500 usd = $25.00).", param="$.currency")
    if min_price is not None and max_price is not None and min_price > max_price:
        raise InvalidFilter("min_price is greater than max_price.", param="$.min_price")
    return currency.lower() if currency else None


async def _videos_by_product(db: AsyncSession, product_ids: Sequence[str]
                             ) -> dict[str, list[Video]]:
    out: dict[str, list[Video]] = {}
    for product_id, _variant_id, video in await repository.videos_for_products(db, product_ids):
        if video not in out.setdefault(product_id, []):
            out[product_id].append(video)
    return out


async def search(db: AsyncSession, f: SearchFilters, *, cursor: str | None, limit: int,
                 link_base: str = "") -> Json:
    """One page of products; ``next_cursor`` fetches the next (absent on the last page)."""
    f = replace(f, currency=_checked_currency(f.currency, f.min_price, f.max_price))
    offset = decode_cursor(cursor)
    ids = await repository.search_product_ids(db, f, offset=offset, limit=limit + 1)
    page = ids[:limit]
    products = await repository.products(db, page)
    variants: dict[str, list[Any]] = {}
    for v in await repository.search_variants(db, page, f) if page else []:
        variants.setdefault(v.product_id, []).append(v)
    videos = await _videos_by_product(db, page) if page else {}
    links = await links_for(db, page, link_base)
    out: Json = {"products": [
        product_json(products[pid], variants.get(pid, []), videos.get(pid, [])[:3],
                     summary=True, links=links)
        for pid in page if pid in products]}
    if len(ids) > limit:
        out["next_cursor"] = encode_cursor(offset + limit)
    return out


async def product_detail(db: AsyncSession, product_id: str, *, policies: dict[str, str],
                         link_base: str = "") -> Json:
    """Everything about one product; ``policies`` are the store's policy links."""
    products = await repository.products(db, [product_id])
    if product_id not in products:
        raise ProductNotFound(product_id)
    variants = await repository.search_variants(db, [product_id], SearchFilters())
    videos = await _videos_by_product(db, [product_id])
    out = product_json(products[product_id], variants, videos.get(product_id, []),
                       summary=False, links=await links_for(db, [product_id], link_base))
    out["policies"] = dict(policies)
    return out


async def shoppable_videos(db: AsyncSession, *, product_id: str | None, campaign: str | None,
                           cursor: str | None, limit: int, link_base: str = "") -> Json:
    offset = decode_cursor(cursor)
    videos = await repository.video_page(db, product_id=product_id, campaign=campaign,
                                         offset=offset, limit=limit + 1)
    page = videos[:limit]
    featured: dict[str, list[tuple[str, str | None]]] = {}
    for video_id, pid, variant_id in await repository.featured_products(
            db, [v.id for v in page]) if page else []:
        featured.setdefault(video_id, []).append((pid, variant_id))
    product_ids = sorted({pid for pairs in featured.values() for pid, _ in pairs})
    products = await repository.products(db, product_ids) if product_ids else {}
    links = await links_for(db, product_ids, link_base)
    items = []
    for video in page:
        entry = video_json(video)
        entry["products"] = [
            {"product_id": pid, "title": products[pid].title,
             **({"variant_id": variant_id} if variant_id else {}),
             **({"shoppable_link": {"code": links[(pid, video.id)][0],
                                    "url": links[(pid, video.id)][1],
                                    "token": links[(pid, video.id)][0]}}
                if (pid, video.id) in links else {})}
            for pid, variant_id in featured.get(video.id, []) if pid in products]
        items.append(entry)
    out: Json = {"videos": items}
    if len(videos) > limit:
        out["next_cursor"] = encode_cursor(offset + limit)
    return out
