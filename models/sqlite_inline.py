"""Run SQLite statements inline on the event loop instead of on aiosqlite's thread.

SQLAlchemy's async SQLite dialect talks to an aiosqlite-shaped connection. aiosqlite
hands every call (cursor, execute, fetch, commit…) to a worker thread and back, about
0.6 ms per statement here, which dominated request time. SQLite statements on our
small rows take microseconds, so for the embedded single-process default we give the
dialect an object with the same coroutine interface that runs them directly.

The one case where an inline call could block the loop is waiting for the file's write
lock held by *another process* (bounded by ``busy_timeout``); within a process writers
queue on the engine's one-connection pool (see ``models.db``). Multi-process
deployments use PostgreSQL.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterable
from typing import Any


class InlineCursor:
    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    async def __aenter__(self) -> InlineCursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, sql: str, parameters: Any = ()) -> InlineCursor:
        self._cursor.execute(sql, parameters)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Any]) -> InlineCursor:
        self._cursor.executemany(sql, parameters)
        return self

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(size if size is not None else self._cursor.arraysize)

    async def close(self) -> None:
        self._cursor.close()


class _ImmediateQueue:
    """Stands in for aiosqlite's request queue (used by the dialect to set
    ``isolation_level``): runs the function now and resolves its future."""

    def put_nowait(self, item: tuple[asyncio.Future[Any] | None, Callable[[], Any]]) -> None:
        future, function = item
        try:
            result = function()
        except Exception as exc:
            if future is not None:
                future.set_exception(exc)
            return
        if future is not None:
            future.set_result(result)


class InlineConnection:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._connection = conn  # truthy while open (the dialect checks it)
        self._tx = _ImmediateQueue()

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    def cursor(self) -> InlineCursor:
        return InlineCursor(self._conn.cursor())

    async def execute(self, sql: str, parameters: Any = ()) -> InlineCursor:
        return await self.cursor().execute(sql, parameters)

    async def commit(self) -> None:
        self._conn.commit()

    async def rollback(self) -> None:
        self._conn.rollback()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)

    async def close(self) -> None:
        if self._connection is not None:
            self._conn.close()
            self._connection = None  # type: ignore[assignment]


def inline_creator(path: str, timeout_seconds: float) -> Callable[[], Any]:
    async def connect() -> InlineConnection:
        conn = sqlite3.connect(path, timeout=timeout_seconds, isolation_level=None,
                               check_same_thread=False, uri=path.startswith("file:"))
        return InlineConnection(conn)

    return connect
