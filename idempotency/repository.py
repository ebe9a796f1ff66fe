"""SQL for idempotency records (the repository behind ``idempotency.service``).

This runs on every agent POST, so the hot statements are Core, built once at import with
bind parameters: building a statement per call (and ORM-enabled DML) costs more than
SQLite spends executing it.
"""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import Table, bindparam, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from models import IdempotencyRecord
from models.prepared import Prepared
from models.statuses import IdempotencyState

TABLE = cast(Table, IdempotencyRecord.__table__)
_IN_FLIGHT = IdempotencyState.in_flight.value
_DONE = IdempotencyState.done.value
_CLAIM_COLUMNS = ("id", "principal", "path", "key", "request_hash", "state", "status_code",
                  "response_body", "created_at", "locked_until", "expires_at")
_CLAIM = {
    dialect: Prepared(insert(TABLE).values({name: bindparam(name) for name in _CLAIM_COLUMNS})
    .on_conflict_do_nothing(index_elements=["principal", "path", "key"]))
    for dialect, insert in (("postgresql", pg_insert), ("sqlite", sqlite_insert))
}
_FINISH_ANY = update(TABLE).where(TABLE.c.id == bindparam("record_id")).values(
    state=_DONE, status_code=bindparam("new_status"), response_body=bindparam("new_body"))
_FINISH = Prepared(_FINISH_ANY)
_FINISH_IN_FLIGHT = Prepared(_FINISH_ANY.where(TABLE.c.state == _IN_FLIGHT))


async def find(db: AsyncSession, principal: str, path: str, key: str, *, lock: bool
               ) -> IdempotencyRecord | None:
    stmt = select(IdempotencyRecord).where(
        IdempotencyRecord.principal == principal, IdempotencyRecord.path == path,
        IdempotencyRecord.key == key)
    if lock:
        stmt = stmt.with_for_update()
    return await db.scalar(stmt.execution_options(populate_existing=True))


async def try_insert(db: AsyncSession, *, record_id: str, principal: str, path: str, key: str,
                     request_hash: str, now: datetime, locked_until: datetime,
                     expires_at: datetime, response: tuple[int, str] | None = None) -> bool:
    """Claim a key with one statement: ``in_flight``, or ``done`` when the ``(status,
    body)`` response is already known. False when the (principal, path, key) row exists."""
    status_code, body = response or (None, None)
    result = await _CLAIM[db.get_bind().dialect.name].execute(db, {
        "id": record_id, "principal": principal, "path": path, "key": key,
        "request_hash": request_hash, "state": _IN_FLIGHT if response is None else _DONE,
        "status_code": status_code, "response_body": body, "created_at": now,
        "locked_until": locked_until, "expires_at": expires_at})
    return bool(result.rowcount)


async def finish(db: AsyncSession, record_id: str, status_code: int, body: str) -> None:
    await _FINISH.execute(db, {"record_id": record_id, "new_status": status_code,
                               "new_body": body})


async def finish_in_flight(db: AsyncSession, record_id: str, status_code: int, body: str
                           ) -> bool:
    """``finish`` a claim that may have been rolled back: False if it is not in flight."""
    result = await _FINISH_IN_FLIGHT.execute(db, {"record_id": record_id,
                                                  "new_status": status_code, "new_body": body})
    return bool(result.rowcount)


async def release(db: AsyncSession, record_id: str) -> None:
    await db.execute(delete(TABLE).where(TABLE.c.id == record_id, TABLE.c.state == _IN_FLIGHT))


async def purge_expired(db: AsyncSession, now: datetime) -> int:
    result = await db.execute(delete(TABLE).where(TABLE.c.expires_at < now))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
