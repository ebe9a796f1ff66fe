"""Issue 16: no request waits on the event loop for a lock another process holds, and a
nested write session fails at once instead of deadlocking the SQLite write pool.

The lock is held by a real second OS process with an explicit write transaction (SQLite:
``BEGIN IMMEDIATE``; PostgreSQL: a table lock that blocks the create's INSERT), released
only when the test says so: nothing depends on timing except generous stall bounds.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from api.runtime import Runtime
from models.db import NestedWriteSession, is_sqlite
from tests.conftest import Agent, app_client, sandbox_runtime

STALL_BOUND = 1.0  # seconds; the stall being fixed lasted up to the 30 s busy timeout

_SQLITE_HOLDER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
conn.execute("UPDATE variants SET stock = stock")  # a real write transaction
print("locked", flush=True)
sys.stdin.readline()
conn.execute("COMMIT")
print("released", flush=True)
"""

_POSTGRES_HOLDER = """
import asyncio, sys
import asyncpg
async def main():
    conn = await asyncpg.connect(sys.argv[1])
    tx = conn.transaction()
    await tx.start()
    # Blocks every INSERT into checkout_sessions (a create), not reads.
    await conn.execute("LOCK TABLE checkout_sessions IN SHARE ROW EXCLUSIVE MODE")
    print("locked", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    await tx.commit()
    await conn.close()
    print("released", flush=True)
asyncio.run(main())
"""


@contextmanager
def write_lock_in_another_process(database_url: str) -> Iterator[subprocess.Popen[str]]:
    """A second OS process holding a write transaction until the block ends."""
    url = make_url(database_url)
    if is_sqlite(database_url):
        script, target = _SQLITE_HOLDER, str(url.database)
    else:
        script = _POSTGRES_HOLDER
        target = url.set(drivername="postgresql").render_as_string(hide_password=False)
    holder = subprocess.Popen([sys.executable, "-c", script, target], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        assert holder.stdin is not None
        assert holder.stdout.readline().strip() == "locked"
        yield holder
        holder.stdin.write("\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "released"
        assert holder.wait(timeout=30) == 0
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


async def test_api_answers_while_another_process_holds_the_write_lock(
        database_url: str, backend: str) -> None:
    async with sandbox_runtime(database_url) as rt, app_client(rt) as http:
        agent = Agent(http)
        existing = (await agent.create(line_items=[{"id": "item_123"}])).json()["id"]
        with write_lock_in_another_process(database_url):
            create = asyncio.create_task(agent.create(line_items=[{"id": "item_123"}]))
            for _ in range(5):  # let the create reach the lock and wait there
                await asyncio.sleep(0.05)
            assert not create.done()  # it cannot finish: the lock is held
            for _ in range(10):
                started = time.perf_counter()
                health = await http.get("/healthz")
                assert health.status_code == 200
                assert time.perf_counter() - started < STALL_BOUND
            # Reads go on too (WAL readers / PostgreSQL MVCC): an existing session.
            started = time.perf_counter()
            read = await agent.get(f"/checkout_sessions/{existing}")
            assert read.status_code == 200, read.text
            assert time.perf_counter() - started < STALL_BOUND
            assert not create.done()
        created = await asyncio.wait_for(create, timeout=30)  # the lock is free again
        assert created.status_code == 201, created.text
        assert created.json()["status"] in ("not_ready_for_payment", "ready_for_payment")


@pytest.mark.backends("sqlite")  # the lock timeout is SQLite's (PostgreSQL waits on row locks)
async def test_a_lock_held_past_the_timeout_is_a_prompt_503(database_url: str) -> None:
    async with sandbox_runtime(database_url, sqlite_lock_timeout_seconds=0.3) as rt, \
            app_client(rt) as http:
        agent = Agent(http)
        with write_lock_in_another_process(database_url):
            started = time.perf_counter()
            busy = await agent.create(line_items=[{"id": "item_123"}])
            assert time.perf_counter() - started < 0.3 + STALL_BOUND
            assert busy.status_code == 503, busy.text
            assert busy.json()["code"] == "database_busy"
            assert busy.json()["type"] == "service_unavailable"
            assert busy.headers["Retry-After"] == "1"
        retried = await agent.create(line_items=[{"id": "item_123"}])
        assert retried.status_code == 201, retried.text


async def test_a_nested_write_session_fails_at_once_instead_of_deadlocking(
        runtime: Runtime, backend: str) -> None:
    """SQLite has one write connection per process: a task that opens a second write
    session while its first holds the connection used to wait for itself (60 s pool
    timeout, every writer queued behind it). PostgreSQL's pool simply gives another."""
    started = time.perf_counter()
    async with runtime.sessionmaker() as outer, outer.begin():
        await outer.execute(text("UPDATE variants SET stock = stock WHERE id = 'item_123'"))
        if backend == "sqlite":
            with pytest.raises(NestedWriteSession):
                async with runtime.sessionmaker() as inner, inner.begin():
                    await inner.execute(text("SELECT 1"))
        else:
            async with runtime.sessionmaker() as inner, inner.begin():
                assert (await inner.execute(text("SELECT 1"))).scalar() == 1
        # The outer session is unharmed either way.
        assert (await outer.execute(text("SELECT 1"))).scalar() == 1
    assert time.perf_counter() - started < STALL_BOUND
    # And the write connection is free again for the next writer.
    async with runtime.sessionmaker() as after, after.begin():
        assert (await after.execute(text("SELECT 1"))).scalar() == 1


async def test_other_tasks_still_queue_for_the_write_connection(runtime: Runtime) -> None:
    """The nested-session check is per task: concurrent requests wait their turn."""
    order: list[int] = []

    async def writer(n: int) -> None:
        async with runtime.sessionmaker() as db, db.begin():
            await db.execute(text("UPDATE variants SET stock = stock WHERE id = 'item_123'"))
            await asyncio.sleep(0.01)  # hold it across an await
            order.append(n)

    await asyncio.gather(*(writer(n) for n in range(5)))
    assert sorted(order) == list(range(5))


async def test_a_cart_short_of_one_line_takes_no_stock_at_all(agent: Agent,
                                                              runtime: Runtime,
                                                              backend: str) -> None:
    """Stock is taken for the whole cart in one statement, all or nothing: when another
    buyer took the last unit between quote and complete, the other lines keep theirs."""
    from tests.test_checkout_flow import stock_of

    cart = await agent.ready_session([{"id": "few-left", "quantity": 2},
                                      {"id": "last-unit"}, {"id": "item_123"}])
    rival = await agent.ready_session([{"id": "last-unit"}])
    assert (await agent.complete(rival["id"])).json()["status"] == "completed"
    before = await stock_of(runtime, "item_123")
    assert before is not None
    late = (await agent.complete(cart["id"])).json()
    assert late["status"] != "completed"
    assert any(m["code"] == "out_of_stock" for m in late["messages"])
    assert await stock_of(runtime, "few-left") == 5
    assert await stock_of(runtime, "last-unit") == 0
    assert await stock_of(runtime, "item_123") == before
    # The buyer drops the sold-out line and completes: every remaining line is taken.
    await agent.post(f"/checkout_sessions/{cart['id']}", {
        "line_items": [{"id": "few-left", "quantity": 2}, {"id": "item_123"}]})
    done = (await agent.complete(cart["id"])).json()
    assert done["status"] == "completed", done["messages"]
    assert await stock_of(runtime, "few-left") == 3
    assert await stock_of(runtime, "item_123") == before - 1


@pytest.mark.backends("sqlite")  # PostgreSQL has no WAL checkpoints in the client
async def test_long_running_processes_checkpoint_the_wal_off_the_event_loop(
        database_url: str) -> None:
    """API and worker processes: commits never run a WAL checkpoint (SQLite would run it
    inside whichever commit crosses 1,000 pages, on the event loop); the runtime's
    background task does, on a thread."""
    from api.runtime import build_runtime
    from tests.conftest import make_settings, reset_database

    await reset_database(database_url)
    rt = build_runtime(make_settings(database_url), long_running=True)
    try:
        assert rt.checkpointer is not None
        async with rt.sessionmaker() as db, db.begin():
            assert (await db.execute(text("PRAGMA wal_autocheckpoint"))).scalar() == 0
            for n in range(300):
                await db.execute(text("UPDATE variants SET description = :d"),
                                 {"d": f"{n}" * 200})
        # What run_background does every second, on a thread:
        busy, frames, done = await asyncio.to_thread(rt.checkpointer.checkpoint)
        assert busy == 0
        assert frames > 0  # the commits above left their pages in the WAL…
        assert frames == done  # …and now everything in it is in the database file
        stop = asyncio.Event()
        stop.set()
        await rt.run_background(stop)  # ends at once when stopped, closing its connection
    finally:
        await rt.close()
    # One-off processes (CLI commands, tests) keep SQLite's automatic checkpoints.
    rt = build_runtime(make_settings(database_url))
    try:
        assert rt.checkpointer is None
        async with rt.sessionmaker() as db, db.begin():
            assert (await db.execute(text("PRAGMA wal_autocheckpoint"))).scalar() == 1000
    finally:
        await rt.close()
