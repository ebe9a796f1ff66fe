"""Shoppable links: create/list, the redirect's destination, click and view touches.

The redirect reads the link through a few-seconds cache (``links.cache``) and queues the
click in the process's ``TouchBuffer`` (``links.buffer``: batched, flushed every 50 ms and
at shutdown; its docstring says what survives what), so it never waits on the database.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sqlalchemy.ext.asyncio import AsyncSession

from links import repository
from links.buffer import TouchBuffer
from links.errors import InvalidLink, LinkNotFound
from links.schemas import LinkIn, LinkTarget, link_json, link_url
from models import Product, ShoppableLink, Video
from models.base import new_id
from models.outbound import OutboundPolicy
from models.statuses import TouchType
from models.urls import url_problem

VISITOR_COOKIE = "rc_vid"
VISITOR_COOKIE_MAX_AGE = 365 * 24 * 3600
_VISITOR_VALUE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_CODE_ALPHABET = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/l/I
CODE_LENGTH = 8
LINK_REF = re.compile(r"^(?:clk_[0-9A-Z]{26}|[A-Za-z0-9]{6,16})$")


def new_code() -> str:
    return "".join(secrets.choice(_CODE_ALPHABET) for _ in range(CODE_LENGTH))


def visitor_hash(raw: str) -> str:
    """What is stored for a visitor: the SHA-256 of the random cookie value (the value
    itself is a bearer of the visitor's history, so it is never stored)."""
    return hashlib.sha256(raw.encode()).hexdigest()


def visitor_cookie(value: str | None) -> tuple[str, bool]:
    """The visitor's cookie value, or a new random one; ``(value, is_new)``."""
    if value and _VISITOR_VALUE.match(value):
        return value, False
    return secrets.token_urlsafe(18), True


def destination(target: LinkTarget, click_id: str | None) -> str:
    """The destination with the video's attribution parameters (existing ones are kept:
    a merchant's own ``utm_*`` on the destination win)."""
    assert target.destination is not None
    params: list[tuple[str, str]] = [("rc_video", target.video_id), ("rc_link", target.code)]
    if click_id:
        params.append(("rc_click", click_id))
    params += [("utm_source", target.channel), ("utm_medium", "shoppable_video"),
               ("utm_content", target.video_id)]
    if target.campaign:
        params.append(("utm_campaign", target.campaign))
    parts = urlsplit(target.destination)
    present = {k for k, _ in parse_qsl(parts.query, keep_blank_values=True)}
    extra = urlencode([(k, v) for k, v in params if k not in present])
    query = f"{parts.query}&{extra}" if parts.query and extra else (parts.query or extra)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def redirectable(target: LinkTarget | None) -> bool:
    return target is not None and target.destination is not None \
        and url_problem(target.destination) is None


def record_touch(buffer: TouchBuffer, target: LinkTarget, kind: TouchType, visitor: str,
                 at: datetime) -> str:
    """Queue one touch (a click, or a pixel view that also counts in
    ``video_view_counts`` with source ``pixel``); returns its id."""
    touch_id = new_id("clk" if kind == TouchType.click else "imp")
    buffer.add({"id": touch_id, "kind": kind.value, "link_code": target.code,
                "video_id": target.video_id, "channel": target.channel,
                "visitor": visitor_hash(visitor), "touched_at": at},
               view_of=(target.video_id, at.date()) if kind == TouchType.view else None)
    return touch_id


async def create_link(db: AsyncSession, data: LinkIn, *, policy: OutboundPolicy,
                      public_base_url: str) -> tuple[dict[str, Any], bool]:
    """The (video, product, channel) link, created once; given again it keeps its code
    and takes the destination given. Returns (link, created)."""
    if await db.get(Video, data.video_id) is None:
        raise InvalidLink(f"Unknown video {data.video_id!r}.", param="$.video_id")
    product = await db.get(Product, data.product_id)
    if product is None:
        raise InvalidLink(f"Unknown product {data.product_id!r}.", param="$.product_id")
    if data.destination_url is not None:
        problem = policy.problem(data.destination_url)
        if problem is not None:
            raise InvalidLink(f"destination_url refused: {problem}.",
                              param="$.destination_url")
    elif not product.url or url_problem(product.url) is not None:
        raise InvalidLink("The product has no http(s) URL to lead to; give a "
                          "destination_url.", param="$.destination_url")
    created = False
    link = await repository.find_link(db, data.video_id, data.product_id, data.channel,
                                      for_update=True)
    for _ in range(5):
        if link is not None:
            break
        created = await repository.insert_link_once(db, {
            "code": new_code(), "video_id": data.video_id, "product_id": data.product_id,
            "channel": data.channel, "destination_url": data.destination_url})
        link = await repository.find_link(db, data.video_id, data.product_id, data.channel,
                                          for_update=True)
    if link is None:  # five code collisions in a row: practically impossible
        raise InvalidLink("Could not allocate a link code; retry.", code="conflict",
                          status_code=409)
    if not created and link.destination_url != data.destination_url:
        link.destination_url = data.destination_url
        await db.flush()
    return link_json(link, public_base_url), created


async def get_link(db: AsyncSession, code: str, public_base_url: str) -> dict[str, Any]:
    link = await repository.get_link(db, code)
    if link is None:
        raise LinkNotFound(code)
    return link_json(link, public_base_url)


def short_urls(links: list[ShoppableLink], public_base_url: str) -> dict[str, str]:
    """channel → short URL (the newest link per channel)."""
    out: dict[str, str] = {}
    for link in links:
        out.setdefault(link.channel, link_url(public_base_url, link.code))
    return out
