"""Scheduled feed refresh: rebuild the files, then publish to every configured destination.

Runs as an outbox message (topic ``feeds_refresh``, one key): the outbox's lease and
per-key ordering make sure only one worker builds at a time. The worker enqueues one
every ``REELCART_FEEDS_REFRESH_MINUTES``; a catalog import enqueues one right away.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from feeds.builder import FeedConfig
from feeds.destinations import FeedDestination, Outcome, PublishContext, publish_all
from feeds.openai_spec import CURRENTLY_STABLE, OpenAISpec
from feeds.publish import BuildReport, build_feeds
from models import OutboxMessage
from models.base import utc_now
from models.statuses import DeliveryStatus, OutboxStatus
from webhooks.outbox import LEASE, DeliveryResult, Message, emit, renew_lease

log = logging.getLogger("reelcart.feeds")
FEEDS_REFRESH = "feeds_refresh"


async def request_refresh(db: AsyncSession, reason: str) -> bool:
    """Queue a refresh unless one is already waiting. Returns whether one was queued."""
    waiting = await db.scalar(select(OutboxMessage.id).where(
        OutboxMessage.topic == FEEDS_REFRESH,
        OutboxMessage.status == OutboxStatus.pending).limit(1))
    if waiting:
        return False
    await emit(db, topic=FEEDS_REFRESH, key="catalog", event_type=reason, payload="{}")
    return True


async def refresh_due(db: AsyncSession, every: timedelta) -> bool:
    last = await db.scalar(select(OutboxMessage.created_at).where(
        OutboxMessage.topic == FEEDS_REFRESH).order_by(OutboxMessage.seq.desc()).limit(1))
    return last is None or utc_now() - last >= every


class FeedRefresher:
    """Build, then publish to every configured destination. The message succeeds even
    when a destination fails: each failure is recorded on its own delivery record and the
    next run retries it, so one bad destination never re-publishes to the others.

    A refresh of a large catalog outlasts a partner call: it has its own ``deadline``
    and renews its outbox lease while it runs, so the message is never started twice."""

    deadline: float = 3600.0
    renew_every: float = LEASE.total_seconds() / 4

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], feeds_dir: Path,
                 config: FeedConfig, destinations: Callable[[], Sequence[FeedDestination]],
                 spec: OpenAISpec = CURRENTLY_STABLE, processes: int = 1) -> None:
        self.sessionmaker = sessionmaker
        self.feeds_dir = feeds_dir
        self.config = config
        self.destinations = destinations
        self.spec = spec
        self.processes = processes  # of the build (feeds.parallel)

    async def run(self) -> tuple[BuildReport, list[Outcome]]:
        report = await build_feeds(self.sessionmaker, self.feeds_dir, self.config,
                                   spec=self.spec, processes=self.processes)
        context = PublishContext(self.sessionmaker, self.config, self.feeds_dir, report)
        outcomes = await publish_all(self.destinations(), context)
        return report, outcomes

    async def __call__(self, message: Message) -> DeliveryResult:
        async def keep_lease() -> None:
            while True:
                await asyncio.sleep(self.renew_every)
                try:
                    await renew_lease(self.sessionmaker, message.id)
                except Exception:  # the next renewal tries again; the lease is 4x longer
                    log.exception("renewing the feed refresh lease failed")

        keeper = asyncio.create_task(keep_lease())
        try:
            report, outcomes = await self.run()
        finally:
            keeper.cancel()
        failures = [o for o in outcomes if o.status != DeliveryStatus.succeeded]
        log.info("feeds refreshed", extra={"variants": report.variants,
                                           "destinations": len(outcomes),
                                           "failures": len(failures)})
        summary = "; ".join(f"{o.destination}: {o.status}" for o in outcomes)
        return DeliveryResult(ok=True, excerpt=f"{report.variants} items; {summary}"[:500])
