"""Feed generation at scale: 1,000,000 variants through the real builders and writers.

Default: a synthetic catalog stream (250,000 products × 4 variants) straight into the
builders, each format in its own pass (no database): the builders' own speed.

``--from-db``: the catalog in a SQLite database (built once through the importer from the
synthetic ACP feed of ``bench/catalog_import.py``, then cached in the temp folder), read
back by the build's own read connection (``feeds.publish.run_build``, what the build
process and ``reelcart feeds build`` run). Each pass runs in a fresh process so its peak
RSS is its own. ``--database-url`` reads a PostgreSQL database instead (filled the same
way when its catalog is empty).

Targets: ≥ 100,000 items/s from the database for ACP JSONL (≥ 50,000 items/s for the
pure builders per format), peak RSS < 300 MB. The process's CPU time is printed too: on a
shared machine the wall clock mostly measures the neighbours.

    .venv/bin/python bench/feeds_scale.py [--variants 1000000] [--from-db [--processes 2]]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
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
DB_TARGET = 100_000
PURE_TARGET = 50_000
RSS_TARGET_MB = 300
CACHE = Path(tempfile.gettempdir()) / "reelcart-bench"
# name → (acp, openai formats, google tsv)
PASSES = {"acp-jsonl": (True, (), False), "openai-jsonl.gz": (False, ("jsonl",), False),
          "openai-csv.gz": (False, ("csv",), False), "google-tsv": (False, (), True)}


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


def line(name: str, items: int, elapsed: float, cpu: float, target: int) -> str:
    rate = items / elapsed
    rss = peak_rss_mb()
    verdict = "ok" if rate >= target and rss < RSS_TARGET_MB else "BELOW TARGET"
    return (f"{name:<22} {items:>9,} items {elapsed:6.1f} s {rate:>9,.0f} items/s "
            f"(CPU {cpu:5.1f} s = {items / cpu:>8,.0f}/CPU-s)  peak RSS {rss:6.1f} MB  "
            f"[targets ≥ {target:,}/s, < {RSS_TARGET_MB} MB: {verdict}]")


def run_pass(name: str, rows: Iterator[ProductRow], out: Path, *, acp: bool,
             openai: tuple[str, ...], google: bool = False) -> None:
    builder = FeedBuilder(out, CONFIG, openai_formats=openai, acp=acp, google_tsv=google)
    started, cpu = time.perf_counter(), time.process_time()
    for product in rows:
        builder.add(product)
    report = builder.finish()
    print(line(name, report.variants, time.perf_counter() - started,
               time.process_time() - cpu, PURE_TARGET))


def ensure_catalog(url: str, variants: int) -> None:
    """The catalog, loaded once through the importer (cached: SQLite file / PG rows)."""
    from sqlalchemy import func, select

    from models import Variant
    from models.db import create_engine, create_sessionmaker
    from models.migrate import upgrade

    sys.path.insert(0, str(Path(__file__).parent))
    from catalog_import import feed_file

    upgrade(url)

    async def load() -> None:
        engine = create_engine(url)
        sessionmaker = create_sessionmaker(engine)
        async with sessionmaker() as db:
            present = await db.scalar(select(func.count()).select_from(Variant))
        if present != variants:
            from feeds.parsing import parse_acp_jsonl
            from feeds.service import import_catalog

            started = time.perf_counter()
            with feed_file(variants).open(encoding="utf-8") as lines:
                await import_catalog(sessionmaker, parse_acp_jsonl(lines))
            print(f"catalog of {variants:,} variants imported in "
                  f"{time.perf_counter() - started:.0f} s")
        await engine.dispose()

    asyncio.run(load())


def db_pass(name: str, url: str, out: Path, after: str | None = None,
            until: str | None = None, quiet: bool = False) -> None:
    """One pass in this (fresh) process: the build path reading the database."""
    from feeds.publish import run_build

    acp, openai, google = PASSES[name]
    started, cpu = time.perf_counter(), time.process_time()
    report = run_build(url, out, CONFIG, openai_formats=openai, acp=acp, google_tsv=google,
                       after=after, until=until)
    if quiet:  # one of several processes: the parent prints the figures
        print(json.dumps({"variants": report.variants}), flush=True)
        return
    print(line(f"{name} from DB", report.variants, time.perf_counter() - started,
               time.process_time() - cpu, DB_TARGET if name == "acp-jsonl" else PURE_TARGET),
          flush=True)


def parallel_pass(name: str, url: str, out: Path, processes: int) -> None:
    """The experiment "what do N processes give": the catalog cut into N key ranges
    (``feeds.reader.key_ranges``), each built by its own process at the same time into
    its own folder. Not a publishable build (the parts are not joined into one shard
    set): it measures the reading and building that a parallel build would share out."""
    from feeds.reader import key_ranges

    ranges = key_ranges(url, processes)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    children = []
    for k, (after, until) in enumerate(ranges):
        command = [sys.executable, __file__, "--db-pass", name, "--database-url", url,
                   "--out", str(out / f"part-{k}"), "--quiet"]
        command += ["--after", after] if after is not None else []
        command += ["--until", until] if until is not None else []
        children.append(subprocess.Popen(command, stdout=subprocess.PIPE))
    variants = 0
    for child in children:
        output, _ = child.communicate()
        if child.returncode:
            raise SystemExit(f"a build process failed ({child.returncode})")
        variants += json.loads(output.splitlines()[-1])["variants"]
    elapsed = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = usage.ru_utime + usage.ru_stime - before.ru_utime - before.ru_stime
    rate = variants / elapsed
    print(f"{name + f' from DB ×{len(ranges)}':<22} {variants:>9,} items {elapsed:6.1f} s "
          f"{rate:>9,.0f} items/s (CPU {cpu:5.1f} s = {variants / cpu:>8,.0f}/CPU-s)  "
          f"peak RSS {usage.ru_maxrss / 1024:6.1f} MB per process  [experiment: "
          f"{len(ranges)} processes over key ranges, parts not joined]", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", type=int, default=1_000_000)
    parser.add_argument("--from-db", action="store_true")
    parser.add_argument("--database-url")
    parser.add_argument("--passes", default="acp-jsonl,openai-jsonl.gz")
    parser.add_argument("--processes", type=int, default=1,
                        help="with --from-db: also build each pass with this many processes "
                             "over key ranges, side by side (an experiment)")
    parser.add_argument("--cache", type=Path, default=CACHE,
                        help="folder of the cached catalog database (default: %(default)s)")
    parser.add_argument("--db-pass", help=argparse.SUPPRESS)  # internal: one pass
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--after", help=argparse.SUPPRESS)
    parser.add_argument("--until", help=argparse.SUPPRESS)
    parser.add_argument("--quiet", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.db_pass:
        db_pass(args.db_pass, args.database_url, Path(args.out), args.after, args.until,
                args.quiet)
        return
    tmp = Path(tempfile.mkdtemp(prefix="reelcart-feeds-"))
    print(f"ReelCart feed build, {args.variants:,} variants, output in {tmp}")
    if args.from_db or args.database_url:
        args.cache.mkdir(exist_ok=True)
        url = args.database_url or \
            f"sqlite+aiosqlite:///{args.cache / f'catalog-{args.variants}.db'}"
        ensure_catalog(url, args.variants)
        for name in args.passes.split(","):
            subprocess.run([sys.executable, __file__, "--db-pass", name, "--database-url",
                            url, "--out", str(tmp / name)], check=True)
            if args.processes > 1:
                parallel_pass(name, url, tmp / f"{name}-parallel", args.processes)
        print(json.dumps({"database": url.split("://")[0]}))
        return
    run_pass("ACP products.jsonl", synthetic(args.variants), tmp / "acp", acp=True, openai=())
    run_pass("OpenAI jsonl.gz", synthetic(args.variants), tmp / "openai", acp=False,
             openai=("jsonl",))
    run_pass("Google TSV", synthetic(args.variants), tmp / "google", acp=False, openai=(),
             google=True)


if __name__ == "__main__":
    main()
