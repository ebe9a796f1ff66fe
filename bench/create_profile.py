"""Checkout create cost in one process: the ASGI app called directly (no HTTP, no load
client), so the figures are the app's own, whatever else the machine is doing.

Builds the app the way `reelcart serve` does (`api.app.app_factory`, its lifespan run) on
a fresh SQLite database (or `--database-url`) with a 20-variant catalog, warms it up,
then sends `--creates` ACP creates at concurrency `--concurrency` and prints the CPU time
per create (all threads of the process; inflated when other processes compete for the
cores) and, with `--profile`, the Python function calls per create (deterministic: it
does not depend on the machine's load) and the functions costing the most under
cProfile:

    .venv/bin/python bench/create_profile.py [--creates 2000] [--concurrency 8]
        [--profile] [--top 30] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import orjson
from starlette.types import ASGIApp as App
from starlette.types import Message

sys.path.insert(0, str(Path(__file__).resolve().parent))
from checkout_load import write_catalog  # noqa: E402  (the same 20-variant catalog)

KEY = "bench-key"


async def create(app: App, n: int) -> None:
    body = orjson.dumps({"currency": "usd", "line_items": [{"id": f"bench-{n % 20}-v"}],
                         "capabilities": {}})
    headers = [(b"host", b"bench"), (b"content-length", str(len(body)).encode()),
               (b"content-type", b"application/json"),
               (b"authorization", f"Bearer {KEY}".encode()),
               (b"api-version", b"2026-04-17"),
               (b"idempotency-key", str(uuid.uuid4()).encode())]
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": "/checkout_sessions",
             "raw_path": b"/checkout_sessions", "query_string": b"", "root_path": "",
             "headers": headers, "server": ("127.0.0.1", 8000),
             "client": ("127.0.0.1", 50000), "state": {}}
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    status: list[int] = []

    async def receive() -> Message:
        if messages:
            return messages.pop()
        await asyncio.Event().wait()  # no disconnect while the app works
        raise AssertionError

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    await app(scope, receive, send)
    if status != [201]:
        raise RuntimeError(f"create answered {status}")


async def drive(app: App, creates: int, concurrency: int,
                profiler: cProfile.Profile | None) -> tuple[float, float]:
    startup: asyncio.Queue[Message] = asyncio.Queue()
    ready = asyncio.Event()

    async def lifespan_send(message: Message) -> None:
        if message["type"].endswith(".failed"):
            raise RuntimeError(message)
        if message["type"] == "lifespan.startup.complete":
            ready.set()

    async def run_lifespan() -> None:
        await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}},
                  startup.get, lifespan_send)

    await startup.put({"type": "lifespan.startup"})
    lifespan = asyncio.create_task(run_lifespan())
    await ready.wait()
    for n in range(200):  # warm-up: caches, the key, the connection
        await create(app, n)
    numbers = iter(range(creates))

    async def worker() -> None:
        for n in numbers:
            await create(app, n)

    wall, cpu = time.perf_counter(), time.process_time()
    if profiler is not None:
        profiler.enable()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    if profiler is not None:
        profiler.disable()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    await startup.put({"type": "lifespan.shutdown"})
    await lifespan
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--creates", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--profile", action="store_true", help="run under cProfile")
    parser.add_argument("--top", type=int, default=30, help="functions listed (--profile)")
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="reelcart-create-profile-"))
    os.environ.update(
        REELCART_DATABASE_URL=args.database_url or f"sqlite+aiosqlite:///{tmp / 'bench.db'}",
        REELCART_AGENT_API_KEYS=KEY, REELCART_LOG_LEVEL="WARNING",
        REELCART_RUN_WORKER_IN_PROCESS="false")
    catalog = tmp / "catalog.jsonl"
    write_catalog(catalog)
    cli = [sys.executable, "-m", "api.cli"]
    subprocess.run([*cli, "migrate"], check=True, capture_output=True)
    subprocess.run([*cli, "catalog", "import", str(catalog)], check=True, capture_output=True)

    from api.app import app_factory

    profiler = cProfile.Profile() if args.profile else None
    wall, cpu = asyncio.run(drive(app_factory(), args.creates, args.concurrency, profiler))
    print(f"{args.creates} creates at concurrency {args.concurrency}, in-process: "
          f"{args.creates / wall:.0f}/s wall, {cpu / args.creates * 1000:.3f} ms CPU per "
          f"create{' (under cProfile)' if profiler else ''}")
    if profiler is not None:
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        calls = getattr(stats, "total_calls")  # noqa: B009 (untyped in typeshed)
        print(f"Python function calls per create: {calls / args.creates:.0f}")
        stats.sort_stats("tottime").print_stats(args.top)
        print(out.getvalue())


if __name__ == "__main__":
    main()
