"""Run SQLite statements inline on the event loop instead of on aiosqlite's thread.

SQLAlchemy's async SQLite dialect talks to an aiosqlite-shaped connection. aiosqlite
hands every call (cursor, execute, fetch, commit…) to a worker thread and back, about
0.6 ms per statement here, which dominated request time. SQLite statements on our
small rows take microseconds, so we give the dialect an object with the same coroutine
interface that runs them directly.

**No statement ever waits for a lock on the event loop.** Connections are opened with
SQLite's busy timeout at 0, so a statement that finds the database locked by *another
process* (a ``reelcart worker``, a second ``serve``, a CLI import holding the write lock)
fails at once with ``SQLITE_BUSY`` instead of sleeping inside SQLite on our thread. The
statement is then retried from a coroutine that ``asyncio.sleep``s between attempts
(0.5 ms doubling to 2 ms): the loop keeps serving every other request (``/healthz``,
reads on the WAL read connections, anything not needing the write lock) while this one
waits. After ``lock_timeout`` seconds the wait ends with ``DatabaseBusy`` (HTTP 503,
``Retry-After``). Retrying is safe: a statement that returns ``SQLITE_BUSY`` has had no
effect (``BEGIN IMMEDIATE`` takes no lock, a read sees nothing, ``COMMIT`` may be
repeated), except ``SQLITE_BUSY_SNAPSHOT``, which no retry can cure and is raised as is.
Within a process writers queue on the engine's one-connection pool (see ``models.db``).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterable
from typing import Any

from models.errors import ServiceUnavailable

_SQLITE_BUSY = 5
_SQLITE_BUSY_SNAPSHOT = _SQLITE_BUSY | (2 << 8)
_FIRST_PAUSE = 0.0005
_LONGEST_PAUSE = 0.002


class DatabaseBusy(ServiceUnavailable):
    """Another process held SQLite's write lock for longer than the lock timeout."""

    code = "database_busy"


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None:  # pragma: no cover (Python < 3.11 has no error codes)
        return str(exc).startswith("database is locked")
    return code & 0xFF == _SQLITE_BUSY and code != _SQLITE_BUSY_SNAPSHOT


async def _retry_while_busy(attempt: Callable[[], Any], lock_timeout: float) -> Any:
    """Run ``attempt`` until it does not find the database locked, sleeping on the loop
    (not in SQLite) between tries; ``DatabaseBusy`` after ``lock_timeout`` seconds."""
    pause = _FIRST_PAUSE
    deadline = time.monotonic() + lock_timeout
    while True:
        try:
            return attempt()
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc):
                raise
            if time.monotonic() >= deadline:
                raise DatabaseBusy(
                    "The database is locked by another process; retry shortly.",
                    headers={"Retry-After": "1"}) from exc
        await asyncio.sleep(pause)
        pause = min(pause * 2, _LONGEST_PAUSE)


class InlineCursor:
    def __init__(self, cursor: sqlite3.Cursor, lock_timeout: float) -> None:
        self._cursor = cursor
        self._lock_timeout = lock_timeout

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
        try:
            self._cursor.execute(sql, parameters)
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc):
                raise
            await _retry_while_busy(lambda: self._cursor.execute(sql, parameters),
                                    self._lock_timeout)
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
    def __init__(self, conn: sqlite3.Connection, lock_timeout: float) -> None:
        self._conn = conn
        self._lock_timeout = lock_timeout
        self._connection = conn  # truthy while open (the dialect checks it)
        self._tx = _ImmediateQueue()

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    @property
    def sqlite(self) -> sqlite3.Connection:
        """The underlying ``sqlite3`` connection (e.g. for ``set_trace_callback``)."""
        return self._conn

    def cursor(self) -> InlineCursor:
        return InlineCursor(self._conn.cursor(), self._lock_timeout)

    async def execute(self, sql: str, parameters: Any = ()) -> InlineCursor:
        return await self.cursor().execute(sql, parameters)

    async def begin(self, statement: str) -> None:
        """Start a transaction (``BEGIN`` or ``BEGIN IMMEDIATE``) straight on the driver,
        waiting for another process's lock like every statement. ``models.db`` calls it
        from the engine's ``begin`` event: going through SQLAlchemy's statement execution
        for it cost as much as one of the create's three real statements."""
        try:
            self._conn.execute(statement)
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc):
                raise
            await _retry_while_busy(lambda: self._conn.execute(statement), self._lock_timeout)

    async def commit(self) -> None:
        try:
            self._conn.commit()
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc):
                raise
            await _retry_while_busy(self._conn.commit, self._lock_timeout)

    async def rollback(self) -> None:
        self._conn.rollback()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)

    async def close(self) -> None:
        if self._connection is not None:
            self._conn.close()
            self._connection = None  # type: ignore[assignment]


def inline_creator(path: str, lock_timeout: float) -> Callable[[], Any]:
    """Connections whose lock waits are asynchronous (SQLite's busy timeout is 0)."""

    async def connect() -> InlineConnection:
        conn = sqlite3.connect(path, timeout=0, isolation_level=None,
                               check_same_thread=False, uri=path.startswith("file:"))
        return InlineConnection(conn, lock_timeout)

    return connect
