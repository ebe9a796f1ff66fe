"""Issue 16, feeds at 100k items/s: the build's fast paths give exactly what the plain
paths give. ACP lines are encoded with the shared parts (seller, availability, options,
categories) pre-encoded; a product's URLs are screened with one match when all are
plain; the catalog can be read in key ranges (the pieces of a parallel build)."""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
from dataclasses import replace
from pathlib import Path

import orjson
import pytest
from sqlalchemy.engine import make_url

from api.runtime import Runtime
from feeds.builder import (
    FeedConfig,
    ProductRow,
    VariantRow,
    acp_product,
    acp_product_json,
    screen_urls,
)
from feeds.openai_spec import all_plain_http_urls, is_http_url
from feeds.publish import run_build
from feeds.reader import database_url, key_ranges, read_catalog

CONFIG = FeedConfig(
    feed_id="feed_test", seller_name="Test Store", seller_url="https://shop.test",
    privacy_url="https://shop.test/privacy", terms_url="https://shop.test/tos",
    return_policy_url="https://shop.test/returns", target_country="US", store_country="US",
    brand="Test", url_params=(("utm_source", "agent"),))
# A seller whose policy links are partly not publishable, and shoppable links in use.
LINKED = replace(CONFIG, privacy_url="javascript:alert(1)", short_link_base="https://rc.test/",
                 url_params=())


def variants() -> list[VariantRow]:
    return [
        VariantRow(id="v1", title="Mug — Blue", price_amount=1250, currency="usd"),
        VariantRow(id="v2", title="Tasse « bleue »", price_amount=999, currency="eur",
                   description="Émaillée, 350 ml", url="https://shop.test/v2?c=1#top",
                   image_url="https://cdn.test/v2.jpg", list_price_amount=1500,
                   availability="backorder", variant_options=(("Colour", "Bleu"),),
                   categories=("Home > Kitchen", "Gifts")),
        VariantRow(id="v3", title="Yen mug", price_amount=1500, currency="jpy",
                   list_price_amount=1000, availability="discontinued",
                   variant_options=(("Size", "L"), ("Colour", "Red"))),
    ]


def products() -> list[ProductRow]:
    """Products covering every branch of the ACP builder."""
    out: list[ProductRow] = []
    for url, description, videos, links, media in itertools.product(
            (None, "https://shop.test/mug"), (None, "A mug \u2603 \"quoted\""),
            ((), (("https://v.test/1", "Clip", "vid_1"), ("https://v.test/2", None, "vid_2"))),
            ((), (("acp", "abc123"), ("openai", "def456")), (("google", "g1"),)),
            ((), ({"type": "image", "url": "https://cdn.test/mug.jpg", "alt_text": "Mug"},))):
        out.append(ProductRow(id=f"p{len(out)}", title="Mug", variants=tuple(variants()),
                              description=description, url=url, brand="Kiln", media=media,
                              videos=videos, links=links))
    return out


@pytest.mark.parametrize("config", [CONFIG, LINKED], ids=["utm", "short-links"])
def test_encoded_acp_lines_are_the_acp_products_byte_for_byte(config: FeedConfig) -> None:
    for product in products():
        assert acp_product_json(product, config) == orjson.dumps(acp_product(product, config))


@pytest.mark.parametrize("urls", [
    ["https://a.test/x\nhttps://b.test"],  # one URL with a line break is not two URLs
    ["https://a.test/x", "javascript:alert(1)"],
    ["https://a.test/x", "https://user:pw@b.test/"],
    ["https://a.test/" + "x" * 2100],
    ["https://a.test/x", " https://b.test"],
])
def test_one_match_for_a_products_urls_never_passes_a_bad_one(urls: list[str]) -> None:
    assert not all(is_http_url(u) for u in urls)
    assert not all_plain_http_urls(urls)
    product = ProductRow(id="p", title="P", url=urls[0], variants=(
        VariantRow(id="v", title="V", price_amount=1, currency="usd", image_url=urls[-1]),))
    kept, problems = screen_urls(product)
    assert kept is None
    assert [item for item, _ in problems] == ["v"]


def test_one_match_accepts_plain_urls() -> None:
    urls = ["https://shop.test/p?utm_source=agent#top", "http://cdn.test/a/b.jpg"]
    assert all_plain_http_urls(urls)
    product = products()[-1]
    assert screen_urls(product) == (product, [])


async def test_a_catalog_read_in_key_ranges_is_the_whole_catalog(runtime: Runtime) -> None:
    url = database_url(runtime.sessionmaker.kw["bind"])

    def read(parts: int) -> tuple[list[tuple[str | None, str | None]], list[ProductRow]]:
        ranges = key_ranges(url, parts)
        return ranges, [p for after, until in ranges
                        for chunk in read_catalog(url, chunk=4, after=after, until=until)
                        for p in chunk]

    whole = [p for chunk in await asyncio.to_thread(list, read_catalog(url)) for p in chunk]
    ranges, pieces = await asyncio.to_thread(read, 3)
    assert len(whole) >= 18
    assert len(ranges) == 3
    assert ranges[0][0] is None
    assert ranges[-1][1] is None
    assert pieces == whole


@pytest.mark.backends("sqlite")  # PostgreSQL's build keeps one snapshot: no WAL to starve
async def test_a_sqlite_build_lets_the_wal_be_checkpointed_while_it_runs(
        runtime: Runtime, tmp_path: Path) -> None:
    """A build used to hold one read snapshot from its first chunk to its last, so no
    checkpoint could empty the WAL while it ran: every commit made meanwhile piled up in it
    (0.8 GB after 5 minutes of checkouts during a 1M-variant build). Between chunks, a
    build now holds no read transaction: a TRUNCATE checkpoint completes mid-build."""
    url = database_url(runtime.sessionmaker.kw["bind"])
    path = make_url(url).database
    assert path
    outcomes: list[tuple[int, int, int]] = []

    def between_chunks(variants: int) -> None:  # the build has read a chunk
        conn = sqlite3.connect(path, timeout=10)  # waits for a chunk being read, if any
        try:
            conn.execute("UPDATE variants SET price_amount = price_amount + 1")
            conn.commit()
            outcomes.append(conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone())
        finally:
            conn.close()

    report = await asyncio.to_thread(run_build, url, tmp_path, runtime.settings.feed_config(
        runtime.profile), progress=between_chunks)
    assert report.variants >= 72
    assert outcomes
    assert outcomes[0][0] == 0, outcomes  # not busy: the WAL was checkpointed and emptied
