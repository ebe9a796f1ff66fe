"""The inbox: incoming webhook events stored once, processed later with retries.

``store`` runs in the receiving request (INSERT … ON CONFLICT DO NOTHING on
(source, external_id), so redeliveries are acknowledged and ignored). ``process_due`` runs
in the worker: it leases due events one at a time (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, so several workers share the queue; the lease expires if a worker dies), runs
the handler, which owns its transactions (it may call a payment provider), then marks the
event processed, or schedules a retry with exponential backoff when the handler says a
prerequisite is missing (``RetryLater``) or fails.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import InboxEvent
from models.base import new_id, utc_now

log = logging.getLogger("reelcart.inbox")

MAX_ATTEMPTS = 25
BACKOFF_CAP = timedelta(minutes=30)

LEASE = timedelta(minutes=2)
Handler = Callable[[async_sessionmaker[AsyncSession], dict[str, Any]], Awaitable[None]]


class RetryLater(Exception):
    """A prerequisite is missing (e.g. the order does not exist yet): try again later."""


async def store(db: AsyncSession, *, source: str, external_id: str, type_: str,
                payload: str) -> bool:
    """Returns False for a duplicate delivery."""
    insert = pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
    now = utc_now()
    result = await db.execute(insert(InboxEvent).values(
        id=new_id("evt"), source=source, external_id=external_id, type=type_,
        payload=payload, received_at=now, next_attempt_at=now, attempts=0,
    ).on_conflict_do_nothing(index_elements=["source", "external_id"]))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def backoff(attempts: int) -> timedelta:
    return min(timedelta(seconds=2 ** min(attempts, 20)), BACKOFF_CAP)


async def _claim(db: AsyncSession, source: str | None) -> InboxEvent | None:
    now = utc_now()
    stmt = (select(InboxEvent)
            .where(InboxEvent.processed_at.is_(None), InboxEvent.next_attempt_at <= now,
                   InboxEvent.attempts < MAX_ATTEMPTS)
            .order_by(InboxEvent.received_at, InboxEvent.id).limit(1))
    if source:
        stmt = stmt.where(InboxEvent.source == source)
    if db.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    return await db.scalar(stmt)


async def process_due(sessionmaker: async_sessionmaker[AsyncSession],
                      handlers: dict[str, Handler], *, source: str | None = None,
                      limit: int = 100) -> int:
    """Process up to ``limit`` due events. Returns how many were handled (or retried)."""
    done = 0
    while done < limit:
        async with sessionmaker() as db, db.begin():
            event = await _claim(db, source)
            if event is None:
                return done
            event.attempts += 1
            event.next_attempt_at = utc_now() + LEASE
            event_id, key, payload = event.id, f"{event.source}:{event.type}", event.payload
            source_name, type_name = event.source, event.type
        handler = handlers.get(key) or handlers.get(f"{source_name}:*")
        error: str | None = None
        try:
            if handler is not None:
                await handler(sessionmaker, json.loads(payload))
        except RetryLater as exc:
            error = f"waiting: {exc}"
        except Exception as exc:  # a handler bug must not wedge the queue
            log.exception("inbox handler failed", extra={
                "event_source": source_name, "event_type": type_name})
            error = f"{type(exc).__name__}: {exc}"[:2000]
        async with sessionmaker() as db, db.begin():
            event = await db.get(InboxEvent, event_id)
            assert event is not None
            if error is None:
                event.processed_at = utc_now()
                event.last_error = None
            else:
                _schedule_retry(event, error)
        done += 1
    return done


def _schedule_retry(event: InboxEvent, reason: str) -> None:
    event.next_attempt_at = utc_now() + backoff(event.attempts - 1)
    event.last_error = reason
