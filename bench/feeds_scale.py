"""Feed generation at scale: 1,000,000 variants through the real builders and writers.

Builds the ACP products.jsonl (sharded) and the OpenAI jsonl.gz feed from a synthetic
catalog stream (250,000 products × 4 variants), each format in its own pass, and prints
items/s and the peak RSS of the process. Targets: ≥ 50,000 items/s per format, peak RSS
under 300 MB, one core.

    .venv/bin/python bench/feeds_scale.py [--variants 1000000] [--from-db]

``--from-db`` first loads the catalog into a fresh SQLite database and streams it back
through ``catalog_rows`` (the path ``reelcart feeds build`` uses).
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from feeds.builder import FeedConfig, ProductRow, VariantRow
from feeds.publish import FeedBuilder

CONFIG = FeedConfig(
    feed_id="bench", seller_name="Bench Store", seller_url="https://bench.example.com",
    privacy_url="https://bench.example.com/privacy", terms_url="https://bench.example.com/tos",
    return_policy_url="https://bench.example.com/returns", target_country="US",
    store_country="US", brand="Bench", url_params=(("utm_source", "agent"),))
SIZES = ("S", "M", "L", "XL")


def synthetic(variants: int) -> Iterator[ProductRow]:
    for p in range(variants // len(SIZES)):
        pid = f"prod-{p:07d}"
        yield ProductRow(
            id=pid, title=f"Product {p} as seen in a generated short",
            description="A product that an AI-generated video featured. " * 3,
            url=f"https://bench.example.com/p/{pid}", brand="Bench",
            media=({"type": "image", "url": f"https://cdn.example.com/{pid}/1.jpg"},),
            variants=tuple(VariantRow(
                id=f"{pid}-{size}", title=f"Product {p} — {size}", price_amount=1999 + p % 500,
                currency="usd", sku=f"SKU-{p}-{size}", image_url=
                f"https://cdn.example.com/{pid}/{size}.jpg", variant_options=(("Size", size),),
                categories=("Apparel > Tops",)) for size in SIZES))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_pass(name: str, rows: Iterator[ProductRow], out: Path, *, acp: bool,
             openai: tuple[str, ...], google: bool = False) -> None:
    builder = FeedBuilder(out, CONFIG, openai_formats=openai, acp=acp, google_tsv=google)
    started = time.perf_counter()
    for product in rows:
        builder.add(product)
    report = builder.finish()
    elapsed = time.perf_counter() - started
    size = sum(f.stat().st_size for f in out.rglob("products-*"))
    print(f"{name:<22} {report.variants:>9,} items  {elapsed:6.1f} s  "
          f"{report.variants / elapsed:>9,.0f} items/s  files {size / 1e6:7.1f} MB  "
          f"peak RSS {peak_rss_mb():6.1f} MB")


async def load_db(url: str, variants: int) -> None:
    from feeds.schemas import ImportReport, ProductRecord, VariantRecord
    from feeds.service import upsert_products
    from models.db import create_engine, create_sessionmaker, transaction
    from models.migrate import upgrade_async

    await upgrade_async(url)
    engine = create_engine(url)
    batch: list[ProductRecord] = []
    async def flush() -> None:
        async with transaction(create_sessionmaker(engine)) as db:
            await upsert_products(db, batch, ImportReport(), list(range(len(batch))))
    for row in synthetic(variants):
        batch.append(ProductRecord(id=row.id, title=row.title, description=row.description,
                                   url=row.url, brand=row.brand, media=list(row.media),
                                   variants=[VariantRecord(
                                       id=v.id, title=v.title, price_amount=v.price_amount,
                                       currency=v.currency, sku=v.sku, image_url=v.image_url,
                                       variant_options=[{"name": n, "value": x}
                                                        for n, x in v.variant_options],
                                       categories=list(v.categories)) for v in row.variants]))
        if len(batch) == 2000:
            await flush()
            batch = []
    if batch:
        await flush()
    await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", type=int, default=1_000_000)
    parser.add_argument("--from-db", action="store_true")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="reelcart-feeds-"))
    print(f"ReelCart feed build, {args.variants:,} variants, output in {tmp}")
    if args.from_db:
        from feeds.publish import catalog_rows
        from models.db import create_engine, create_sessionmaker

        url = f"sqlite+aiosqlite:///{tmp / 'catalog.db'}"
        started = time.perf_counter()
        asyncio.run(load_db(url, args.variants))
        print(f"catalog loaded into SQLite in {time.perf_counter() - started:.0f} s")

        async def collect_and_build(name: str, acp: bool, openai: tuple[str, ...]) -> None:
            engine = create_engine(url, sqlite_immediate=False)
            builder = FeedBuilder(tmp / name, CONFIG, openai_formats=openai, acp=acp,
                                  google_tsv=False)
            started = time.perf_counter()
            async for product in catalog_rows(create_sessionmaker(engine)):
                builder.add(product)
            report = builder.finish()
            elapsed = time.perf_counter() - started
            await engine.dispose()
            print(f"{name:<22} {report.variants:>9,} items  {elapsed:6.1f} s  "
                  f"{report.variants / elapsed:>9,.0f} items/s  peak RSS {peak_rss_mb():6.1f} MB")

        asyncio.run(collect_and_build("acp-from-db", True, ()))
        asyncio.run(collect_and_build("openai-jsonl-from-db", False, ("jsonl",)))
        return
    run_pass("ACP products.jsonl", synthetic(args.variants), tmp / "acp", acp=True, openai=())
    run_pass("OpenAI jsonl.gz", synthetic(args.variants), tmp / "openai", acp=False,
             openai=("jsonl",))
    run_pass("Google TSV", synthetic(args.variants), tmp / "google", acp=False, openai=(),
             google=True)


if __name__ == "__main__":
    main()
