"""Scheduled feed refresh: rebuild the hosted files and push to every agent Feed API.

Runs as an outbox message (topic ``feeds_refresh``, one key): the outbox's lease and
per-key ordering make sure only one worker builds at a time. The worker enqueues one
every ``REELCART_FEEDS_REFRESH_MINUTES``; a catalog import enqueues one right away.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from feeds.builder import FeedConfig
from feeds.publish import build_feeds
from feeds.push import push_feed
from models import Agent, OutboxMessage
from models.base import utc_now
from webhooks.outbox import DeliveryResult, Message, emit

log = logging.getLogger("reelcart.feeds")
FEEDS_REFRESH = "feeds_refresh"


async def request_refresh(db: AsyncSession, reason: str) -> bool:
    """Queue a refresh unless one is already waiting. Returns whether one was queued."""
    waiting = await db.scalar(select(OutboxMessage.id).where(
        OutboxMessage.topic == FEEDS_REFRESH, OutboxMessage.status == "pending").limit(1))
    if waiting:
        return False
    await emit(db, topic=FEEDS_REFRESH, key="catalog", event_type=reason, payload="{}")
    return True


async def refresh_due(db: AsyncSession, every: timedelta) -> bool:
    last = await db.scalar(select(OutboxMessage.created_at).where(
        OutboxMessage.topic == FEEDS_REFRESH).order_by(OutboxMessage.seq.desc()).limit(1))
    return last is None or utc_now() - last >= every


class FeedRefresher:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], feeds_dir: Path,
                 config: FeedConfig, client_factory: Callable[[str, str | None], Any]) -> None:
        self.sessionmaker = sessionmaker
        self.feeds_dir = feeds_dir
        self.config = config
        self.client_factory = client_factory

    async def __call__(self, message: Message) -> DeliveryResult:
        report = await build_feeds(self.sessionmaker, self.feeds_dir, self.config)
        async with self.sessionmaker() as db:
            agents = list(await db.scalars(select(Agent.name).where(
                Agent.feed_api_url.is_not(None))))
        failures = []
        for name in agents:
            pushed = await push_feed(self.sessionmaker, self.client_factory, name, self.config)
            if pushed.status != "succeeded":
                failures.append(f"{name}: {pushed.error}")
        log.info("feeds refreshed", extra={"variants": report.variants,
                                           "pushed_to": len(agents), "failures": len(failures)})
        if failures:
            return DeliveryResult(ok=False, error="; ".join(failures)[:500])
        return DeliveryResult(ok=True, excerpt=f"{report.variants} items")
