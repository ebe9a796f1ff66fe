"""Checkout update and complete cost in one process: the ASGI app called directly (no
HTTP, no load client), as `bench/create_profile.py` does for create.

Builds the app the way `reelcart serve` does on a fresh SQLite database (or
`--database-url`) with the 20-variant catalog of `bench/checkout_load.py`, warms it up,
then runs `--flows` create → update → complete flows one after another and prints, per
operation, the CPU time (all threads of the process; inflated when other processes
compete for the cores) and the database statements it sent; with `--profile` also the
Python function calls per operation (deterministic: independent of the machine's load)
and the functions costing the most in `--op` (update or complete) under cProfile:

    .venv/bin/python bench/complete_profile.py [--flows 500] [--profile] [--op complete]
        [--top 30] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson
from starlette.types import ASGIApp as App

sys.path.insert(0, str(Path(__file__).resolve().parent))
from checkout_load import ADDRESS  # noqa: E402  (the same address)
from inprocess import post, prepare, running  # noqa: E402

OPS = ("create", "update", "complete")


class Meter:
    """CPU time, statements and (optionally) a profiler per operation."""

    def __init__(self, profile_op: str | None) -> None:
        self.cpu: dict[str, float] = defaultdict(float)
        self.statements: dict[str, int] = defaultdict(int)
        self.count: dict[str, int] = defaultdict(int)
        self.current: str | None = None
        self.profile_op = profile_op
        self.profiler = cProfile.Profile() if profile_op else None

    def on_execute(self, *args: Any) -> None:
        if self.current is not None:
            self.statements[self.current] += 1

    async def measure(self, op: str, app: App, path: str, payload: dict[str, Any],
                      expect: int) -> bytes:
        self.current = op
        profiling = self.profiler is not None and op == self.profile_op
        cpu = time.process_time()
        if profiling:
            assert self.profiler is not None
            self.profiler.enable()
        status, body = await post(app, path, payload)
        if profiling:
            assert self.profiler is not None
            self.profiler.disable()
        self.cpu[op] += time.process_time() - cpu
        self.count[op] += 1
        self.current = None
        if status != expect:
            raise RuntimeError(f"{op} answered {status}: {body[:300]!r}")
        return body


async def one_flow(app: App, n: int, meter: Meter) -> None:
    created = await meter.measure("create", app, "/checkout_sessions", {
        "currency": "usd", "line_items": [{"id": f"bench-{n % 20}-v", "quantity": 1}],
        "capabilities": {}}, 201)
    sid = orjson.loads(created)["id"]
    await meter.measure("update", app, f"/checkout_sessions/{sid}",
                        {"fulfillment_details": {"address": ADDRESS}}, 200)
    done = await meter.measure("complete", app, f"/checkout_sessions/{sid}/complete", {
        "payment_data": {"handler_id": "card_tokenized", "instrument": {
            "type": "card", "credential": {"type": "spt", "token": "spt_test_success"}}}},
        200)
    if orjson.loads(done)["status"] != "completed":
        raise RuntimeError(f"complete did not complete: {done[:300]!r}")


async def drive(app: App, flows: int, meter: Meter) -> None:
    from sqlalchemy import event

    async with running(app):
        warm = Meter(None)
        for n in range(50):  # warm-up: caches, the key, the connections
            await one_flow(app, n, warm)
        engine = app.state.runtime.engine.sync_engine  # type: ignore[attr-defined]
        event.listen(engine, "before_cursor_execute", meter.on_execute)
        for n in range(flows):
            await one_flow(app, n, meter)
        event.remove(engine, "before_cursor_execute", meter.on_execute)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flows", type=int, default=500)
    parser.add_argument("--profile", action="store_true", help="run --op under cProfile")
    parser.add_argument("--op", choices=OPS, default="complete")
    parser.add_argument("--top", type=int, default=30, help="functions listed (--profile)")
    parser.add_argument("--sort", default="tottime", help="pstats sort key (--profile)")
    parser.add_argument("--only", default=None,
                        help="list only functions whose file matches (--profile)")
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    prepare("reelcart-complete-profile-", args.database_url)

    from api.app import app_factory

    meter = Meter(args.op if args.profile else None)
    asyncio.run(drive(app_factory(), args.flows, meter))
    print(f"{args.flows} flows at concurrency 1, in-process"
          f"{f' ({args.op} under cProfile)' if args.profile else ''}; "
          f"load average {os.getloadavg()[0]:.2f}")
    for op in OPS:
        n = meter.count[op]
        print(f"  {op:<9} {meter.cpu[op] / n * 1000:6.3f} ms CPU, "
              f"{meter.statements[op] / n:5.1f} statements")
    if meter.profiler is not None:
        out = io.StringIO()
        stats = pstats.Stats(meter.profiler, stream=out)
        calls = getattr(stats, "total_calls")  # noqa: B009 (untyped in typeshed)
        print(f"Python function calls per {args.op}: {calls / args.flows:.0f}")
        restrictions: list[str | int] = [args.only] if args.only else []
        stats.sort_stats(args.sort).print_stats(*restrictions, args.top)
        print(out.getvalue())


if __name__ == "__main__":
    main()
