"""What every command shares: settings and the database, wired through the composition
root (``api.runtime.database``) rather than built per command."""

from __future__ import annotations

import asyncio
import gzip
import io
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.runtime import database
from api.settings import Settings, get_settings

T = TypeVar("T")


def settings() -> Settings:
    get_settings.cache_clear()
    return get_settings()


def migrated() -> Settings:
    """Settings, with the schema brought up to date first."""
    from models.migrate import upgrade

    current = settings()
    upgrade(current.database_url)
    return current


def with_database(work: Callable[[async_sessionmaker[AsyncSession]], Awaitable[T]],
                  current: Settings | None = None) -> T:
    """Run ``work`` with a sessionmaker on the configured database (disposed after)."""
    chosen = current or settings()

    async def run() -> T:
        async with database(chosen) as sessionmaker:
            return await work(sessionmaker)

    return asyncio.run(run())


def in_transaction(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Migrate, then run ``work`` in one transaction on the configured database."""
    from models.db import transaction

    current = migrated()

    async def run(sessionmaker: async_sessionmaker[AsyncSession]) -> T:
        async with transaction(sessionmaker) as db:
            return await work(db)

    return with_database(run, current)


def open_lines(path: Path) -> Iterator[str]:
    raw = gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")
    with raw, io.TextIOWrapper(raw, encoding="utf-8-sig", newline="") as text:
        yield from text
