"""SQL for idempotency records (the repository behind ``api.idempotency``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models import IdempotencyRecord


async def find(db: AsyncSession, principal: str, path: str, key: str, *, lock: bool
               ) -> IdempotencyRecord | None:
    stmt = select(IdempotencyRecord).where(
        IdempotencyRecord.principal == principal, IdempotencyRecord.path == path,
        IdempotencyRecord.key == key)
    if lock:
        stmt = stmt.with_for_update()
    return await db.scalar(stmt.execution_options(populate_existing=True))


async def finish(db: AsyncSession, record_id: str, status_code: int, body: str) -> None:
    await db.execute(update(IdempotencyRecord).where(IdempotencyRecord.id == record_id).values(
        state="done", status_code=status_code, response_body=body))


async def release(db: AsyncSession, record_id: str) -> None:
    await db.execute(delete(IdempotencyRecord).where(
        IdempotencyRecord.id == record_id, IdempotencyRecord.state == "in_flight"))


async def purge_expired(db: AsyncSession, now: datetime) -> int:
    result = await db.execute(delete(IdempotencyRecord).where(IdempotencyRecord.expires_at < now))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
