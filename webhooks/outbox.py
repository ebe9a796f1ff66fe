"""The transactional outbox: messages written with the change that caused them, delivered
by the worker with retries, exponential backoff (capped), per-key ordering and a log of
every attempt.

Delivery never happens inside a database transaction: a message is *leased* (short
transaction), delivered, then its outcome recorded (short transaction). A worker that
dies mid-delivery leaves a lease that expires, and the message is delivered again
(at least once; receivers dedupe on the event id).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from models import DeliveryAttempt, OutboxMessage
from models.base import new_id, utc_now

log = logging.getLogger("reelcart.outbox")

LEASE = timedelta(minutes=2)
BACKOFF_CAP = timedelta(hours=1)
MAX_ATTEMPTS = 20  # ~ a day and a half with the cap


@dataclass(frozen=True, slots=True)
class Message:
    id: str
    topic: str
    key: str
    target: str | None
    event_type: str
    payload: str
    attempt: int


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    ok: bool
    status_code: int | None = None
    error: str | None = None
    excerpt: str | None = None
    retryable: bool = True
    retry_after: float | None = None
    duration_ms: int = 0


Deliverer = Callable[[Message], Awaitable[DeliveryResult]]


async def emit(db: AsyncSession, *, topic: str, key: str, event_type: str, payload: str,
               target: str | None = None) -> OutboxMessage:
    """Add a message in the caller's transaction: it exists iff the change commits."""
    message = OutboxMessage(id=new_id("msg"), topic=topic, key=key, target=target,
                            event_type=event_type, payload=payload, status="pending",
                            attempts=0, next_attempt_at=utc_now(), created_at=utc_now())
    db.add(message)
    await db.flush()
    return message


async def _by_id(db: AsyncSession, message_id: str) -> OutboxMessage | None:
    return await db.scalar(select(OutboxMessage).where(OutboxMessage.id == message_id)
                           .with_for_update())


def backoff(attempts: int) -> timedelta:
    base = min(timedelta(seconds=2 ** min(attempts, 20)), BACKOFF_CAP)
    return base * random.uniform(0.9, 1.1)  # jitter: no thundering herd after an outage


async def _lease(db: AsyncSession, topics: list[str]) -> OutboxMessage | None:
    now = utc_now()
    earlier = aliased(OutboxMessage)
    stmt = (select(OutboxMessage)
            .where(OutboxMessage.topic.in_(topics), OutboxMessage.status == "pending",
                   OutboxMessage.next_attempt_at <= now,
                   ~exists().where(earlier.topic == OutboxMessage.topic,
                                   earlier.key == OutboxMessage.key,
                                   earlier.status == "pending",
                                   earlier.seq < OutboxMessage.seq))
            .order_by(OutboxMessage.seq).limit(1))
    if db.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True, of=OutboxMessage)
    return await db.scalar(stmt)


async def deliver_due(sessionmaker: async_sessionmaker[AsyncSession],
                      deliverers: dict[str, Deliverer], *, limit: int = 100) -> int:
    handled = 0
    topics = list(deliverers)
    while handled < limit and topics:
        async with sessionmaker() as db, db.begin():
            row = await _lease(db, topics)
            if row is None:
                return handled
            row.attempts += 1
            row.next_attempt_at = utc_now() + LEASE
            message = Message(row.id, row.topic, row.key, row.target, row.event_type,
                              row.payload, row.attempts)
        try:
            result = await deliverers[message.topic](message)
        except Exception as exc:  # a deliverer bug is a failed attempt, not a dead worker
            log.exception("outbox delivery crashed", extra={"topic": message.topic})
            result = DeliveryResult(ok=False, error=f"{type(exc).__name__}: {exc}"[:500])
        await _record(sessionmaker, message, result)
        handled += 1
    return handled


async def _record(sessionmaker: async_sessionmaker[AsyncSession], message: Message,
                  result: DeliveryResult) -> None:
    async with sessionmaker() as db, db.begin():
        row = await _by_id(db, message.id)
        assert row is not None
        db.add(DeliveryAttempt(message_id=message.id, attempt=message.attempt,
                               status_code=result.status_code, error=result.error,
                               response_excerpt=(result.excerpt or "")[:500] or None,
                               duration_ms=result.duration_ms, created_at=utc_now()))
        if result.ok:
            row.status = "delivered"
            row.delivered_at = utc_now()
            row.last_error = None
            return
        row.last_error = result.error or f"HTTP {result.status_code}"
        if not result.retryable or row.attempts >= MAX_ATTEMPTS:
            row.status = "failed"
            log.error("outbox message failed for good", extra={
                "topic": row.topic, "message_id": row.id, "attempts": row.attempts,
                "status_code": result.status_code})
            return
        delay = backoff(row.attempts)
        if result.retry_after is not None:  # clamped: a partner cannot park a message forever
            delay = max(delay, timedelta(seconds=min(result.retry_after,
                                                     BACKOFF_CAP.total_seconds())))
        row.next_attempt_at = utc_now() + delay
