"""The background worker: drains the webhook inbox and delivers the outbox.

All state is in the database; any number of workers can run (``SKIP LOCKED`` on
PostgreSQL). ``reelcart serve`` runs one in-process for the embedded default;
``reelcart worker`` runs it alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import timedelta

from api.runtime import Runtime
from feeds import refresh
from webhooks import inbox, outbox

log = logging.getLogger("reelcart.worker")
RECOVERY_SWEEP_SECONDS = 30


async def run_once(runtime: Runtime) -> int:
    """One pass over everything due. Returns the number of items handled."""
    handled = await inbox.process_due(runtime.sessionmaker, runtime.inbox_handlers)
    handled += await outbox.deliver_due(runtime.sessionmaker, runtime.outbox_deliverers)
    now = time.monotonic()
    if now - runtime.last_recovery_sweep > RECOVERY_SWEEP_SECONDS:
        runtime.last_recovery_sweep = now
        handled += await runtime.checkout.recover_stale_attempts(runtime.sessionmaker)
        await schedule_feeds(runtime)
        if runtime.etsy is not None:  # poll Etsy receipts, push videos, when due
            handled += await runtime.etsy.tick(timedelta(
                minutes=runtime.settings.etsy_poll_minutes))
    return handled


async def schedule_feeds(runtime: Runtime) -> None:
    minutes = runtime.settings.feeds_refresh_minutes
    if not minutes:
        return
    async with runtime.sessionmaker() as db, db.begin():
        if await refresh.refresh_due(db, timedelta(minutes=minutes)):
            await refresh.request_refresh(db, "scheduled")


async def run_forever(runtime: Runtime, stop: asyncio.Event) -> None:
    poll = runtime.settings.worker_poll_seconds
    log.info("worker started")
    while not stop.is_set():
        try:
            handled = await run_once(runtime)
        except Exception:  # keep the loop alive; the failure is logged with context
            log.exception("worker pass failed")
            handled = 0
        if handled:
            continue
        runtime.worker_wakeup.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(_first(stop, runtime.worker_wakeup), timeout=poll)
    log.info("worker stopped")


async def _first(*events: asyncio.Event) -> None:
    waiters = [asyncio.create_task(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
