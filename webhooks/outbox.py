"""The transactional outbox: messages written with the change that caused them, delivered
by the worker with retries, exponential backoff (capped), per-key ordering, a log of every
attempt and a dead letter at the end of the attempt budget.

Delivery never happens inside a database transaction: messages are *leased* (one short
transaction), delivered concurrently (``OutboxDispatcher``: a limit per process and per
destination, a deadline per attempt), then each outcome is recorded (a short transaction).
A worker that dies mid-delivery leaves leases that expire, and those messages are
delivered again (at least once; receivers dedupe on the event id).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import exists, func, select, text, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from models import DeliveryAttempt, OutboxMessage
from models.base import new_id, utc_now
from models.outbound import error_excerpt
from models.statuses import OutboxStatus

log = logging.getLogger("reelcart.outbox")

LEASE = timedelta(minutes=2)
BACKOFF_CAP = timedelta(hours=1)
MAX_ATTEMPTS = 20  # ~ a day and a half with the cap; then the message is dead-lettered
_LEASE_LOCK = 0x5EC0_0B0C  # pg advisory lock serialising outbox leases


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
                            event_type=event_type, payload=payload, status=OutboxStatus.pending,
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


def _destination(topic: str, target: str | None) -> tuple[str, str]:
    """Deliveries are limited per destination: a topic and its target (an agent)."""
    return topic, target or ""


async def _lease_batch(db: AsyncSession, topics: list[str], *, limit: int,
                       per_destination: int) -> list[OutboxMessage]:
    """Due messages, oldest first, at most ``per_destination`` in flight per destination
    (counting those other workers are delivering), one at a time per key."""
    now = utc_now()
    postgres = db.get_bind().dialect.name == "postgresql"
    if postgres:  # leasing is short and serialised, so in-flight counts are exact
        await db.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LEASE_LOCK})
    in_flight: dict[tuple[str, str], int] = {}
    for topic, target, count in await db.execute(
            select(OutboxMessage.topic, OutboxMessage.target, func.count())
            .where(OutboxMessage.leased_until > now, OutboxMessage.status == OutboxStatus.pending)
            .group_by(OutboxMessage.topic, OutboxMessage.target)):
        in_flight[_destination(topic, target)] = int(count)
    earlier = aliased(OutboxMessage)
    stmt = (select(OutboxMessage)
            .where(OutboxMessage.topic.in_(topics), OutboxMessage.status == OutboxStatus.pending,
                   OutboxMessage.next_attempt_at <= now,
                   ~exists().where(earlier.topic == OutboxMessage.topic,
                                   earlier.key == OutboxMessage.key,
                                   earlier.status == OutboxStatus.pending,
                                   earlier.seq < OutboxMessage.seq))
            .order_by(OutboxMessage.seq).limit(limit * 4))
    saturated = [d for d, n in in_flight.items() if n >= per_destination]
    if saturated:  # a backlog for a busy destination does not crowd out the others
        stmt = stmt.where(~tuple_(OutboxMessage.topic,
                                  func.coalesce(OutboxMessage.target, "")).in_(saturated))
    if postgres:
        stmt = stmt.with_for_update(skip_locked=True, of=OutboxMessage)
    leased: list[OutboxMessage] = []
    for row in await db.scalars(stmt):
        destination = _destination(row.topic, row.target)
        if in_flight.get(destination, 0) >= per_destination:
            continue
        in_flight[destination] = in_flight.get(destination, 0) + 1
        row.attempts += 1
        row.next_attempt_at = now + LEASE  # if this worker dies, the lease expires
        row.leased_until = now + LEASE
        leased.append(row)
        if len(leased) >= limit:
            break
    return leased


@dataclass
class OutboxDispatcher:
    """Delivers due messages concurrently: at most ``max_in_flight`` per process and
    ``per_destination`` per destination (across processes), each within ``deadline``
    seconds, so a slow or dead destination holds its own slots and nobody else's.

    ``run_pass`` leases what is due, starts delivering it and waits at most ``wait``
    seconds; slower deliveries go on in the background and are recorded when they end.
    """

    sessionmaker: async_sessionmaker[AsyncSession]
    deliverers: dict[str, Deliverer]
    max_in_flight: int = 32
    per_destination: int = 2
    deadline: float = 30.0
    wait: float = 2.0
    max_attempts: int = MAX_ATTEMPTS
    on_done: Callable[[], None] | None = None  # e.g. wake the worker loop
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def run_pass(self, wait: float | None = None) -> int:
        """Start every due delivery there is room for, wait up to ``wait`` seconds (default
        ``self.wait``) for deliveries in flight; returns how many ended."""
        free = self.max_in_flight - len(self._tasks)
        if free > 0 and self.deliverers:
            async with self.sessionmaker() as db, db.begin():
                rows = await _lease_batch(db, list(self.deliverers), limit=free,
                                          per_destination=self.per_destination)
                leased = [Message(r.id, r.topic, r.key, r.target, r.event_type, r.payload,
                                  r.attempts) for r in rows]
            for message in leased:
                task = asyncio.create_task(self._deliver(message))
                self._tasks.add(task)
        if not self._tasks:
            return 0
        timeout = self.wait if wait is None else wait
        done = {t for t in self._tasks if t.done()}
        if not done and timeout > 0:
            done, _ = await asyncio.wait(set(self._tasks), timeout=timeout)
        for task in done:
            self._tasks.discard(task)
        return len(done)

    async def _deliver(self, message: Message) -> None:
        started = time.perf_counter()
        deliverer = self.deliverers[message.topic]
        # A deliverer may need longer than a partner call (a feed refresh builds files):
        # it says so with its own ``deadline`` (and keeps its lease with ``renew_lease``).
        deadline = float(getattr(deliverer, "deadline", None) or self.deadline)
        try:
            async with asyncio.timeout(deadline):
                result = await deliverer(message)
        except TimeoutError:
            result = DeliveryResult(ok=False, error=f"no answer within {deadline:g} s",
                                    duration_ms=int((time.perf_counter() - started) * 1000))
        except Exception as exc:  # a deliverer bug is a failed attempt, not a dead worker
            log.exception("outbox delivery crashed", extra={"topic": message.topic})
            result = DeliveryResult(ok=False, error=f"{type(exc).__name__}: {exc}"[:500])
        try:
            await _record(self.sessionmaker, message, result, max_attempts=self.max_attempts)
        except Exception:  # the lease expires and the message is delivered again
            log.exception("recording an outbox delivery failed",
                          extra={"topic": message.topic, "message_id": message.id})
        if self.on_done is not None:
            self.on_done()

    async def drain(self) -> None:
        """Wait for every delivery in flight (tests, shutdown)."""
        while self._tasks:
            done, _ = await asyncio.wait(set(self._tasks))
            self._tasks -= done

    async def aclose(self, grace: float = 10.0) -> None:
        """Shutdown: let deliveries finish for ``grace`` seconds, cancel the rest (their
        leases expire and another worker delivers them again)."""
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=grace)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        self._tasks.clear()


async def renew_lease(sessionmaker: async_sessionmaker[AsyncSession], message_id: str
                      ) -> None:
    """A delivery still running keeps its message: the lease (and the next attempt) move
    ``LEASE`` ahead, so no worker, this one included, starts the message again meanwhile.
    For deliverers that run longer than a lease; call it well within ``LEASE``."""
    until = utc_now() + LEASE
    async with sessionmaker() as db, db.begin():
        await db.execute(update(OutboxMessage).where(
            OutboxMessage.id == message_id, OutboxMessage.status == OutboxStatus.pending)
            .values(leased_until=until, next_attempt_at=until))


async def _record(sessionmaker: async_sessionmaker[AsyncSession], message: Message,
                  result: DeliveryResult, *, max_attempts: int = MAX_ATTEMPTS) -> None:
    async with sessionmaker() as db, db.begin():
        row = await _by_id(db, message.id)
        if row is None:  # purged or redelivered meanwhile
            return
        row.leased_until = None
        db.add(DeliveryAttempt(message_id=message.id, attempt=message.attempt,
                               status_code=result.status_code, error=result.error,
                               response_excerpt=error_excerpt(result.excerpt, 500),
                               duration_ms=result.duration_ms, created_at=utc_now()))
        if result.ok:
            row.status = OutboxStatus.delivered
            row.delivered_at = utc_now()
            row.last_error = None
            return
        row.last_error = result.error or f"HTTP {result.status_code}"
        if not result.retryable or row.attempts >= max_attempts:
            # the dead letter: shown on the dashboard, redeliverable
            row.status = OutboxStatus.failed
            log.error("outbox message failed for good", extra={
                "topic": row.topic, "message_id": row.id, "attempts": row.attempts,
                "status_code": result.status_code})
            return
        delay = backoff(row.attempts)
        if result.retry_after is not None:  # clamped: a partner cannot park a message forever
            delay = max(delay, timedelta(seconds=min(result.retry_after,
                                                     BACKOFF_CAP.total_seconds())))
        row.next_attempt_at = utc_now() + delay


async def dead_letters(db: AsyncSession, limit: int = 50) -> list[OutboxMessage]:
    """Messages that ran out of attempts or were refused for good, newest first."""
    return list(await db.scalars(select(OutboxMessage)
                                 .where(OutboxMessage.status == OutboxStatus.failed)
                                 .order_by(OutboxMessage.seq.desc()).limit(limit)))


async def redeliver(db: AsyncSession, message_id: str) -> bool:
    """Give a dead letter a fresh attempt budget; it goes out in its key's order (a later
    message for the same key waits for it). False if it is not a dead letter."""
    row = await _by_id(db, message_id)
    if row is None or row.status != OutboxStatus.failed:
        return False
    row.status = OutboxStatus.pending
    row.attempts = 0
    row.next_attempt_at = utc_now()
    row.leased_until = None
    await db.flush()
    return True
