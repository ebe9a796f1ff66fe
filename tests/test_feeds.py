"""Feeds out: ACP products.jsonl + metadata.json (schema-valid), OpenAI jsonl/csv/tsv (gzip)
that parse back to the same items, sharding, validation, hosting with conditional GET."""

from __future__ import annotations

import csv
import gzip
import io
import json
from pathlib import Path

import orjson
import pytest

from api.runtime import build_runtime
from feeds.builder import (
    OPENAI_COLUMNS,
    FeedConfig,
    ProductRow,
    VariantRow,
    openai_items,
    validate_openai_item,
    validate_store,
    with_params,
)
from feeds.publish import FeedBuilder, build_feeds
from tests.acp_schema import assert_valid
from tests.conftest import app_client, make_settings, reset_database

CONFIG = FeedConfig(
    feed_id="feed_test", seller_name="Test Store", seller_url="https://shop.test",
    privacy_url="https://shop.test/privacy", terms_url="https://shop.test/tos",
    return_policy_url="https://shop.test/returns", target_country="US", store_country="US",
    brand="Test", url_params=(("utm_source", "agent"),))


def read_jsonl_gz(path: Path) -> list[dict]:
    with gzip.open(path, "rb") as f:
        return [orjson.loads(line) for line in f if line.strip()]


def read_table_gz(path: Path, delimiter: str) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter=delimiter))


async def test_feeds_from_the_catalog_are_valid_and_round_trip(database_url: str,
                                                               tmp_path: Path,
                                                               backend: str) -> None:
    from models.db import create_engine, create_sessionmaker

    await reset_database(database_url)
    engine = create_engine(database_url)
    report = await build_feeds(create_sessionmaker(engine), tmp_path, CONFIG)
    await engine.dispose()
    assert report.variants >= 72
    metadata = json.loads((tmp_path / "acp/metadata.json").read_text())
    assert_valid(metadata, "FeedMetadata", "schema.feed.json")
    products = [json.loads(line) for line in
                (tmp_path / "acp/products-00001.jsonl").read_text().splitlines()]
    assert len(products) == report.products
    for product in products:  # every line is a valid ACP Product
        assert_valid(product, "Product", "schema.feed.json")
    jsonl = read_jsonl_gz(tmp_path / "openai/products-00001.jsonl.gz")
    csv_rows = read_table_gz(tmp_path / "openai/products-00001.csv.gz", ",")
    tsv_rows = read_table_gz(tmp_path / "openai/products-00001.tsv.gz", "\t")
    assert len(jsonl) == len(csv_rows) == len(tsv_rows) == report.variants
    for item, c_row, t_row in zip(jsonl, csv_rows, tsv_rows, strict=True):
        for column in OPENAI_COLUMNS:  # the same item in every format
            expected = item.get(column, "")
            if isinstance(expected, dict):
                expected = orjson.dumps(expected).decode()
            elif isinstance(expected, list):  # repeated values: comma-separated
                expected = ",".join(expected)
            assert c_row[column] == expected == t_row[column], column
    jacket = next(i for i in jsonl if i["item_id"] == "denim-jacket-m")
    assert jacket["price"] == "97.90 USD"
    assert jacket["group_id"] == "denim-jacket"
    assert jacket["url"].endswith("&utm_source=agent")  # tracking kept with existing query
    assert jacket["variant_dict"] == {"Size": "M"}
    digital = next(i for i in jsonl if i["item_id"] == "lut-pack-personal")
    assert digital["is_digital"] == "true"
    assert report.validation["items"] == report.variants
    assert report.validation["spec_version"] == "currently-stable"
    assert report.validation["valid"] >= 72  # the demo items (test-only items lack URLs)


def test_shards_are_stable_and_atomic(tmp_path: Path) -> None:
    rows = [ProductRow(id=f"p{i}", title=f"P {i}", url=f"https://shop.test/p{i}",
                       variants=(VariantRow(id=f"p{i}-a", title="A", price_amount=100,
                                            currency="usd",
                                            image_url="https://shop.test/a.jpg"),))
            for i in range(25)]
    builder = FeedBuilder(tmp_path, CONFIG, openai_formats=("jsonl",), max_items=10)
    for row in rows:
        builder.add(row)
    report = builder.finish()
    assert report.files["openai_jsonl"] == [f"openai/products-0000{i}.jsonl.gz"
                                            for i in (1, 2, 3)]
    assert sum(len(read_jsonl_gz(tmp_path / f)) for f in report.files["openai_jsonl"]) == 25
    # A smaller catalog next time: the stale third shard disappears; no temp files remain.
    builder = FeedBuilder(tmp_path, CONFIG, openai_formats=("jsonl",), max_items=10)
    for row in rows[:12]:
        builder.add(row)
    builder.finish()
    assert sorted(p.name for p in (tmp_path / "openai").iterdir()) == [
        "products-00001.jsonl.gz", "products-00002.jsonl.gz"]
    assert not list(tmp_path.rglob(".*.tmp"))


@pytest.mark.parametrize(("change", "problem"), [
    ({"title": "X" * 151}, "too_long:title"),
    ({"price": "19.999 USD"}, "bad_price:price"),
    ({"price": "19.99"}, "bad_price:price"),
    ({"sale_price": "29.99 USD"}, "sale_above_price:sale_price"),
    ({"image_url": "ftp://nope"}, "bad_url:image_url"),
    ({"is_eligible_search": "false"}, "checkout_without_search:is_eligible_checkout"),
    ({"description": ""}, "missing_required:description"),
    ({"title": "SHOUTING TITLE HERE"}, "all_caps_title:title"),
    ({"target_countries": "US"}, "bad_list:target_countries"),
    ({"is_eligible_search": "True"}, "bad_boolean:is_eligible_search"),
    ({"item_group_title": "P"}, "unknown_field:item_group_title"),
    ({"availability": "preorder"}, "bad_enum:availability"),
    ({"availability": "pre_order"}, "missing_required:availability_date"),
    ({"listing_has_variations": "true"}, "missing_required:group_id"),
    ({"listing_has_variations": "true", "group_id": "v"}, "group_is_item:group_id"),
    ({"seller_tos": ""}, "missing_required:seller_tos"),
    ({"gtin": "0123-4567"}, "bad_gtin:gtin"),
    ({"sale_price_start_date": "01/07/2026"}, "bad_date:sale_price_start_date"),
])
def test_validation_rules(change: dict, problem: str) -> None:
    row = ProductRow(id="p", title="P", url="https://shop.test/p", description="d", variants=(
        VariantRow(id="v", title="V", price_amount=1999, currency="usd",
                   image_url="https://shop.test/v.jpg"),))
    item = next(openai_items(row, CONFIG))
    assert validate_openai_item(item) == []
    item.update(change)
    assert problem in {f"{p.code}:{p.field}" for p in validate_openai_item(item)}


def test_store_level_fields_are_checked_once() -> None:
    bad = FeedConfig(
        feed_id="f", seller_name="S", seller_url="https://s.test", privacy_url="nope",
        terms_url="", return_policy_url="https://s.test/r", target_country="US",
        store_country="usa", brand="B")
    found = {f"{p.code}:{p.field}" for p in validate_store(bad)}
    assert {"bad_url:seller_privacy_policy", "missing_required:seller_tos",
            "bad_country:store_country"} <= found
    assert validate_store(CONFIG) == []


def test_tracking_params_respect_existing_queries_and_fragments() -> None:
    assert with_params("https://s.test/p", "a=1") == "https://s.test/p?a=1"
    assert with_params("https://s.test/p?x=2", "a=1") == "https://s.test/p?x=2&a=1"
    assert with_params("https://s.test/p#top", "a=1") == "https://s.test/p?a=1#top"


async def test_hosted_feeds_support_conditional_requests(database_url: str, tmp_path: Path,
                                                         backend: str) -> None:
    from models.db import create_engine, create_sessionmaker

    await reset_database(database_url)
    engine = create_engine(database_url)
    await build_feeds(create_sessionmaker(engine), tmp_path, CONFIG)
    await engine.dispose()
    rt = build_runtime(make_settings(database_url, feeds_dir=tmp_path,
                                     merchant_api_keys=["merchant-key"]))
    async with app_client(rt, "http://t") as client:
        first = await client.get("/feeds/openai/products-00001.jsonl.gz")
        assert first.status_code == 200
        assert read_jsonl_gz_bytes(first.content)
        etag, modified = first.headers["etag"], first.headers["last-modified"]
        again = await client.get("/feeds/openai/products-00001.jsonl.gz",
                                 headers={"If-None-Match": etag})
        assert again.status_code == 304
        assert again.content == b""
        since = await client.get("/feeds/acp/metadata.json",
                                 headers={"If-Modified-Since": modified})
        assert since.status_code == 304
        assert (await client.get("/feeds/../pyproject.toml")).status_code == 404
        assert (await client.get("/feeds/openai/nope.gz")).status_code == 404
        assert (await client.get("/feeds/" + "0" * 300)).status_code == 404  # ENAMETOOLONG
        report = await client.get("/feeds/validation",
                                  headers={"Authorization": "Bearer merchant-key"})
        assert report.json()["validation"]["items"] >= 72
    await rt.close()


def read_jsonl_gz_bytes(data: bytes) -> list[dict]:
    with gzip.GzipFile(fileobj=io.BytesIO(data)) as f:
        return [orjson.loads(line) for line in f if line.strip()]
