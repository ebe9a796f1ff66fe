"""The worker under faulty partners: no head-of-line blocking (concurrent delivery with a
per-destination limit, across worker processes), poison messages (absurd Retry-After),
dead letters visible and redeliverable, retention purge."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import func, select, update

from api.auth import create_agent_key
from api.dashboard.auth import create_user
from api.runtime import Runtime, build_runtime
from api.worker import run_forever, run_once
from idempotency import repository as idempotency_store
from models import DeliveryAttempt, InboxEvent, OutboxMessage
from models.base import utc_now
from tests.conftest import Agent, app_client, free_port, make_settings, sandbox_runtime
from tests.test_agent_webhooks import SECRET
from tests.test_dashboard import FAST, csrf_of, log_in
from webhooks import outbox

MERCHANT = {"Authorization": "Bearer merchant-key"}


@dataclass
class Endpoint:
    """A webhook receiver on loopback. ``hang``: each request waits (up to 10 s) until
    ``release`` is set, like an endpoint that takes 10 s to answer."""

    hang: bool = False
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"{}"
    port: int = field(default_factory=free_port)
    received: list[tuple[float, dict]] = field(default_factory=list)
    started: int = 0
    concurrent: int = 0
    max_concurrent: int = 0
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with endpoint.lock:
                    endpoint.started += 1
                    endpoint.concurrent += 1
                    endpoint.max_concurrent = max(endpoint.max_concurrent,
                                                  endpoint.concurrent)
                try:
                    if endpoint.hang:
                        endpoint.release.wait(10)
                    endpoint.received.append((time.monotonic(), json.loads(body)))
                    self.send_response(endpoint.status)
                    for name, value in endpoint.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(endpoint.body)))
                    self.end_headers()
                    self.wfile.write(endpoint.body)
                except OSError:
                    pass
                finally:
                    with endpoint.lock:
                        endpoint.concurrent -= 1

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.release.set()
        if self.server:
            self.server.shutdown()
            self.server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/order_events"


@pytest.fixture
def endpoints() -> Iterator[tuple[Endpoint, Endpoint]]:
    slow, fast = Endpoint(hang=True), Endpoint()
    slow.start()
    fast.start()
    yield slow, fast
    slow.stop()
    fast.stop()


async def _agents(rt: Runtime, slow: Endpoint, fast: Endpoint) -> tuple[str, str]:
    """The development agent listens on ``slow``; a second agent, with its own key, on
    ``fast``. Returns the second agent's key."""
    async with rt.sessionmaker() as db, db.begin():
        other, key = await create_agent_key(db, "other-agent")
        other.webhook_url, other.webhook_secret = fast.url, SECRET
        from models import Agent as AgentRow

        dev = await db.get(AgentRow, "agt_development")
        assert dev is not None
        dev.webhook_url, dev.webhook_secret = slow.url, SECRET
    return other.id, key


async def _order(agent: Agent) -> dict:
    session = await agent.ready_session([{"id": "item_123"}])
    resp = await agent.complete(session["id"])
    assert resp.status_code == 200, resp.text
    return dict(resp.json()["order"])


async def _until(condition, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def test_a_hanging_endpoint_does_not_delay_another_agent(
        database_url: str, endpoints: tuple[Endpoint, Endpoint], backend: str) -> None:
    slow, fast = endpoints
    async with sandbox_runtime(database_url, worker_poll_seconds=0.05,
                               outbox_per_destination=2) as rt:
        _, other_key = await _agents(rt, slow, fast)
        stop = asyncio.Event()
        worker = asyncio.create_task(run_forever(rt, stop))
        try:
            async with app_client(rt) as http:
                for _ in range(6):  # six orders to the endpoint that hangs
                    await _order(Agent(http))
                await _until(lambda: slow.started >= 2, 5, "the slow endpoint to be called")
                placed = time.monotonic()
                order = await _order(Agent(http, key=other_key))
                await _until(lambda: fast.received, 5, "the other agent's order_create")
            arrived, event = fast.received[0]
            assert event["type"] == "order_create"
            assert event["data"]["id"] == order["id"]
            assert arrived - placed < 5
            assert slow.max_concurrent <= 2  # its own slots only: per-destination limit
            assert slow.received == []
        finally:
            slow.release.set()
            stop.set()
            await worker
    assert slow.max_concurrent == 2


@pytest.mark.backends("postgresql")  # SQLite is the embedded, one-process mode (README)
async def test_several_workers_share_the_per_destination_limit(
        database_url: str, endpoints: tuple[Endpoint, Endpoint], backend: str) -> None:
    """Two worker "processes" (two runtimes, their own connection pools) on one database:
    together at most two deliveries in flight to the hanging endpoint, each message
    leased by one of them only, and every message delivered once."""
    slow, fast = endpoints
    async with sandbox_runtime(database_url, outbox_per_destination=2) as rt:
        await _agents(rt, slow, fast)
        async with app_client(rt) as http:
            orders = [await _order(Agent(http)) for _ in range(5)]
        second = build_runtime(make_settings(database_url, outbox_per_destination=2))
        try:
            await asyncio.gather(run_once(rt, wait=0), run_once(second, wait=0))
            await _until(lambda: slow.started >= 2, 5, "two deliveries")
            # Both workers again: the destination is at its limit, nothing more leased.
            await asyncio.gather(run_once(rt, wait=0), run_once(second, wait=0))
            assert rt.outbox.in_flight + second.outbox.in_flight == 2
            assert slow.started == 2
            slow.release.set()
            await asyncio.gather(rt.outbox.drain(), second.outbox.drain())
            for _ in range(5):
                await asyncio.gather(run_once(rt), run_once(second))
                await asyncio.gather(rt.outbox.drain(), second.outbox.drain())
        finally:
            await second.close()
    assert slow.max_concurrent == 2
    delivered = sorted(e["data"]["id"] for _, e in slow.received)
    assert delivered == sorted(o["id"] for o in orders)  # once each


async def test_absurd_retry_after_is_clamped_then_dead_lettered_and_redeliverable(
        database_url: str, endpoints: tuple[Endpoint, Endpoint], backend: str) -> None:
    _, fast = endpoints
    fast.status = 429
    fast.headers = {"Retry-After": "99999999999999999"}
    async with sandbox_runtime(database_url, merchant_api_keys=["merchant-key"],
                               outbox_max_attempts=3) as rt:
        async with rt.sessionmaker() as db, db.begin():
            await create_user(db, "ada", "correct horse battery", FAST)
        other_id, key = await _agents(rt, Endpoint(), fast)
        async with app_client(rt, "https://shop.test") as http:
            order = await _order(Agent(http, key=key))
            for attempt in range(3):
                assert await run_once(rt) == 1  # no OverflowError: a normal failed attempt
                async with rt.sessionmaker() as db:
                    row = await db.scalar(select(OutboxMessage))
                assert row is not None
                if attempt < 2:
                    assert row.status == "pending"
                    wait = row.next_attempt_at - utc_now()
                    assert timedelta(minutes=59) < wait <= timedelta(hours=1, seconds=5)
                    async with rt.sessionmaker() as db, db.begin():
                        await db.execute(update(OutboxMessage).values(
                            next_attempt_at=utc_now()))
            assert row.status == "failed"
            assert row.attempts == 3
            # Visible on the dashboard, and redeliverable from there.
            await log_in(http)
            health = await http.get("/dashboard/health")
            assert "Dead letters" in health.text
            assert order["id"] in health.text
            fast.status, fast.headers = 200, {}
            resp = await http.post(f"/dashboard/outbox/{row.id}/redeliver",
                                   data={"csrf_token": csrf_of(health.text)})
            assert resp.status_code == 303
            assert "Queued" in (await http.get(resp.headers["location"])).text
            assert await run_once(rt) == 1
            async with rt.sessionmaker() as db:
                row = await db.scalar(select(OutboxMessage))
            assert row is not None
            assert row.status == "delivered"
            assert [e["type"] for _, e in fast.received][-1] == "order_create"
            forged = await http.post(f"/dashboard/outbox/{row.id}/redeliver",
                                     data={"csrf_token": "wrong"})
            assert forged.status_code == 403
    assert other_id


async def test_delivery_deadline_frees_the_slot(database_url: str,
                                                endpoints: tuple[Endpoint, Endpoint],
                                                backend: str) -> None:
    slow, fast = endpoints
    async with sandbox_runtime(database_url, outbox_delivery_deadline_seconds=0.3) as rt:
        await _agents(rt, slow, fast)
        async with app_client(rt) as http:
            await _order(Agent(http))
        await run_once(rt)
        await rt.outbox.drain()
        async with rt.sessionmaker() as db:
            row = await db.scalar(select(OutboxMessage))
            attempt = await db.scalar(select(DeliveryAttempt))
        assert row is not None
        assert attempt is not None
        assert row.status == "pending"
        assert row.leased_until is None
        assert attempt.error == "no answer within 0.3 s"


async def test_retention_purge_runs_in_the_worker(database_url: str, backend: str) -> None:
    async with sandbox_runtime(database_url, outbox_retention_days=14,
                               inbox_retention_days=14) as rt:
        now = utc_now()
        old, recent = now - timedelta(days=15), now - timedelta(days=1)
        async with rt.sessionmaker() as db, db.begin():
            for name, status, at in (("old-ok", "delivered", old), ("new-ok", "delivered",
                                     recent), ("old-dead", "failed", old),
                                     ("old-pending", "pending", old)):
                message = await outbox.emit(db, topic="agent_webhook", key=name,
                                            event_type="order_update", payload="{}")
                message.status, message.created_at = status, at
                message.delivered_at = at if status == "delivered" else None
                message.next_attempt_at = now + timedelta(days=1)
                db.add(DeliveryAttempt(message_id=message.id, attempt=1, duration_ms=1,
                                       created_at=at))
            for name, received, processed in (("e-old", old, old), ("e-new", recent, recent),
                                              ("e-unprocessed", old, None)):
                db.add(InboxEvent(id=name, source="stripe", external_id=name, type="x",
                                  payload="{}", received_at=received, next_attempt_at=now
                                  + timedelta(days=1), attempts=0, processed_at=processed))
            for key, expires in (("expired", now - timedelta(hours=1)),
                                 ("live", now + timedelta(hours=23))):
                await idempotency_store.try_insert(
                    db, record_id=f"idem-{key}", principal="agt", path="/x", key=key,
                    request_hash="h", now=now - timedelta(hours=24), locked_until=now,
                    expires_at=expires, response=(200, "{}"))
        await run_once(rt)
        async with rt.sessionmaker() as db:
            keys = set(await db.scalars(select(OutboxMessage.key)))
            events = set(await db.scalars(select(InboxEvent.id)))
            attempts = await db.scalar(select(func.count()).select_from(DeliveryAttempt))
            idem = set(await db.scalars(select(idempotency_store.TABLE.c.key)))
        assert keys == {"new-ok", "old-dead", "old-pending"}
        assert attempts == 3
        assert events == {"e-new", "e-unprocessed"}
        assert idem == {"live"}



async def test_delivery_refuses_a_stored_internal_url_and_dead_letters_it(
        database_url: str, endpoints: tuple[Endpoint, Endpoint], backend: str) -> None:
    """A webhook URL stored before the policy existed (or written behind its back) is
    refused when delivering: nothing reaches it, and the message is a dead letter at once
    (a refused target does not become acceptable by retrying)."""
    _, fast = endpoints
    fast.status = 400
    async with sandbox_runtime(database_url, outbound_allow_hosts=[]) as rt:
        _, key = await _agents(rt, Endpoint(), fast)
        async with app_client(rt) as http:
            await _order(Agent(http, key=key))
        assert await run_once(rt) == 1
        async with rt.sessionmaker() as db:
            row = await db.scalar(select(OutboxMessage))
            attempt = await db.scalar(select(DeliveryAttempt))
        assert row is not None
        assert attempt is not None
        assert row.status == "failed"
        assert "outbound URL refused" in (attempt.error or "")
        assert fast.started == 0


async def test_only_a_short_sanitised_excerpt_of_an_answer_is_kept(
        database_url: str, endpoints: tuple[Endpoint, Endpoint], backend: str) -> None:
    _, fast = endpoints
    fast.status = 400
    fast.body = (b"<html><body><h1>Bad request</h1>\x1b[2J\xe2\x80\xae" + b"A" * 100_000
                 + b"</body></html>")
    async with sandbox_runtime(database_url) as rt:
        _, key = await _agents(rt, Endpoint(), fast)
        async with app_client(rt) as http:
            await _order(Agent(http, key=key))
        await run_once(rt)
        async with rt.sessionmaker() as db:
            attempt = await db.scalar(select(DeliveryAttempt))
        assert attempt is not None
        assert attempt.status_code == 400
        excerpt = attempt.response_excerpt or ""
        assert excerpt.startswith("Bad request AAAA")
        assert len(excerpt) <= 200
        assert not {"<", "\x1b", "\u202e"} & set(excerpt)
