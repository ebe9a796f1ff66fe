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

``--processes 2``: each pass is also built by 2 processes over key ranges, joined into
the one shard set (``feeds.parallel``), and its content compared with the one-process
build's. RSS is then the sum of the processes' peaks.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
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


def _status_kb(pid: int | str, field: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for row in status:
                if row.startswith(field):
                    return int(row.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def peak_rss_mb() -> float:
    """This process's own peak (VmHWM: ``ru_maxrss`` would count the RSS of the process
    that started it, as the child of a vfork inherits its parent's high-water mark)."""
    peak = _status_kb("self", "VmHWM")
    return (peak or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / 1024


class TreeRss:
    """The RSS of this process and its child processes together, sampled every 20 ms
    on a thread: the peak of all of a build's processes at the same time."""

    def __init__(self) -> None:
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _children(self) -> list[str]:
        out = []
        for task in Path("/proc/self/task").iterdir():
            try:
                out += (task / "children").read_text().split()
            except OSError:
                pass
        return out

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            total = _status_kb("self", "VmRSS") + sum(
                _status_kb(pid, "VmRSS") for pid in self._children())
            self.peak_kb = max(self.peak_kb, total)

    def __enter__(self) -> TreeRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def line(name: str, items: int, elapsed: float, cpu: float, target: int,
         rss: float | None = None, processes: int = 1) -> str:
    rate = items / elapsed
    rss = peak_rss_mb() if rss is None else rss
    verdict = "ok" if rate >= target and rss < RSS_TARGET_MB else "BELOW TARGET"
    scope = f"all {processes} processes" if processes > 1 else "1 process"
    return (f"{name:<22} {items:>9,} items {elapsed:6.1f} s {rate:>9,.0f} items/s "
            f"(CPU {cpu:5.1f} s = {items / cpu:>8,.0f}/CPU-s)  peak RSS {rss:6.1f} MB "
            f"({scope})  [targets ≥ {target:,}/s, < {RSS_TARGET_MB} MB: {verdict}]")


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


def db_pass(name: str, url: str, out: Path, processes: int = 1) -> None:
    """One pass in this (fresh) process: the build path reading the database
    (``run_build``, what the build process and ``reelcart feeds build`` run), with
    ``processes`` > 1 shared out over that many processes (this one included) and joined
    into one shard set. RSS: the peak of all the build's processes together (sampled),
    and never less than this process's own peak."""
    from feeds.publish import run_build

    acp, openai, google = PASSES[name]
    started, cpu = time.perf_counter(), time.process_time()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    with TreeRss() as tree:
        report = run_build(url, out, CONFIG, openai_formats=openai, acp=acp,
                           google_tsv=google, processes=processes)
    elapsed = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = time.process_time() - cpu + usage.ru_utime + usage.ru_stime \
        - children.ru_utime - children.ru_stime
    label = f"{name} from DB" + (f" ×{processes}" if processes > 1 else "")
    print(line(label, report.variants, elapsed, cpu,
               DB_TARGET if name == "acp-jsonl" else PURE_TARGET,
               rss=max(tree.peak_kb / 1024, peak_rss_mb()), processes=processes), flush=True)
    print(json.dumps({"pass": name, "processes": processes, "variants": report.variants,
                      "files": report.files}), flush=True)


def same_content(one: Path, other: Path, files: dict[str, list[str]]) -> bool:
    """The two builds' files hold the same content (gzip: decompressed, one member)."""
    import zlib

    def content(path: Path) -> Iterator[bytes]:  # 1 MB at a time
        with path.open("rb") as file:
            member = zlib.decompressobj(31) if path.suffix == ".gz" else None
            while block := file.read(1 << 20):
                if member is None:
                    yield block
                    continue
                if member.eof:  # a second gzip member: not one member
                    yield b"\0"
                    return
                yield member.decompress(block)
            if member is not None and (not member.eof or member.unused_data):
                yield b"\0"

    for paths in files.values():
        for relative in paths:
            if relative.endswith("metadata.json"):  # its updated_at differs
                continue
            if not _same_stream(content(one / relative), content(other / relative)):
                return False
    return True


def _same_stream(a: Iterator[bytes], b: Iterator[bytes]) -> bool:
    """Two byte streams, cut into blocks differently, are the same bytes."""
    left = right = b""
    a_done = b_done = False
    while True:
        while len(left) < (1 << 20) and not a_done:
            more = next(a, None)
            a_done = more is None
            left += more or b""
        while len(right) < (1 << 20) and not b_done:
            more = next(b, None)
            b_done = more is None
            right += more or b""
        n = min(len(left), len(right))
        if left[:n] != right[:n]:
            return False
        left, right = left[n:], right[n:]
        if a_done and b_done:
            return not left and not right
        if (a_done and not left and right) or (b_done and not right and left):
            return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", type=int, default=1_000_000)
    parser.add_argument("--from-db", action="store_true")
    parser.add_argument("--database-url")
    parser.add_argument("--passes", default="acp-jsonl,openai-jsonl.gz")
    parser.add_argument("--processes", type=int, default=1,
                        help="with --from-db: also build each pass with this many processes "
                             "(REELCART_FEED_BUILD_PROCESSES), side by side, and check that "
                             "its content is the one-process build's")
    parser.add_argument("--parallel-only", action="store_true",
                        help="with --processes: skip the one-process pass")
    parser.add_argument("--cache", type=Path, default=CACHE,
                        help="folder of the cached catalog database (default: %(default)s)")
    parser.add_argument("--db-pass", help=argparse.SUPPRESS)  # internal: one pass
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.db_pass:
        db_pass(args.db_pass, args.database_url, Path(args.out), args.processes)
        return
    tmp = Path(tempfile.mkdtemp(prefix="reelcart-feeds-"))
    print(f"ReelCart feed build, {args.variants:,} variants, output in {tmp}")
    if args.from_db or args.database_url:
        args.cache.mkdir(exist_ok=True)
        url = args.database_url or \
            f"sqlite+aiosqlite:///{args.cache / f'catalog-{args.variants}.db'}"
        ensure_catalog(url, args.variants)
        for name in args.passes.split(","):
            runs = [1, args.processes] if args.processes > 1 else [1]
            if args.parallel_only and args.processes > 1:
                runs = [args.processes]
            files = {}
            for processes in runs:
                out = tmp / f"{name}-x{processes}"
                done = subprocess.run(
                    [sys.executable, __file__, "--db-pass", name, "--database-url", url,
                     "--out", str(out), "--processes", str(processes)],
                    check=True, stdout=subprocess.PIPE, text=True).stdout.splitlines()
                print(done[0], flush=True)
                files[processes] = json.loads(done[-1])["files"]
            if len(runs) == 2:
                same = files[1] == files[args.processes] and same_content(
                    tmp / f"{name}-x1", tmp / f"{name}-x{args.processes}", files[1])
                print(f"{'':<22} ×{args.processes} files and content == one process's: "
                      f"{'yes' if same else 'NO'}", flush=True)
            for processes in runs:  # 1M variants: about 1 GB of files per build
                shutil.rmtree(tmp / f"{name}-x{processes}", ignore_errors=True)
        print(json.dumps({"database": url.split("://")[0]}))
        return
    run_pass("ACP products.jsonl", synthetic(args.variants), tmp / "acp", acp=True, openai=())
    run_pass("OpenAI jsonl.gz", synthetic(args.variants), tmp / "openai", acp=False,
             openai=("jsonl",))
    run_pass("Google TSV", synthetic(args.variants), tmp / "google", acp=False, openai=(),
             google=True)


if __name__ == "__main__":
    main()
