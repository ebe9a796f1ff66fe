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
import pstats
import sys
import time
from pathlib import Path

from starlette.types import ASGIApp as App

sys.path.insert(0, str(Path(__file__).resolve().parent))
from inprocess import post, prepare, running  # noqa: E402


async def create(app: App, n: int) -> None:
    status, body = await post(app, "/checkout_sessions", {
        "currency": "usd", "line_items": [{"id": f"bench-{n % 20}-v"}], "capabilities": {}})
    if status != 201:
        raise RuntimeError(f"create answered {status}: {body[:300]!r}")


async def drive(app: App, creates: int, concurrency: int,
                profiler: cProfile.Profile | None) -> tuple[float, float]:
    async with running(app):
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
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--creates", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--profile", action="store_true", help="run under cProfile")
    parser.add_argument("--top", type=int, default=30, help="functions listed (--profile)")
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    prepare("reelcart-create-profile-", args.database_url)

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
