"""Checkout latency while the feeds are rebuilt: idle p99 against p99 during a build.

Serves a copy of the cached catalog of ``bench/feeds_scale.py --from-db`` (1,000,000
variants by default; built once through the importer) with ``reelcart serve`` (one worker, its
in-process outbox worker), drives create → update → complete flows at concurrency 1 for
``--seconds`` idle, then asks for a refresh through the API (``POST /feeds/refresh``) and
drives the same flows until the build's report is written. Prints p50/p99 of every
checkout request in both phases and the ratio, and how large the SQLite WAL grew during
the build. Target: p99 during the build within 2× the idle p99. The build runs with
``REELCART_FEED_BUILD_PROCESSES`` (default: the cores, up to 3; ``--processes``), at a
lower CPU priority, in processes of its own.

    .venv/bin/python bench/feed_build_load.py [--variants 1000000] [--seconds 15]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sqlite3
import sys
import tempfile
import time
import uuid
from contextlib import closing
from pathlib import Path

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).parent))
from checkout_load import serve, stop  # noqa: E402
from feeds_scale import CACHE, ensure_catalog  # noqa: E402

AGENT, MERCHANT = "bench-agent-key", "bench-merchant-key"
HEADERS = {"Authorization": f"Bearer {AGENT}", "API-Version": "2026-04-17",
           "Content-Type": "application/json"}
ADDRESS = {"name": "Bench", "line_one": "1 Main St", "city": "Austin", "state": "TX",
           "country": "US", "postal_code": "78701"}
TARGET_RATIO = 2.0


async def flows(client: httpx.AsyncClient, variants: int, until: asyncio.Event,
                latencies: list[float], errors: list[str]) -> None:
    """Sequential create → update → complete flows (concurrency 1) until ``until``."""
    n = 0
    while not until.is_set():
        item = f"prod-{(n * 7919) % (variants // 4):07d}-M"
        n += 1
        steps = [("/checkout_sessions", {"currency": "usd", "capabilities": {},
                                         "line_items": [{"id": item, "quantity": 1}]}),
                 ("/checkout_sessions/{id}", {"fulfillment_details": {"address": ADDRESS}}),
                 ("/checkout_sessions/{id}/complete", {"payment_data": {
                     "handler_id": "card_tokenized", "instrument": {"type": "card", "credential": {
                         "type": "spt", "token": "spt_test_success"}}}})]
        session = ""
        for path, body in steps:
            started = time.perf_counter()
            resp = await client.post(path.format(id=session), content=orjson.dumps(body),
                                     headers={**HEADERS, "Idempotency-Key": str(uuid.uuid4())})
            latencies.append(time.perf_counter() - started)
            if resp.status_code >= 400:
                errors.append(f"{path} {resp.status_code}")
                break
            session = session or resp.json()["id"]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))] * 1000


def wal_mb(database: Path) -> float:
    wal = database.with_name(database.name + "-wal")
    return wal.stat().st_size / 2**20 if wal.exists() else 0.0


async def measure(base: str, feeds: Path, variants: int, seconds: float,
                  database: Path) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        idle: list[float] = []
        errors: list[str] = []
        stop = asyncio.Event()
        task = asyncio.create_task(flows(client, variants, stop, idle, errors))
        await asyncio.sleep(seconds)
        stop.set()
        await task
        report = feeds / "report.json"
        before = report.stat().st_mtime_ns if report.exists() else None
        during: list[float] = []
        stop = asyncio.Event()
        queued = await client.post("/feeds/refresh", headers={
            "Authorization": f"Bearer {MERCHANT}", "Idempotency-Key": str(uuid.uuid4())})
        assert queued.status_code == 202, queued.text
        started = time.perf_counter()
        task = asyncio.create_task(flows(client, variants, stop, during, errors))
        wal_peak = 0.0
        while not report.exists() or report.stat().st_mtime_ns == before:  # noqa: ASYNC110
            await asyncio.sleep(0.2)  # (a file another process writes: polled)
            wal_peak = max(wal_peak, wal_mb(database))
        build_seconds = time.perf_counter() - started
        stop.set()
        await task
    built = orjson.loads(report.read_bytes())
    p99_idle, p99_build = pct(idle, 99), pct(during, 99)
    ratio = p99_build / p99_idle
    print(f"idle:         {len(idle):>6} requests  p50 {pct(idle, 50):7.1f} ms  "
          f"p99 {p99_idle:7.1f} ms")
    print(f"during build: {len(during):>6} requests  p50 {pct(during, 50):7.1f} ms  "
          f"p99 {p99_build:7.1f} ms  (build of {built['variants']:,} variants, all formats, "
          f"{built.get('processes', 1)} build processes: {built['seconds']:.0f} s = "
          f"{built['items_per_second'] or 0:,} items/s; {build_seconds:.0f} s from the "
          f"request to the report)")
    print(f"p99 during / idle: {ratio:.2f} (target ≤ {TARGET_RATIO:g}: "
          f"{'ok' if ratio <= TARGET_RATIO else 'ABOVE TARGET'})  errors: {len(errors)}")
    print(f"SQLite WAL during the build: up to {wal_peak:,.0f} MB (a build that held one "
          f"snapshot kept it from being checkpointed); load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--processes", type=int,
                        help="REELCART_FEED_BUILD_PROCESSES (default: the setting's, the "
                             "cores up to 3)")
    parser.add_argument("--cache", type=Path, default=CACHE,
                        help="folder of the cached catalog database (default: %(default)s)")
    args = parser.parse_args()
    args.cache.mkdir(exist_ok=True)
    cached = args.cache / f"catalog-{args.variants}.db"
    ensure_catalog(f"sqlite+aiosqlite:///{cached}", args.variants)
    # The server writes checkouts: it gets a copy of the cached catalog (a file copy is
    # the fastest seeding there is), so every run starts alike and the cache stays as is.
    with closing(sqlite3.connect(cached)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the whole catalog in the file
    work = Path(tempfile.mkdtemp(prefix="reelcart-feed-load-"))
    database = work / cached.name
    shutil.copyfile(cached, database)
    with closing(sqlite3.connect(database)) as conn:
        # A refresh left queued in the cached catalog (by whatever last served it) would
        # start building as the server starts, during the idle phase, and its report
        # would be taken for the measured build's.
        conn.execute("DELETE FROM outbox WHERE topic = 'feeds_refresh' "
                     "AND status = 'pending'")
        conn.commit()
    url = f"sqlite+aiosqlite:///{database}"
    feeds = work / "feeds"
    feeds.mkdir()
    env = {**os.environ, "REELCART_DATABASE_URL": url, "REELCART_AGENT_API_KEYS": AGENT,
           "REELCART_MERCHANT_API_KEYS": MERCHANT, "REELCART_FEEDS_DIR": str(feeds),
           "REELCART_LOG_LEVEL": "WARNING",
           # one refresh attempt may take a while on a shared machine
           "REELCART_OUTBOX_DELIVERY_DEADLINE_SECONDS": "600"}
    if args.processes:
        env["REELCART_FEED_BUILD_PROCESSES"] = str(args.processes)
    server, port = serve(env, workers=1)
    base = f"http://127.0.0.1:{port}"
    try:
        print(f"ReelCart checkout during a feed build — {args.variants:,} variants, SQLite, "
              f"1 API worker with its in-process worker, {os.cpu_count()} CPUs shared, "
              f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        asyncio.run(measure(base, feeds, args.variants, args.seconds, database))
    finally:
        stop(server)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
