"""PostgreSQL connection pool: a connection used a moment ago is handed out without a
ping (``pool_pre_ping`` cost three round trips per checkout, a third of a checkout
flow's round trips: issue 16); an idle one is pinged, and replaced if the server closed
it. Observed at the driver (asyncpg's query logger), so every round trip counts."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from api.runtime import Runtime
from models.db import create_engine
from tests.conftest import Agent, app_client

pytestmark = pytest.mark.backends("postgresql")  # SQLite's pool has no network to ping


async def _driver_log(engine: AsyncEngine) -> tuple[list[str], int]:
    """The simple queries (not prepared statements) the pooled connection sends from now
    on, and its server pid."""
    queries: list[str] = []
    async with engine.connect() as conn:
        raw: Any = (await conn.get_raw_connection()).driver_connection
        raw.add_query_logger(lambda record: queries.append(record.query.strip(" ;").upper()))
        pid = int(await conn.scalar(text("SELECT pg_backend_pid()")) or 0)
        await conn.commit()
    queries.clear()
    return queries, pid


async def _terminate(database_url: str, pid: int | None = None) -> int:
    """The server drops connection ``pid`` (or every other one to this database), as a
    restart or failover would; how many it dropped."""
    killer = create_engine(database_url)
    try:
        async with killer.begin() as conn:
            if pid is not None:
                return int(bool(await conn.scalar(
                    text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})))
            return int(await conn.scalar(text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()")) or 0)
    finally:
        await killer.dispose()


async def test_a_connection_used_a_moment_ago_is_not_pinged(backend: str,
                                                             database_url: str) -> None:
    engine = create_engine(database_url, pool_size=1)
    try:
        queries, _ = await _driver_log(engine)
        for _ in range(3):
            async with engine.begin() as conn:
                await conn.execute(text("SELECT 1"))
        # The logger sees simple queries (SQLAlchemy's statements are prepared ones, not
        # logged): BEGIN and COMMIT per transaction, and no ping (BEGIN, ';', ROLLBACK).
        assert queries == ["BEGIN", "COMMIT"] * 3
    finally:
        await engine.dispose()


async def test_an_idle_connection_the_server_closed_is_replaced(backend: str,
                                                                database_url: str) -> None:
    engine = create_engine(database_url, pool_size=1, ping_after_idle=0)  # always idle
    try:
        _, pid = await _driver_log(engine)
        assert await _terminate(database_url, pid)
        # Unpinged, this transaction would fail on the dead connection (the next test);
        # the ping finds it dead and the pool connects afresh.
        async with engine.begin() as conn:
            assert await conn.scalar(text("SELECT pg_backend_pid()")) != pid
    finally:
        await engine.dispose()


async def test_a_recently_used_connection_the_server_closed_fails_once(
        backend: str, database_url: str) -> None:
    """Not pinged (used a moment ago): the statement fails with a disconnect error, the
    pool is invalidated, and the next checkout connects afresh — what a connection dying
    just after its ping did with ``pool_pre_ping`` too."""
    engine = create_engine(database_url, pool_size=1)
    try:
        _, pid = await _driver_log(engine)
        assert await _terminate(database_url, pid)
        with pytest.raises(DBAPIError) as failure:
            async with engine.begin() as conn:
                await conn.execute(text("SELECT 1"))
        assert failure.value.connection_invalidated
        async with engine.begin() as conn:
            assert await conn.scalar(text("SELECT pg_backend_pid()")) != pid
    finally:
        await engine.dispose()


async def test_a_request_on_a_dropped_connection_gets_a_503_then_the_next_one_works(
        runtime: Runtime) -> None:
    """Through the API: the database drops every pooled connection (a restart or a
    failover). A connection used a moment ago is not pinged, so one request fails on it:
    it gets a retryable 503 in the ACP error shape, never a 500, and the next request
    runs on a fresh connection."""
    async with app_client(runtime) as client:
        agent = Agent(client)
        session = await agent.ready_session()
        assert await _terminate(runtime.engine.url.render_as_string(hide_password=False))
        dropped = await agent.get(f"/checkout_sessions/{session['id']}")
        assert dropped.status_code == 503, dropped.text
        assert dropped.headers["retry-after"] == "1"
        assert dropped.json()["type"] == "service_unavailable"
        assert dropped.json()["code"] == "database_unavailable"
        again = await agent.get(f"/checkout_sessions/{session['id']}")
        assert again.status_code == 200, again.text
        assert again.json()["id"] == session["id"]
