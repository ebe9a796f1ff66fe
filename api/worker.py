"""The background worker: drains the webhook inbox, delivers the outbox concurrently and
runs periodic jobs (payment recovery, feed schedule, retention purge).

All state is in the database; any number of workers can run (``SKIP LOCKED`` and, for
outbox leases, a short advisory lock on PostgreSQL). ``reelcart serve`` runs one
in-process for the embedded default; ``reelcart worker`` runs it alone.

To add a periodic job, append a ``Periodic`` to ``PERIODIC``; to add a kind of outbound
message, register its deliverer in ``Runtime.outbox_deliverers``; an inbound event type,
in ``Runtime.inbox_handlers``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from api.dashboard import throttle
from api.runtime import Runtime
from feeds import refresh
from idempotency import repository as idempotency_store
from models.base import utc_now
from webhooks import inbox, retention

log = logging.getLogger("reelcart.worker")
RECOVERY_SWEEP_SECONDS = 30


@dataclass(frozen=True)
class Periodic:
    name: str
    every: Callable[[Runtime], float]  # seconds between runs, from the settings
    run: Callable[[Runtime], Awaitable[int]]  # returns the number of items handled


async def recover_payments(runtime: Runtime) -> int:
    return await runtime.checkout.recover_stale_attempts(runtime.sessionmaker)


async def schedule_feeds(runtime: Runtime) -> int:
    minutes = runtime.settings.feeds_refresh_minutes
    if not minutes:
        return 0
    async with runtime.sessionmaker() as db, db.begin():
        if await refresh.refresh_due(db, timedelta(minutes=minutes)):
            await refresh.request_refresh(db, "scheduled")
    return 0


async def purge_retention(runtime: Runtime) -> int:
    """Idempotency keys past their expiry (kept ≥ 24 h, ACP), delivered outbox messages
    and processed inbox events past their retention."""
    settings = runtime.settings
    now = utc_now()
    async with runtime.sessionmaker() as db, db.begin():
        removed = await idempotency_store.purge_expired(db, now)
        removed += await throttle.purge(db, now)
    removed += await retention.purge(
        runtime.sessionmaker,
        outbox_before=now - timedelta(days=settings.outbox_retention_days),
        inbox_before=now - timedelta(days=settings.inbox_retention_days))
    if removed:
        log.info("retention purge", extra={"removed": removed})
    return 0  # housekeeping: does not keep the worker from idling


PERIODIC: list[Periodic] = [
    Periodic("payment recovery", lambda rt: RECOVERY_SWEEP_SECONDS, recover_payments),
    Periodic("feed schedule", lambda rt: RECOVERY_SWEEP_SECONDS, schedule_feeds),
    Periodic("retention purge", lambda rt: rt.settings.retention_sweep_minutes * 60,
             purge_retention),
]


async def run_once(runtime: Runtime, *, wait: float | None = None) -> int:
    """One pass over everything due. Returns the number of items handled.

    Outbox deliveries run concurrently and may outlive the pass; it waits for them at most
    ``wait`` seconds (the dispatcher's default when None; the worker loop passes 0 and is
    woken when one ends)."""
    handled = await inbox.process_due(runtime.sessionmaker, runtime.inbox_handlers)
    handled += await runtime.outbox.run_pass(wait)
    now = time.monotonic()
    for job in PERIODIC:
        if now - runtime.periodic_last_run.get(job.name, float("-inf")) >= job.every(runtime):
            runtime.periodic_last_run[job.name] = now
            try:
                handled += await job.run(runtime)
            except Exception:  # one failing job does not stop the others
                log.exception("periodic job failed", extra={"job": job.name})
    return handled


async def run_forever(runtime: Runtime, stop: asyncio.Event) -> None:
    poll = runtime.settings.worker_poll_seconds
    log.info("worker started")
    while not stop.is_set():
        try:
            handled = await run_once(runtime, wait=0)
        except Exception:  # keep the loop alive; the failure is logged with context
            log.exception("worker pass failed")
            handled = 0
        if handled:
            continue
        runtime.worker_wakeup.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(_first(stop, runtime.worker_wakeup), timeout=poll)
    await runtime.outbox.aclose()
    log.info("worker stopped")


async def _first(*events: asyncio.Event) -> None:
    waiters = [asyncio.create_task(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
