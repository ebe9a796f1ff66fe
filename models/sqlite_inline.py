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

**A statement that does not wait costs no greenlet switch.** SQLAlchemy's asyncio
adapter runs every driver call as a coroutine through ``await_``, which switches from
the statement's greenlet to the event loop's and back even when the coroutine finishes
at once, as ours always do unless the database is locked: 11 round trips per checkout
create. ``InlineAdaptedConnection`` and ``InlineAdaptedCursor`` (what SQLAlchemy holds
as the DBAPI connection and cursor) call ``sqlite3`` directly and only on ``SQLITE_BUSY``
``await_`` the retry coroutine above, so the lock wait is exactly as before. (One
exception: ``AsyncConnection.execute`` insists that its greenlet switched at least once,
to catch synchronous drivers used by mistake; a statement's greenlet that has not
switched yet does so once, with a coroutine that returns at once: see ``_switch_once``.)
"""

from __future__ import annotations

import asyncio
import collections
import sqlite3
import time
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any, cast

from greenlet import getcurrent
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
)
from sqlalchemy.util import await_

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


class InlineConnection:
    """The driver connection: ``sqlite3`` with aiosqlite's coroutine interface (what
    SQLAlchemy's server-side cursors and ``create_function`` still use). Statements,
    BEGIN and COMMIT go through ``InlineAdaptedConnection``/``InlineAdaptedCursor``."""

    def __init__(self, conn: sqlite3.Connection, lock_timeout: float) -> None:
        self._conn = conn
        self._lock_timeout = lock_timeout
        self._connection = conn  # truthy while open (the dialect checks it)

    @property
    def lock_timeout(self) -> float:
        return self._lock_timeout

    @property
    def sqlite(self) -> sqlite3.Connection:
        """The underlying ``sqlite3`` connection (e.g. for ``set_trace_callback``)."""
        return self._conn

    def cursor(self) -> InlineCursor:
        return InlineCursor(self._conn.cursor(), self._lock_timeout)

    async def execute(self, sql: str, parameters: Any = ()) -> InlineCursor:
        return await self.cursor().execute(sql, parameters)

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)

    async def close(self) -> None:
        self.close_now()

    def close_now(self) -> None:
        if self._connection is not None:
            self._conn.close()
            self._connection = None  # type: ignore[assignment]


async def _nothing() -> None:
    return None


class _LastSwitched:
    """The greenlet that last switched to the event loop through ``_switch_once``."""

    greenlet: Any = None


def _switch_once() -> None:
    """Switch to the event loop once in the current statement's greenlet, if it has not
    switched already. SQLAlchemy's ``AsyncConnection.execute`` (and ``exec_driver_sql``)
    raise ``AwaitRequired`` from a greenlet that never switched (its guard against
    synchronous drivers), while ``AsyncSession.execute`` does not; which of the two runs
    a statement cannot be seen from here. A second statement in the same greenlet, or a
    greenlet that waited for a lock, costs nothing more."""
    current = getcurrent()
    if current is not _LastSwitched.greenlet:
        await_(_nothing())
        _LastSwitched.greenlet = current


class InlineAdaptedCursor(AsyncAdapt_aiosqlite_cursor):
    """SQLAlchemy's DBAPI cursor over a ``sqlite3`` cursor, run synchronously: the
    asyncio adapter's shape (rows fetched at execute, as the aiosqlite adapter does),
    without a coroutine and two greenlet switches per call. Only a statement that finds
    the database locked by another process waits, through ``await_`` (off the loop)."""

    __slots__ = ()
    _awaitable_cursor_close = False  # sqlite3's close is synchronous

    def _make_new_cursor(self, connection: Any) -> Any:
        return connection.sqlite.cursor()

    def _aenter_cursor(self, cursor: Any) -> Any:
        return cursor

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        cursor: Any = self._cursor  # a sqlite3.Cursor
        adapt: InlineAdaptedConnection = self._adapt_connection  # type: ignore[assignment]
        params = () if parameters is None else parameters
        _switch_once()
        if adapt._execute_mutex.locked():  # only if one connection is misused by two tasks
            adapt.wait_for(partial(cursor.execute, operation, params))
        else:
            try:
                cursor.execute(operation, params)
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc):
                    raise
                adapt.wait_for(partial(cursor.execute, operation, params))
        if cursor.description:
            self._rows = collections.deque(cursor.fetchall())
        return cursor

    def executemany(self, operation: Any, seq_of_parameters: Any) -> Any:
        cursor: Any = self._cursor
        adapt: InlineAdaptedConnection = self._adapt_connection  # type: ignore[assignment]
        return adapt.run(partial(cursor.executemany, operation, seq_of_parameters))


class InlineAdaptedConnection(AsyncAdapt_aiosqlite_connection):
    """SQLAlchemy's DBAPI connection over an ``InlineConnection`` (its driver
    connection), run synchronously; see the module's docstring."""

    __slots__ = ()
    _cursor_cls = InlineAdaptedCursor

    @property
    def inline(self) -> InlineConnection:
        """The driver connection (``InlineConnection``)."""
        return cast(InlineConnection, self._connection)

    def run(self, attempt: Callable[[], Any]) -> Any:
        """``attempt()`` now; if the database is locked, retried off the loop."""
        _switch_once()
        if self._execute_mutex.locked():
            return self.wait_for(attempt)
        try:
            return attempt()
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc):
                raise
        return self.wait_for(attempt)

    def wait_for(self, attempt: Callable[[], Any]) -> Any:
        """Retry ``attempt`` from a coroutine (the event loop free) until the lock is
        free or the lock timeout has passed (``DatabaseBusy``)."""
        _LastSwitched.greenlet = getcurrent()
        return await_(self._retry(attempt))

    async def _retry(self, attempt: Callable[[], Any]) -> Any:
        async with self._execute_mutex:
            return await _retry_while_busy(attempt, self.inline.lock_timeout)

    def begin(self, statement: str) -> None:
        """``BEGIN`` or ``BEGIN IMMEDIATE`` straight on the driver (``models.db``)."""
        self.run(partial(self.inline.sqlite.execute, statement))

    @property
    def isolation_level(self) -> str | None:
        return self.inline.sqlite.isolation_level

    @isolation_level.setter
    def isolation_level(self, value: str | None) -> None:
        self.inline.sqlite.isolation_level = value  # type: ignore[assignment]

    def commit(self) -> None:
        if self.inline._connection:
            self.run(self.inline.sqlite.commit)

    def rollback(self) -> None:
        if self.inline._connection:
            self.inline.sqlite.rollback()

    def close(self) -> None:
        self.inline.close_now()


def inline_connector(path: str, lock_timeout: float) -> Callable[[Any], Any]:
    """``connect(dbapi)``: a new connection whose lock waits are asynchronous (SQLite's
    busy timeout is 0), adapted for the engine's dialect (``dbapi``: its DBAPI module)."""

    def connect(dbapi: Any) -> InlineAdaptedConnection:
        conn = sqlite3.connect(path, timeout=0, isolation_level=None,
                               check_same_thread=False, uri=path.startswith("file:"))
        return InlineAdaptedConnection(dbapi, cast(Any, InlineConnection(conn, lock_timeout)))

    return connect
