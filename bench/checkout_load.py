"""Checkout load benchmark: create → update → complete on loopback.

Starts `reelcart serve` (one worker, SQLite by default) on a fresh database, then drives
full checkout flows at concurrency 1, 8 and 32 and prints requests/s and p50/p95/p99 per
endpoint, plus a create-only run (the ≥ 400 creates/s at concurrency 8 target).

    .venv/bin/python bench/checkout_load.py [--seconds 10] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

KEY = "bench-key"
HEADERS = {"Authorization": f"Bearer {KEY}", "API-Version": "2026-04-17"}
ADDRESS = {"name": "Bench", "line_one": "1 Main St", "city": "Austin", "state": "TX",
           "country": "US", "postal_code": "78701"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_catalog(path: Path) -> None:
    with path.open("w") as f:
        for i in range(20):
            f.write(json.dumps({"id": f"bench-{i}", "title": f"Bench {i}", "variants": [{
                "id": f"bench-{i}-v", "title": f"Bench {i}",
                "price": {"amount": 1000 + i * 100, "currency": "USD"},
                "inventory_quantity": 1_000_000_000}]}) + "\n")


class Recorder:
    def __init__(self) -> None:
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, int] = defaultdict(int)

    async def call(self, client: httpx.AsyncClient, name: str, method: str, url: str,
                   body: dict | None = None) -> httpx.Response | None:
        headers = dict(HEADERS)
        if method == "POST":
            headers["Idempotency-Key"] = str(uuid.uuid4())
        started = time.perf_counter()
        try:
            resp = await client.request(method, url, json=body, headers=headers)
        except httpx.HTTPError:
            self.errors[name] += 1
            return None
        self.latency[name].append(time.perf_counter() - started)
        if resp.status_code >= 400:
            self.errors[name] += 1
        return resp


async def flow(client: httpx.AsyncClient, rec: Recorder, n: int) -> None:
    item = f"bench-{n % 20}-v"
    resp = await rec.call(client, "create", "POST", "/checkout_sessions", {
        "currency": "usd", "line_items": [{"id": item, "quantity": 1}], "capabilities": {}})
    if resp is None or resp.status_code != 201:
        return
    sid = resp.json()["id"]
    resp = await rec.call(client, "update", "POST", f"/checkout_sessions/{sid}",
                          {"fulfillment_details": {"address": ADDRESS}})
    if resp is None or resp.status_code != 200:
        return
    await rec.call(client, "complete", "POST", f"/checkout_sessions/{sid}/complete", {
        "payment_data": {"handler_id": "card_tokenized", "instrument": {
            "type": "card", "credential": {"type": "spt", "token": "spt_test_success"}}}})


async def create_only(client: httpx.AsyncClient, rec: Recorder, n: int) -> None:
    await rec.call(client, "create", "POST", "/checkout_sessions", {
        "currency": "usd", "line_items": [{"id": f"bench-{n % 20}-v"}], "capabilities": {}})


async def run(base: str, concurrency: int, seconds: float,
              body: Callable[[httpx.AsyncClient, Recorder, int], Awaitable[None]]
              ) -> tuple[Recorder, float]:
    rec = Recorder()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    counter = iter(range(10**9))
    deadline = time.perf_counter() + seconds
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        async def worker() -> None:
            while time.perf_counter() < deadline:
                await body(client, rec, next(counter))
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return rec, elapsed


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))] * 1000


def report(title: str, rec: Recorder, elapsed: float) -> None:
    print(f"\n{title} ({elapsed:.1f} s)")
    print(f"  {'endpoint':<10}{'requests':>9}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}"
          f"{'p99 ms':>9}{'errors':>8}")
    for name in ("create", "update", "complete"):
        values = rec.latency.get(name)
        if not values:
            continue
        print(f"  {name:<10}{len(values):>9}{len(values) / elapsed:>9.0f}"
              f"{pct(values, 50):>9.1f}{pct(values, 95):>9.1f}{pct(values, 99):>9.1f}"
              f"{rec.errors.get(name, 0):>8}")
    total = sum(len(v) for v in rec.latency.values())
    print(f"  all: {total / elapsed:.0f} req/s, max latency "
          f"{max((max(v) for v in rec.latency.values()), default=0) * 1000:.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="reelcart-bench-"))
    db_url = args.database_url or f"sqlite+aiosqlite:///{tmp / 'bench.db'}"
    env = {**os.environ, "REELCART_DATABASE_URL": db_url, "REELCART_AGENT_API_KEYS": KEY,
           "REELCART_LOG_LEVEL": "WARNING"}
    catalog = tmp / "catalog.jsonl"
    write_catalog(catalog)
    cli = [sys.executable, "-m", "api.cli"]
    subprocess.run([*cli, "catalog", "import", str(catalog)], env=env, check=True,
                   capture_output=True)
    port = free_port()
    server = subprocess.Popen([*cli, "serve", "--port", str(port), "--workers", "1"], env=env,
                              stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        print(f"ReelCart checkout load — 1 API worker, {db_url.split(':')[0]}, "
              f"{os.cpu_count()} CPUs, client and server on one machine")
        for concurrency in (1, 8, 32):
            rec, elapsed = asyncio.run(run(base, concurrency, args.seconds, flow))
            report(f"create → update → complete, concurrency {concurrency}", rec, elapsed)
        rec, elapsed = asyncio.run(run(base, 8, args.seconds, create_only))
        report("create only, concurrency 8", rec, elapsed)
        creates = len(rec.latency["create"]) / elapsed
        print(f"\ncreates/s at concurrency 8: {creates:.0f} (target ≥ 400)")
        print(f"median create latency: {statistics.median(rec.latency['create']) * 1000:.1f} ms")
    finally:
        server.terminate()
        server.wait(timeout=20)


if __name__ == "__main__":
    main()
