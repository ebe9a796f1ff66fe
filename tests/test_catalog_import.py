"""Catalog import: ACP Product JSONL and OpenAI flat-file CSV/TSV, through the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from feeds.parsing import parse_acp_jsonl, parse_openai_flat
from feeds.schemas import ProductRecord, RejectedRow
from models import Variant
from models.db import create_engine, create_sessionmaker
from tests.acp_schema import assert_valid, require_spec

GOOD = {"id": "p1", "title": "Tee", "variants": [
    {"id": "p1-s", "title": "Tee S", "price": {"amount": 1999, "currency": "USD"},
     "availability": {"available": True, "status": "in_stock"},
     "variant_options": [{"name": "Size", "value": "S"}],
     "media": [{"type": "image", "url": "https://x.test/s.jpg"}]},
    {"id": "p1-m", "title": "Tee M", "price": {"amount": 1999, "currency": "USD"}}]}


def test_acp_jsonl_good_and_bad_rows_with_line_numbers() -> None:
    lines = [json.dumps(GOOD), "", "{not json", json.dumps({"id": "p2", "variants": []}),
             json.dumps({"id": "p3", "variants": [{"id": "v", "title": "V",
                                                   "price": {"amount": 1.5,
                                                             "currency": "USD"}}]}),
             json.dumps({"id": "p4", "variants": [{"id": "w", "title": "W", "price": {
                 "amount": 100, "currency": "USD"}, "availability": "in_stock"}]})]
    parsed = list(parse_acp_jsonl(lines))
    records = [p for _, p in parsed if isinstance(p, ProductRecord)]
    rejects = [p for _, p in parsed if isinstance(p, RejectedRow)]
    assert [r.id for r in records] == ["p1"]
    assert records[0].variants[0].price_amount == 1999
    assert records[0].variants[0].currency == "usd"
    assert [(r.line, r.reason.split(":")[0]) for r in rejects] == [
        (3, "invalid JSON"), (4, "'variants' must be a non-empty array"),
        (5, "variants[0].price.amount must be a non-negative integer (minor units)"),
        (6, "variants[0].availability must be an object")]  # was a crash (AttributeError)


def test_spec_feed_example_product_imports() -> None:
    root = require_spec()
    examples = json.loads((root / "examples/2026-04-17/examples.feed.json").read_text())
    products = [p for ex in examples.values() if isinstance(ex, dict)
                for p in ex.get("products", [])]
    assert products
    for product in products:
        assert_valid(product, "Product", "schema.feed.json")
        parsed = list(parse_acp_jsonl([json.dumps(product)]))[0][1]
        if all("price" in v for v in product["variants"]):
            assert isinstance(parsed, ProductRecord), parsed
            assert {v.id for v in parsed.variants} == {v["id"] for v in product["variants"]}
        else:  # ACP allows price-less variants; we cannot sell them, and say so
            assert isinstance(parsed, RejectedRow)
            assert "price is required" in parsed.reason


CSV = """item_id,title,description,url,brand,image_url,price,availability,group_id,is_eligible_search,is_eligible_checkout,inventory_quantity,color,is_digital
tee-red,Red Tee,Soft tee,https://x.test/tee,Acme,https://x.test/r.jpg,19.99 USD,in_stock,tee,true,true,10,Red,false
tee-blue,Blue Tee,Soft tee,https://x.test/tee,Acme,https://x.test/b.jpg,19.99 USD,in_stock,tee,true,true,0,Blue,false
bad-price,Bad,x,https://x.test,Acme,https://x.test/x.jpg,19.999 USD,in_stock,bad,true,true,,,
no-search,NS,x,https://x.test,Acme,https://x.test/x.jpg,5.00 USD,in_stock,ns,false,true,,,
ebook,E-book,x,https://x.test/e,Acme,https://x.test/e.jpg,9 USD,in_stock,ebook,true,true,,,true
"""


@pytest.mark.parametrize("delimiter", [",", "\t"])
def test_openai_flat_file_groups_variants_and_reports_bad_rows(delimiter: str) -> None:
    text = CSV.replace(",", delimiter)
    parsed = list(parse_openai_flat(text.splitlines(keepends=True), delimiter))
    records = {p.id: p for _, p in parsed if isinstance(p, ProductRecord)}
    rejects = {r.line: r.reason for _, r in parsed if isinstance(r, RejectedRow)}
    assert set(records) == {"tee", "ebook"}
    assert [v.id for v in records["tee"].variants] == ["tee-red", "tee-blue"]
    assert records["tee"].variants[0].stock == 10
    assert records["tee"].variants[0].price_amount == 1999
    assert records["ebook"].variants[0].requires_shipping is False
    assert records["ebook"].variants[0].price_amount == 900
    assert "more decimals" in rejects[4]
    assert "requires 'is_eligible_search'" in rejects[5]


def run_cli(*args: str, db_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REELCART_DATABASE_URL": db_url}
    return subprocess.run([sys.executable, "-m", "api.cli", *args], capture_output=True,
                          text=True, env=env, timeout=120, check=False)


async def test_cli_import_upserts_and_counts(tmp_path: Path) -> None:
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    feed = tmp_path / "products.jsonl"
    feed.write_text(json.dumps(GOOD) + "\n" + "{bad\n")
    first = run_cli("catalog", "import", str(feed), db_url=db_url)
    assert first.returncode == 0, first.stderr
    assert "1 created, 0 updated, 0 unchanged, 1 rejected" in first.stdout
    assert "line 2: invalid JSON" in first.stderr
    again = run_cli("catalog", "import", str(feed), db_url=db_url)
    assert "0 created, 0 updated, 1 unchanged, 1 rejected" in again.stdout
    changed = dict(GOOD, title="Tee v2")
    feed.write_text(json.dumps(changed) + "\n")
    third = run_cli("catalog", "import", str(feed), "--strict", db_url=db_url)
    assert third.returncode == 0
    assert "0 created, 1 updated" in third.stdout
    csv_file = tmp_path / "feed.csv"
    csv_file.write_text(CSV)
    strict = run_cli("catalog", "import", str(csv_file), "--strict", db_url=db_url)
    assert strict.returncode == 1
    engine = create_engine(db_url)
    async with create_sessionmaker(engine)() as db:
        stock = await db.scalar(select(Variant.stock).where(Variant.id == "tee-red"))
    await engine.dispose()
    assert stock == 10


async def test_cli_agent_key_is_printed_once_and_only_its_hash_is_stored(tmp_path: Path
                                                                        ) -> None:
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'keys.db'}"
    result = run_cli("agent-key", "create", "chatgpt", db_url=db_url)
    assert result.returncode == 0, result.stderr
    key = result.stdout.strip()
    assert key.startswith("rck_")
    raw = (tmp_path / "keys.db").read_bytes()
    for suffix in ("", "-wal"):
        path = tmp_path / f"keys.db{suffix}"
        if path.exists():
            raw += path.read_bytes()
    assert key.encode() not in raw
    import hashlib

    assert hashlib.sha256(key.encode()).hexdigest().encode() in raw
