"""Login attempt limits per user name and per client address, kept in the database so
every API process counts the same attempts.

An attempt is counted *before* the password is checked (so parallel guesses cannot all
slip in under the limit); a successful login gives it back. Past the limit the scope is
locked for ``LOCK``, and while it is locked even the right password is refused.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from models import DashboardLoginFailure
from models.base import utc_now

USER_LIMIT = 5
ADDRESS_LIMIT = 20
WINDOW = timedelta(minutes=15)
LOCK = timedelta(minutes=15)


def _scopes(username: str, address: str) -> list[tuple[str, int]]:
    return [(f"user:{username.strip().lower()[:100]}", USER_LIMIT),
            (f"addr:{address[:100]}", ADDRESS_LIMIT)]


async def _row(db: AsyncSession, scope: str, now: datetime) -> DashboardLoginFailure:
    insert = pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
    await db.execute(insert(DashboardLoginFailure).values(
        scope=scope, failures=0, window_start=now).on_conflict_do_nothing(
        index_elements=["scope"]))
    row = await db.scalar(select(DashboardLoginFailure)
                          .where(DashboardLoginFailure.scope == scope)
                          .with_for_update().execution_options(populate_existing=True))
    assert row is not None
    return row


async def reserve(db: AsyncSession, username: str, address: str) -> datetime | None:
    """Count this attempt. Returns until when login is locked, or None to go ahead."""
    now = utc_now()
    locked: datetime | None = None
    for scope, limit in _scopes(username, address):
        row = await _row(db, scope, now)
        if row.locked_until is not None and row.locked_until > now:
            locked = max(locked or row.locked_until, row.locked_until)
            continue
        if row.window_start < now - WINDOW:
            row.failures, row.window_start, row.locked_until = 0, now, None
        row.failures += 1
        if row.failures > limit:
            row.locked_until = now + LOCK
            locked = max(locked or row.locked_until, row.locked_until)
    await db.flush()
    return locked


async def succeeded(db: AsyncSession, username: str, address: str) -> None:
    """A right password: the user's count starts over, the address gets its attempt back."""
    (user_scope, _), (address_scope, _) = _scopes(username, address)
    await db.execute(delete(DashboardLoginFailure)
                     .where(DashboardLoginFailure.scope == user_scope))
    row = await db.scalar(select(DashboardLoginFailure)
                          .where(DashboardLoginFailure.scope == address_scope)
                          .with_for_update())
    if row is not None and row.failures > 0:
        row.failures -= 1


async def purge(db: AsyncSession, now: datetime) -> int:
    """Forget windows that are over and locks that have ended."""
    result = await db.execute(delete(DashboardLoginFailure).where(
        DashboardLoginFailure.window_start < now - WINDOW,
        or_(DashboardLoginFailure.locked_until.is_(None),
            DashboardLoginFailure.locked_until < now)))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
