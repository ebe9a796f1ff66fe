"""Test fixtures. Every test that takes ``backend`` runs on SQLite *and* PostgreSQL.

PostgreSQL comes from ``REELCART_TEST_POSTGRES_URL`` (an asyncpg URL to a server where we
may create databases; ``scripts/test`` starts a throwaway cluster and sets it). Without it
the PostgreSQL variants skip, except under CI where a missing server is a failure.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from pytest_httpx import HTTPXMock
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from api.app import create_app
from api.runtime import Runtime, build_runtime
from api.settings import Settings
from feeds.demo import demo_catalog
from feeds.schemas import ImportReport, ProductRecord, VariantRecord
from feeds.service import upsert_products
from models import Base
from models.db import create_engine, create_sessionmaker, transaction
from models.migrate import upgrade
from tests.fake_stripe import FakeStripe

AGENT_KEY = "test-agent-key"
STRIPE_KEY = "sk_test_reelcart_secret_key"
OTHER_AGENT_KEY = "other-agent-key"
API_VERSION = "2026-04-17"
US_ADDRESS = {"name": "Ada Buyer", "line_one": "1 Market St", "city": "San Francisco",
              "state": "CA", "country": "US", "postal_code": "94105"}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--backend", action="append", choices=["sqlite", "postgresql"],
                     help="Run only these database back ends (default: both)")


FIGURES = pytest.StashKey[list[str]]()  # lines tests report at the end of the run


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Figures tests measured (e.g. schemathesis: requests sent), after the results."""
    for line in terminalreporter.config.stash.get(FIGURES, []):
        terminalreporter.write_line(line)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        chosen = metafunc.config.getoption("backend") or ["sqlite", "postgresql"]
        metafunc.parametrize("backend", chosen, indirect=True, scope="session")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``@pytest.mark.backends("postgresql")``: the test exists only for those back ends (e.g.
    several worker processes, which SQLite's embedded one-process mode does not offer); the
    other variants are deselected, not skipped."""
    keep: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        marker = item.get_closest_marker("backends")
        callspec = getattr(item, "callspec", None)
        if marker is not None and callspec is not None \
                and callspec.params.get("backend") not in marker.args:
            dropped.append(item)
        else:
            keep.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


@pytest.fixture(scope="session")
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _postgres_admin_url() -> str | None:
    return os.environ.get("REELCART_TEST_POSTGRES_URL")


@pytest.fixture(scope="session")
def database_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A freshly migrated database per back end (migrations run, never create_all)."""
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'reelcart.db'}"
        upgrade(url)
        yield url
        return
    admin = _postgres_admin_url()
    if not admin:
        if os.environ.get("CI"):
            pytest.fail("REELCART_TEST_POSTGRES_URL is not set: PostgreSQL is required in CI")
        pytest.skip("PostgreSQL not configured (set REELCART_TEST_POSTGRES_URL)")
    name = f"reelcart_test_{uuid.uuid4().hex[:10]}"
    asyncio.run(_pg_admin(admin, f'CREATE DATABASE "{name}"'))
    url = make_url(admin).set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    yield url
    asyncio.run(_pg_admin(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _pg_admin(url: str, statement: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


def make_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url, "environment": "test",
        "agent_api_keys": [AGENT_KEY], "public_base_url": "https://shop.test",
        "run_migrations_on_start": False, "database_pool_size": 20,
        # Test receivers listen on loopback, which the outbound policy refuses by default.
        "outbound_allow_hosts": ["127.0.0.1"],
        # Dashboard passwords: the cheapest allowed scrypt cost keeps tests fast (production
        # refuses less than OWASP's 2^17; tests/test_dashboard_accounts.py covers that).
        "dashboard_scrypt_log2_n": 14,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


TEST_ITEMS = [
    ProductRecord(id="spec-items", title="Spec example items", variants=[
        VariantRecord(id="item_123", title="Vintage Denim Jacket", price_amount=300,
                      currency="usd", stock=1000),
        VariantRecord(id="item_3ds_001", title="Premium Leather Boots", price_amount=5000,
                      currency="usd", stock=1000),
    ]),
    ProductRecord(id="scarce", title="Scarce things", variants=[
        VariantRecord(id="last-unit", title="The Last Unit", price_amount=2000, currency="usd",
                      stock=1),
        VariantRecord(id="few-left", title="Few Left", price_amount=1000, currency="usd",
                      stock=5),
    ]),
    ProductRecord(id="eur-only", title="Euro item", variants=[
        VariantRecord(id="eur-item", title="Euro Item", price_amount=1000, currency="eur"),
    ]),
]


async def reset_database(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
            if conn.dialect.name == "postgresql":
                await conn.execute(text(f"TRUNCATE {', '.join(tables)} CASCADE"))
            else:
                for table in tables:
                    await conn.execute(text(f"DELETE FROM {table}"))
        async with transaction(create_sessionmaker(engine)) as db:
            records = demo_catalog() + TEST_ITEMS
            await upsert_products(db, records, ImportReport(), list(range(len(records))))
    finally:
        await engine.dispose()


def app_client(rt: Runtime, base_url: str = "http://test") -> httpx.AsyncClient:
    """An HTTP client calling the app built on ``rt`` in-process."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(rt)),
                             base_url=base_url)


@asynccontextmanager
async def sandbox_runtime(database_url: str, **overrides: Any) -> AsyncIterator[Runtime]:
    """A fresh database (test catalog) and a runtime with the development agent."""
    await reset_database(database_url)
    rt = build_runtime(make_settings(database_url, **overrides))
    await rt.ensure_dev_agent()
    try:
        yield rt
    finally:
        await rt.close()


@pytest.fixture
async def runtime(database_url: str) -> AsyncIterator[Runtime]:
    async with sandbox_runtime(database_url) as rt:
        yield rt


@pytest.fixture
async def merchant_runtime(database_url: str) -> AsyncIterator[Runtime]:
    """Like ``runtime``, with the merchant API open to ``Bearer merchant-key``."""
    async with sandbox_runtime(database_url, merchant_api_keys=["merchant-key"]) as rt:
        yield rt


@pytest.fixture
async def seller(merchant_runtime: Runtime) -> AsyncIterator[Agent]:
    """An agent client on ``merchant_runtime`` (its ``http`` also makes merchant calls)."""
    async with app_client(merchant_runtime) as client:
        yield Agent(client)


@dataclass
class Agent:
    """An HTTP client that speaks ACP: auth, version and a fresh idempotency key per POST."""

    http: httpx.AsyncClient
    key: str = AGENT_KEY

    def headers(self, idempotency_key: str | None = None, **extra: str) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.key}", "API-Version": API_VERSION}
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        headers.update(extra)
        return headers

    async def post(self, path: str, body: Any = None, *, key: str | None = None,
                   headers: dict[str, str] | None = None) -> httpx.Response:
        hdrs = self.headers(key or f"idem-{uuid.uuid4()}")
        hdrs.update(headers or {})
        if body is None:
            return await self.http.post(path, headers=hdrs)
        return await self.http.post(path, json=body, headers=hdrs)

    async def get(self, path: str) -> httpx.Response:
        return await self.http.get(path, headers=self.headers())

    async def create(self, **body: Any) -> httpx.Response:
        body.setdefault("currency", "usd")
        body.setdefault("capabilities", {"interventions": {"supported": ["3ds"]}})
        return await self.post("/checkout_sessions", body)

    async def ready_session(self, items: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        resp = await self.create(line_items=items or [{"id": "item_123"}],
                                 fulfillment_details={"address": US_ADDRESS})
        assert resp.status_code == 201, resp.text
        session = resp.json()
        assert session["status"] == "ready_for_payment", session["messages"]
        return session

    async def complete(self, session_id: str, token: str = "spt_test_success", *,
                       key: str | None = None, **extra: Any) -> httpx.Response:
        body = {"payment_data": {"handler_id": "card_tokenized", "instrument": {
            "type": "card", "credential": {"type": "spt", "token": token}}}, **extra}
        return await self.post(f"/checkout_sessions/{session_id}/complete", body, key=key)


@pytest.fixture
async def http(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(runtime) as client:
        yield client


@pytest.fixture
def agent(http: httpx.AsyncClient) -> Agent:
    return Agent(http)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def start_live_server(settings: Settings) -> LiveServer:
    """A real uvicorn server on loopback, in a thread with its own event loop."""
    port = free_port()
    config = uvicorn.Config(create_app(settings=settings), host="127.0.0.1", port=port,
                            log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("live server did not start")
        time.sleep(0.02)
    return LiveServer(f"http://127.0.0.1:{port}", server, thread)


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------- Stripe (faked over HTTP)


@pytest.fixture
def fake_stripe(httpx_mock: HTTPXMock) -> FakeStripe:
    fake = FakeStripe()
    httpx_mock.add_callback(fake.handle, url=re.compile(r"https://api\.stripe\.com/.*"),
                            is_reusable=True, is_optional=True)
    return fake


@pytest.fixture
async def stripe_runtime(database_url: str, fake_stripe: FakeStripe) -> AsyncIterator[Runtime]:
    async with sandbox_runtime(
            database_url, payments_provider="stripe", stripe_api_key=STRIPE_KEY,
            stripe_webhook_secret="whsec_test_secret", stripe_account_id="acct_test_1",
            merchant_api_keys=["merchant-key"]) as rt:
        yield rt


@pytest.fixture
async def shopper(stripe_runtime: Runtime) -> AsyncIterator[Agent]:
    async with app_client(stripe_runtime) as client:
        yield Agent(client)




@pytest.fixture
def live_dashboard(database_url: str) -> Iterator[Callable[..., LiveServer]]:
    """Starts a live server for the dashboard's browser tests on a fresh database with the
    dashboard user of ``tests.browser`` and the merchant key ``merchant-key``; settings
    overrides as keywords. Stopped after the test."""
    from tests.browser import seed_user

    started: list[LiveServer] = []

    def start(**overrides: Any) -> LiveServer:
        asyncio.run(seed_user(database_url))
        settings = {"merchant_api_keys": ["merchant-key"], "database_pool_size": 5,
                    "public_base_url": "http://127.0.0.1", **overrides}
        started.append(start_live_server(make_settings(database_url, **settings)))
        return started[-1]

    yield start
    for server in started:
        server.stop()
