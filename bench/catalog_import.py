"""Catalog import speed: an ACP Product JSONL file through the importer into SQLite.

Writes a synthetic feed (products × 4 variants, cached in the temp folder), imports it into
a fresh, migrated database (parse + upsert + search index, one transaction per batch: what
``reelcart catalog import`` does), then imports it again unchanged and once more with every
price changed. Prints variants/s beside the target (≥ 30,000 variants/s), and the
process's CPU time (on a shared machine the wall clock mostly measures the neighbours).

    .venv/bin/python bench/catalog_import.py [--variants 300000] [--database-url URL]

With ``--database-url`` (e.g. a scratch PostgreSQL database) the catalog tables there are
emptied first.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import orjson

TARGET = 30_000
SIZES = ("S", "M", "L", "XL")
CACHE = Path(tempfile.gettempdir()) / "reelcart-bench"


def product(p: int, price_bump: int = 0) -> dict:
    pid = f"prod-{p:07d}"
    return {
        "id": pid, "title": f"Product {p} as seen in a generated short",
        "description": {"plain": "A product that an AI-generated video featured. " * 3},
        "url": f"https://bench.example.com/p/{pid}", "brand": "Bench",
        "media": [{"type": "image", "url": f"https://cdn.example.com/{pid}/1.jpg"}],
        "variants": [{
            "id": f"{pid}-{size}", "title": f"Product {p} — {size}", "sku": f"SKU-{p}-{size}",
            "price": {"amount": 1999 + p % 500 + price_bump, "currency": "USD"},
            "availability": {"available": True, "status": "in_stock"},
            "variant_options": [{"name": "Size", "value": size}],
            "categories": [{"value": "Apparel > Tops", "taxonomy": "merchant"}],
            "media": [{"type": "image", "url": f"https://cdn.example.com/{pid}/{size}.jpg"}],
        } for size in SIZES]}


def feed_file(variants: int, price_bump: int = 0) -> Path:
    """The synthetic ACP feed, written once per size and cached."""
    CACHE.mkdir(exist_ok=True)
    path = CACHE / f"catalog-{variants}-{price_bump}.jsonl"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        with tmp.open("wb") as f:
            for p in range(variants // len(SIZES)):
                f.write(orjson.dumps(product(p, price_bump)) + b"\n")
        tmp.replace(path)
    return path


async def import_file(url: str, path: Path) -> tuple[float, float, str]:
    from api.runtime import settle_heap
    from feeds.parsing import parse_acp_jsonl
    from feeds.service import import_catalog
    from models.db import create_engine, create_sessionmaker

    settle_heap()  # as `reelcart catalog import` does
    engine = create_engine(url)
    started, cpu = time.perf_counter(), time.process_time()
    with path.open(encoding="utf-8") as lines:
        report = await import_catalog(create_sessionmaker(engine), parse_acp_jsonl(lines))
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    await engine.dispose()
    return elapsed, cpu, (f"{report.created} created, {report.updated} updated, "
                     f"{report.unchanged} unchanged, {len(report.rejected)} rejected")


async def empty_catalog(url: str) -> None:
    from sqlalchemy import text

    from models.db import create_engine

    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM variants"))
        await conn.execute(text("DELETE FROM products"))
    await engine.dispose()


def main() -> None:
    from models.migrate import upgrade

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", type=int, default=300_000)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    url = args.database_url
    if url is None:
        folder = Path(tempfile.mkdtemp(prefix="reelcart-import-"))
        url = f"sqlite+aiosqlite:///{folder / 'catalog.db'}"
    upgrade(url)
    if args.database_url:
        asyncio.run(empty_catalog(url))
    print(f"ReelCart catalog import, {args.variants:,} variants into {url.split('://')[0]}")
    for name, path in (("first import (created)", feed_file(args.variants)),
                       ("again (unchanged)", feed_file(args.variants)),
                       ("prices changed (updated)", feed_file(args.variants, 100))):
        elapsed, cpu, counts = asyncio.run(import_file(url, path))
        rate = args.variants / elapsed
        verdict = "ok" if rate >= TARGET else "BELOW TARGET"
        print(f"{name:<26} {elapsed:6.1f} s  {rate:>9,.0f} variants/s  "
              f"(target ≥ {TARGET:,}: {verdict})  CPU {cpu:5.1f} s = "
              f"{args.variants / cpu:,.0f} variants per CPU-second  {counts}")


if __name__ == "__main__":
    main()
