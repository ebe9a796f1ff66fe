"""Catalog and order tools: what an assistant needs to find, show and follow a purchase.

Reads only, on the read engine. Errors use the same binding shape as checkout (-32000 with
an ACP ``Error``) with ``param`` pointing into the tool's arguments.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from catalog import service as catalog
from catalog.schemas import SearchFilters, query_terms
from models.errors import AppError
from orders import repository as orders
from orders.errors import OrderNotFound
from orders.service import acp_snapshot
from protocols.mcp import errors
from protocols.mcp.caller import Caller
from protocols.mcp.checkout_tools import Outcome

Json = dict[str, Any]
_ID = {"type": "string", "minLength": 1, "maxLength": 200}
_CURSOR = {"type": "string", "maxLength": 100,
           "description": "next_cursor from the previous page; omit for the first page."}


def _limit(default: int, maximum: int) -> Json:
    return {"type": "integer", "minimum": 1, "maximum": maximum, "default": default,
            "description": f"Results per page (default {default}, at most {maximum})."}


SCHEMAS: dict[str, Json] = {
    "search_products": {
        "type": "object", "additionalProperties": False,
        "properties": {
            "query": {"type": "string", "maxLength": 200,
                      "description": "Words to find in titles, brands, categories, options "
                                     "and descriptions; all must match. Omit to browse.",
                      "examples": ["denim jacket", "linen shirt M"]},
            "min_price": {"type": "integer", "minimum": 0,
                          "description": "Lowest variant price in minor units (2500 = "
                                         "$25.00). Needs currency."},
            "max_price": {"type": "integer", "minimum": 0,
                          "description": "Highest variant price in minor units. Needs "
                                         "currency."},
            "currency": {"type": "string", "pattern": "^[A-Za-z]{3}$",
                         "description": "ISO 4217 code, e.g. \"usd\"."},
            "available_only": {"type": "boolean", "default": False,
                               "description": "Only variants that can be bought now."},
            "category": {"type": "string", "maxLength": 200,
                         "description": "Exact category name (case-insensitive), as shown "
                                        "in variants[].categories."},
            "brand": {"type": "string", "maxLength": 200,
                      "description": "Exact brand name (case-insensitive)."},
            "limit": _limit(10, 50),
            "cursor": _CURSOR,
        },
        "examples": [{"query": "jacket", "max_price": 15000, "currency": "usd",
                      "available_only": True}],
    },
    "get_product": {
        "type": "object", "additionalProperties": False, "required": ["product_id"],
        "properties": {"product_id": {**_ID, "description": "products[].id from "
                                      "search_products."}},
        "examples": [{"product_id": "denim-jacket"}],
    },
    "list_shoppable_videos": {
        "type": "object", "additionalProperties": False,
        "properties": {
            "product_id": {**_ID, "description": "Only videos featuring this product."},
            "campaign": {"type": "string", "maxLength": 200,
                         "description": "Only videos of this campaign."},
            "limit": _limit(10, 50),
            "cursor": _CURSOR,
        },
        "examples": [{"product_id": "denim-jacket", "limit": 5}],
    },
    "get_order": {
        "type": "object", "additionalProperties": False, "required": ["order_id"],
        "properties": {"order_id": {**_ID, "description": "order.id from "
                                    "complete_checkout_session."}},
        "examples": [{"order_id": "ord_01J…"}],
    },
}

DESCRIPTIONS = {
    "search_products": (
        "Search the store's catalog by words and filters. Returns products best match first, "
        "each with its buyable variants (id, price in minor units, availability, options, "
        "image) and the shoppable videos featuring it. Pass a variant id to "
        "create_checkout_session as line_items[].id. More pages: call again with "
        "next_cursor."),
    "get_product": (
        "Full detail of one product: every variant with options, prices and availability, "
        "images and media, shoppable videos, and the store's policies (returns, terms, "
        "privacy)."),
    "list_shoppable_videos": (
        "Shoppable videos (newest first) with the products they feature. When the buyer "
        "comes from a video, pass its affiliate_attribution object unchanged as "
        "payload.affiliate_attribution of create_checkout_session (it carries the video's "
        "creative_id) so the sale is credited to that video."),
    "get_order": (
        "The current state of an order you placed: status, line items (ordered/fulfilled "
        "quantities), fulfillments with carrier and tracking, refunds and other adjustments, "
        "totals."),
}
TOOLS = tuple(DESCRIPTIONS)
TITLES = {"search_products": "Search products", "get_product": "Get product",
          "list_shoppable_videos": "List shoppable videos", "get_order": "Get order"}


@cache
def _validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(SCHEMAS[name])


async def _search(caller: Caller, args: Json) -> Json:
    filters = SearchFilters(
        terms=tuple(query_terms(args.get("query"))), min_price=args.get("min_price"),
        max_price=args.get("max_price"), currency=args.get("currency"),
        available_only=bool(args.get("available_only", False)),
        category=args.get("category") or None, brand=args.get("brand") or None)
    async with caller.read_sessionmaker() as db:
        return await catalog.search(db, filters, cursor=args.get("cursor"),
                                    limit=int(args.get("limit", 10)),
                                    link_base=caller.checkout.public_base_url)


async def _product(caller: Caller, args: Json) -> Json:
    async with caller.read_sessionmaker() as db:
        profile = caller.profile
        return await catalog.product_detail(db, args["product_id"], policies={
            "terms_of_use": profile.terms_url, "privacy": profile.privacy_url,
            "returns": profile.return_policy_url},
            link_base=caller.checkout.public_base_url)


async def _videos(caller: Caller, args: Json) -> Json:
    async with caller.read_sessionmaker() as db:
        return await catalog.shoppable_videos(
            db, product_id=args.get("product_id"), campaign=args.get("campaign"),
            cursor=args.get("cursor"), limit=int(args.get("limit", 10)),
            link_base=caller.checkout.public_base_url)


async def _order(caller: Caller, args: Json) -> Json:
    async with caller.read_sessionmaker() as db:
        order = await orders.get_agent_order(db, args["order_id"], caller.agent_id)
        if order is None:
            raise OrderNotFound(args["order_id"])
        return await acp_snapshot(db, order, caller.profile.support_email)


_HANDLERS: dict[str, Callable[[Caller, Json], Awaitable[Json]]] = {
    "search_products": _search, "get_product": _product,
    "list_shoppable_videos": _videos, "get_order": _order}


async def call(caller: Caller, name: str, arguments: Json) -> Outcome:
    problem = best_match(_validator(name).iter_errors(arguments))
    if problem is not None:
        raise errors.from_schema_error(problem)
    try:
        return Outcome(await _HANDLERS[name](caller, arguments))
    except AppError as exc:  # params name the tool's arguments already
        if isinstance(exc, OrderNotFound):
            exc.param = "$.order_id"
        raise errors.acp_error(exc.body(), rebase=False) from None
