"""Retention: delivered outbox messages (with their attempt logs) and processed inbox
events are deleted once older than their retention, in small batches (short transactions,
no long locks). Dead letters (``failed``) and unprocessed events are kept.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import DeliveryAttempt, InboxEvent, OutboxMessage
from models.statuses import OutboxStatus

BATCH = 1000


async def _purge_outbox_batch(db: AsyncSession, before: datetime) -> int:
    ids = list(await db.scalars(
        select(OutboxMessage.id).where(OutboxMessage.status == OutboxStatus.delivered,
                                       OutboxMessage.delivered_at < before).limit(BATCH)))
    if not ids:
        return 0
    await db.execute(delete(DeliveryAttempt).where(DeliveryAttempt.message_id.in_(ids)))
    await db.execute(delete(OutboxMessage).where(OutboxMessage.id.in_(ids)))
    return len(ids)


async def _purge_inbox_batch(db: AsyncSession, before: datetime) -> int:
    ids = list(await db.scalars(
        select(InboxEvent.id).where(InboxEvent.processed_at.is_not(None),
                                    InboxEvent.received_at < before).limit(BATCH)))
    if ids:
        await db.execute(delete(InboxEvent).where(InboxEvent.id.in_(ids)))
    return len(ids)


async def purge(sessionmaker: async_sessionmaker[AsyncSession], *, outbox_before: datetime,
                inbox_before: datetime) -> int:
    """Delete what is past retention; returns the number of rows removed."""
    removed = 0
    for batch in (_purge_outbox_batch, _purge_inbox_batch):
        before = outbox_before if batch is _purge_outbox_batch else inbox_before
        while True:
            async with sessionmaker() as db, db.begin():
                count = await batch(db, before)
            removed += count
            if count < BATCH:
                break
    return removed
