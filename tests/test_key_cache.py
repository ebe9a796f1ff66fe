"""Issue 16: API keys are not looked up in the database on every request, and a revocation
made by another process still takes effect within ``REELCART_API_KEY_CACHE_SECONDS``.

Two runtimes on one database stand for two processes (each has its own memory; all shared
state is in the database). The first runtime's cache runs on a clock the test advances.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import update

from api.auth import create_agent_key, create_merchant_key
from api.runtime import Runtime, build_runtime
from models import AgentApiKey, MerchantApiKey
from models.base import utc_now
from models.db import transaction
from tests.conftest import API_VERSION, app_client, make_settings, reset_database


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@asynccontextmanager
async def two_processes(database_url: str, ttl: float, clock: Clock
                        ) -> AsyncIterator[tuple[Runtime, Runtime]]:
    await reset_database(database_url)
    first = build_runtime(make_settings(database_url, api_key_cache_seconds=ttl),
                          key_clock=clock)
    other = build_runtime(make_settings(database_url))
    try:
        yield first, other
    finally:
        await first.close()
        await other.close()


def _agent(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "API-Version": API_VERSION}


async def _revoke_agent_keys(rt: Runtime) -> None:
    async with transaction(rt.sessionmaker) as db:
        await db.execute(update(AgentApiKey).values(revoked_at=utc_now()))


async def test_agent_key_revoked_elsewhere_is_refused_once_the_ttl_passes(
        database_url: str, backend: str) -> None:
    clock = Clock()
    async with two_processes(database_url, 30, clock) as (first, other), \
            app_client(first) as a, app_client(other) as b:
        async with transaction(other.sessionmaker) as db:
            _, key = await create_agent_key(db, "agent-one")
        # A key issued by another process works at once (nothing negative is cached).
        probe = "/checkout_sessions/cs_missing"
        assert (await a.get(probe, headers=_agent(key))).status_code == 404
        await _revoke_agent_keys(other)
        # The other process looks it up (nothing cached there yet): refused at once.
        refused = await b.get(probe, headers=_agent(key))
        assert refused.status_code == 401
        # The first process verified it moments ago and trusts it until the TTL ends…
        clock.now += 29
        assert (await a.get(probe, headers=_agent(key))).status_code == 404
        # …and not a moment after.
        clock.now += 1
        late = await a.get(probe, headers=_agent(key))
        assert late.status_code == 401
        assert late.json()["code"] == "unauthorized"
        clock.now += 100  # stays refused: a rejection is never cached as valid
        assert (await a.get(probe, headers=_agent(key))).status_code == 401


async def test_ttl_zero_checks_every_request(database_url: str, backend: str) -> None:
    clock = Clock()
    async with two_processes(database_url, 0, clock) as (first, other), \
            app_client(first) as a:
        async with transaction(other.sessionmaker) as db:
            _, key = await create_agent_key(db, "agent-two")
        assert (await a.get("/checkout_sessions/cs_missing",
                            headers=_agent(key))).status_code == 404
        await _revoke_agent_keys(other)
        assert (await a.get("/checkout_sessions/cs_missing",
                            headers=_agent(key))).status_code == 401


async def test_merchant_key_revoked_elsewhere_is_refused_once_the_ttl_passes(
        database_url: str, backend: str) -> None:
    clock = Clock()
    async with two_processes(database_url, 5, clock) as (first, other), \
            app_client(first) as a:
        async with transaction(other.sessionmaker) as db:
            key = await create_merchant_key(db, "back office")
        headers = {"Authorization": f"Bearer {key}"}
        assert (await a.get("/orders", headers=headers)).status_code == 200
        async with transaction(other.sessionmaker) as db:
            await db.execute(update(MerchantApiKey).values(revoked_at=utc_now()))
        assert (await a.get("/orders", headers=headers)).status_code == 200  # cached
        clock.now += 5
        assert (await a.get("/orders", headers=headers)).status_code == 401
