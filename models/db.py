"""Engine and session factories. They take a URL, never the settings object."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from models.sqlite_inline import inline_creator

SQLITE_BUSY_TIMEOUT_MS = 30_000


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


# JSON columns (sessions carry several) are (de)serialised with orjson: ~5x faster.
JSON_OPTIONS: dict[str, Any] = {"json_serializer": _json_dumps, "json_deserializer": orjson.loads}


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(
    url: str, *, pool_size: int = 10, echo: bool = False, sqlite_immediate: bool = True
) -> AsyncEngine:
    """``sqlite_immediate=False`` gives a read engine: deferred BEGIN, no write lock taken."""
    if is_sqlite(url):
        # SQLite has one writer. One pooled write connection makes writers queue on the pool
        # (cheap, FIFO) instead of in SQLite's busy handler, which sleeps in growing steps
        # (up to 100 ms) and wrecks tail latency. Other processes still serialise on the file
        # lock. Reads use a separate engine with many connections (WAL readers never block).
        pool: dict[str, Any] = (
            {"pool_size": 1, "max_overflow": 0, "pool_timeout": 60} if sqlite_immediate else {}
        )
        database = make_url(url).database or ":memory:"
        engine = create_async_engine(
            url, echo=echo,
            async_creator=inline_creator(database, SQLITE_BUSY_TIMEOUT_MS / 1000), **pool,
            **JSON_OPTIONS,
        )
        _configure_sqlite(engine, immediate=sqlite_immediate)
        return engine
    return create_async_engine(
        url, echo=echo, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True,
        **JSON_OPTIONS,
    )


def _configure_sqlite(engine: AsyncEngine, *, immediate: bool) -> None:
    """WAL + busy timeout, and BEGIN IMMEDIATE so writers queue instead of failing.

    SQLite allows one writer. A deferred transaction that reads and then writes can hit
    SQLITE_BUSY without waiting; taking the write lock at BEGIN makes concurrent requests
    wait their turn (bounded by the busy timeout) and gives us serializable read-modify-write,
    which is what row locks give us on PostgreSQL.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


@asynccontextmanager
async def transaction(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """Unit of work for workers and CLI commands: commit on success, roll back on error."""
    async with sessionmaker() as session, session.begin():
        yield session
