"""Engine and session factories. They take a URL, never the settings object."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from sqlalchemy import event, exc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry

from models.greenlets import Session
from models.sqlite_inline import inline_connector

# How long a statement waits, asynchronously, for a lock held by another process.
SQLITE_LOCK_TIMEOUT_SECONDS = 30.0
# PostgreSQL: a pooled connection idle this long is pinged before use (``ping_when_idle``).
PING_AFTER_IDLE_SECONDS = 10.0


class NestedWriteSession(RuntimeError):
    """A task asked for SQLite's one write connection while it already holds it."""


class SingleWriterPool(AsyncAdaptedQueuePool):
    """SQLite's write pool (one connection) that refuses a nested checkout at once.

    A task that opens a second write session while its first one holds the connection
    would wait for itself until the pool timeout (a deadlock that stalls every writer
    behind it). This pool knows which task holds the connection and raises
    ``NestedWriteSession`` instead, naming the mistake; the suite runs on SQLite, so such
    code fails its tests rather than production. PostgreSQL pools are unaffected.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._holders: dict[int, asyncio.Task[Any] | None] = {}

    def _do_get(self) -> ConnectionPoolEntry:
        task = _current_task()
        if task is not None and task in self._holders.values():
            raise NestedWriteSession(
                "This task already holds the SQLite write connection: a second write "
                "session inside one request or job would wait for itself. Do the work in "
                "the first session, or finish it before opening another.")
        record = super()._do_get()
        self._holders[id(record)] = task
        return record

    def _do_return_conn(self, record: ConnectionPoolEntry) -> None:
        self._holders.pop(id(record), None)
        super()._do_return_conn(record)


def _current_task() -> asyncio.Task[Any] | None:
    try:
        return asyncio.current_task()
    except RuntimeError:  # no running loop (synchronous use)
        return None


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


# JSON columns (sessions carry several) are (de)serialised with orjson: ~5x faster.
JSON_OPTIONS: dict[str, Any] = {"json_serializer": _json_dumps, "json_deserializer": orjson.loads}


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(
    url: str, *, pool_size: int = 10, echo: bool = False, sqlite_immediate: bool = True,
    sqlite_lock_timeout: float = SQLITE_LOCK_TIMEOUT_SECONDS,
    sqlite_autocheckpoint: bool = True, ping_after_idle: float = PING_AFTER_IDLE_SECONDS,
) -> AsyncEngine:
    """``sqlite_immediate=False`` gives a read engine: deferred BEGIN, no write lock taken.
    ``sqlite_lock_timeout``: how long a statement waits (asynchronously, the event loop
    free) for a lock another process holds before ``DatabaseBusy`` (503).
    ``sqlite_autocheckpoint=False``: commits never run a WAL checkpoint (the caller runs
    ``WalCheckpointer`` instead, off the event loop).
    ``ping_after_idle`` (PostgreSQL): a pooled connection idle this long is pinged before
    use (``ping_when_idle``)."""
    if is_sqlite(url):
        # SQLite has one writer. One pooled write connection makes writers queue on the pool
        # (cheap, FIFO) instead of in SQLite's busy handler, which sleeps in growing steps
        # (up to 100 ms) and wrecks tail latency. Other processes still serialise on the file
        # lock, waited for off the loop (models.sqlite_inline). Reads use a separate engine
        # with many connections (WAL readers never block).
        pool: dict[str, Any] = (
            {"poolclass": SingleWriterPool, "pool_size": 1, "max_overflow": 0,
             "pool_timeout": max(60.0, 2 * sqlite_lock_timeout)} if sqlite_immediate else {}
        )
        database = make_url(url).database or ":memory:"
        connect = inline_connector(database, sqlite_lock_timeout)
        engine: AsyncEngine = create_async_engine(
            url, echo=echo, creator=lambda: connect(engine.sync_engine.dialect.dbapi),
            **pool, **JSON_OPTIONS,
        )
        _configure_sqlite(engine, immediate=sqlite_immediate,
                          autocheckpoint=sqlite_autocheckpoint)
        return engine
    engine = create_async_engine(
        url, echo=echo, pool_size=pool_size, max_overflow=pool_size, **JSON_OPTIONS,
    )
    ping_when_idle(engine, ping_after_idle)
    return engine


def ping_when_idle(engine: AsyncEngine, after: float) -> None:
    """Ping a pooled connection at checkout only when it sat idle in the pool ``after``
    seconds or more; a dead one is replaced (and the pool invalidated, as SQLAlchemy's
    ``pool_pre_ping`` does).

    ``pool_pre_ping`` pings at *every* checkout. With asyncpg that is three round trips
    (BEGIN, an empty query, ROLLBACK): 18 per checkout flow, a third of its round trips,
    each costing CPU in the API and in PostgreSQL (issue 16). A connection used a
    moment ago is alive as far as a ping can tell; if the server dropped it since, the
    statement fails with a disconnect error, SQLAlchemy invalidates the whole pool and
    the next checkouts reconnect — the same outcome as a connection that dies just after
    its ping. Idle connections (a quiet service, a restarted server, a firewall that
    forgot the socket) are still pinged first.
    """
    pool = engine.sync_engine.pool
    dialect = engine.sync_engine.dialect

    @event.listens_for(pool, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def _on_checkout(dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < after:
            return  # a new connection, or one used a moment ago
        try:
            alive = dialect.do_ping(dbapi_connection)
        except Exception as error:
            raise exc.InvalidatePoolError(f"ping after {after:g} s idle failed") from error
        if not alive:
            raise exc.InvalidatePoolError(f"ping after {after:g} s idle failed")


def _configure_sqlite(engine: AsyncEngine, *, immediate: bool, autocheckpoint: bool) -> None:
    """WAL, and BEGIN IMMEDIATE so writers queue instead of failing.

    SQLite allows one writer. A deferred transaction that reads and then writes can hit
    SQLITE_BUSY without waiting; taking the write lock at BEGIN makes concurrent requests
    wait their turn (bounded by the lock timeout, waited for off the event loop: SQLite's
    own busy timeout stays 0) and gives us serializable read-modify-write, which is what
    row locks give us on PostgreSQL.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=0")  # lock waits: models.sqlite_inline
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        if not autocheckpoint:
            cursor.execute("PRAGMA wal_autocheckpoint=0")
        cursor.close()

    statement = "BEGIN IMMEDIATE" if immediate else "BEGIN"

    def do_begin(dbapi_connection: Any) -> None:
        dbapi_connection.begin(statement)  # InlineAdaptedConnection: no greenlet switch

    # The dialect's own hook for starting a transaction (a no-op for sqlite3), set on this
    # engine's dialect instance. A ``begin`` event listener would do the same, but any
    # engine event makes SQLAlchemy dispatch its (empty) execution events around every
    # statement; and issuing BEGIN as a statement through SQLAlchemy cost as much as one
    # of a create's three real statements. ``InlineAdaptedConnection.begin`` waits for
    # another process's lock off the event loop like every statement.
    engine.sync_engine.dialect.do_begin = do_begin  # type: ignore[method-assign]


class WalCheckpointer:
    """Runs SQLite's WAL checkpoints on a thread, so no commit pays for one on the loop.

    With WAL and ``synchronous=NORMAL`` a commit only appends to the WAL; the expensive part
    (copying pages back into the database file and syncing it) is the checkpoint, which
    SQLite otherwise runs inside whichever commit crosses 1,000 WAL pages — on the event
    loop, stalling every request for it (one of the p99 causes of issue 16). API and
    worker processes turn that off (``sqlite_autocheckpoint=False``) and call ``run``: a
    PASSIVE checkpoint every ``interval`` seconds on its own connection in a thread (the
    GIL is released while SQLite works). PASSIVE never waits for, nor blocks, readers or
    the writer; the WAL restarts from its beginning once a checkpoint has caught up.
    """

    def __init__(self, url: str, interval: float = 1.0) -> None:
        self.path = make_url(url).database or ""
        self.interval = interval
        self._conn: Any = None
        self.checkpoints = 0

    def checkpoint(self) -> tuple[int, int, int]:
        """One PASSIVE checkpoint (blocking: call it in a thread). Returns SQLite's
        (busy, WAL frames, frames checkpointed)."""
        import sqlite3

        if self._conn is None:
            self._conn = sqlite3.connect(self.path, timeout=0, isolation_level=None,
                                         check_same_thread=False,
                                         uri=self.path.startswith("file:"))
        try:
            busy, frames, done = self._conn.execute(
                "PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc):
                raise
            return 1, -1, -1  # another process is checkpointing right now
        self.checkpoints += 1
        return int(busy), int(frames), int(done)

    async def run(self, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                try:
                    await asyncio.wait_for(stop.wait(), timeout=self.interval)
                except TimeoutError:
                    pass
                try:
                    await asyncio.to_thread(self.checkpoint)
                except Exception:  # the next round tries again; never kill the process
                    import logging

                    logging.getLogger("reelcart.db").exception("WAL checkpoint failed")
        finally:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions are ``models.greenlets.Session``: ``AsyncSession`` on reused greenlets."""
    return async_sessionmaker(engine, class_=Session, expire_on_commit=False,
                              autoflush=False)


class UnitOfWork:
    """``async with UnitOfWork(sessionmaker) as db``: a session for one transaction that
    the block commits itself (``await db.commit()``).

    ``async with sessionmaker() as db`` closes the session in a task of its own, shielded
    from cancellation (SQLAlchemy's ``_run_to_completion``), so that an abandoned close
    never returns a connection to the pool behind our back: a task, a shield and a trip
    through the event loop per request. A committed session holds no connection any
    more, so there is nothing to protect: it is closed directly. Any other exit (an
    error, a cancellation, a block that did not commit) closes it the shielded way, which
    rolls back and returns the connection as before.
    """

    __slots__ = ("db",)

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.db = sessionmaker()

    async def __aenter__(self) -> AsyncSession:
        return self.db

    async def __aexit__(self, exc_type: Any, exc: Any, traceback: Any) -> None:
        if exc_type is None and not self.db.in_transaction():
            await self.db.close()  # committed: no connection held, nothing to shield
        else:
            await self.db.__aexit__(exc_type, exc, traceback)


@asynccontextmanager
async def transaction(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """Unit of work for workers and CLI commands: commit on success, roll back on error."""
    async with sessionmaker() as session, session.begin():
        yield session
