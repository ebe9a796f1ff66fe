"""ACP order webhooks to agents, against a real HTTP receiver on loopback."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select, update

from api.runtime import Runtime, build_runtime
from api.worker import run_once
from models import OutboxMessage
from models.base import utc_now
from tests.acp_schema import assert_valid
from tests.conftest import Agent, free_port, make_settings
from webhooks.signing import verify

SECRET = "agent-webhook-secret-0123456789"
MERCHANT = {"Authorization": "Bearer merchant-key"}


@dataclass
class Receiver:
    port: int
    received: list[dict] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None
    status: int = 200

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append({"body": body, "headers": dict(self.headers)})
                payload = json.dumps({"received": True}).encode()
                self.send_response(receiver.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def events(self) -> list[dict]:
        return [json.loads(r["body"]) for r in self.received]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(free_port())
    yield r
    r.stop()


async def configure(agent: Agent, url: str) -> None:
    agents = (await agent.http.get("/agents", headers=MERCHANT)).json()["data"]
    agent_id = next(a["id"] for a in agents if a["name"] == "development")
    resp = await agent.http.post(f"/agents/{agent_id}/webhook", json={
        "url": url, "secret": SECRET}, headers={**MERCHANT, "Idempotency-Key": url})
    assert resp.status_code == 200, resp.text


async def drain(rt: Runtime) -> None:
    """Run the worker until nothing is due (like several worker passes)."""
    while await run_once(rt):
        pass


async def make_due(rt: Runtime) -> None:
    async with rt.sessionmaker() as db, db.begin():
        await db.execute(update(OutboxMessage).where(OutboxMessage.status == "pending")
                         .values(next_attempt_at=utc_now()))


async def test_order_events_are_signed_and_valid(seller: Agent, merchant_runtime: Runtime,
                                                 receiver: Receiver, backend: str) -> None:
    receiver.start()
    await configure(seller, f"http://127.0.0.1:{receiver.port}/agentic_checkout/webhooks/"
                            "order_events")
    session = await seller.ready_session([{"id": "item_123", "quantity": 2}])
    order = (await seller.complete(session["id"])).json()["order"]
    shipped = await seller.http.post(f"/orders/{order['id']}/fulfillments", json={
        "carrier": "UPS", "tracking_number": "1Z999", "tracking_url": "https://ups.test/1Z999"},
        headers={**MERCHANT, "Idempotency-Key": "ship-1"})
    assert shipped.status_code == 201, shipped.text
    await drain(merchant_runtime)
    events = receiver.events()
    assert [e["type"] for e in events] == ["order_create", "order_update"]
    for raw in receiver.received:
        assert verify(SECRET, raw["body"], raw["headers"]["Merchant-Signature"])
        assert not verify("wrong-secret", raw["body"], raw["headers"]["Merchant-Signature"])
        assert raw["headers"]["Request-Id"]
    for event in events:
        assert_valid(event["data"], "Order")
        assert event["data"]["type"] == "order"
    update_ = events[1]["data"]
    assert update_["status"] == "shipped"
    assert update_["fulfillments"][0]["tracking_number"] == "1Z999"
    assert update_["fulfillments"][0]["carrier"] == "UPS"
    assert update_["line_items"][0]["quantity"]["fulfilled"] == 2


async def test_receiver_down_then_up_gets_everything_in_order_across_restarts(
        seller: Agent, merchant_runtime: Runtime, receiver: Receiver, database_url: str,
        backend: str) -> None:
    await configure(seller, f"http://127.0.0.1:{receiver.port}/hook")  # nothing listening
    orders = []
    for _ in range(2):
        session = await seller.ready_session([{"id": "item_123"}])
        order = (await seller.complete(session["id"])).json()["order"]
        orders.append(order["id"])
        await seller.http.post(f"/orders/{order['id']}/refunds", json={"amount": 100},
                               headers={**MERCHANT, "Idempotency-Key": f"rf-{order['id']}"})
        await seller.http.post(f"/orders/{order['id']}/fulfillments", json={},
                               headers={**MERCHANT, "Idempotency-Key": f"sh-{order['id']}"})
    await drain(merchant_runtime)  # every first attempt fails: connection refused
    async with merchant_runtime.sessionmaker() as db:
        rows = list(await db.scalars(select(OutboxMessage).order_by(OutboxMessage.seq)))
    assert {r.status for r in rows} == {"pending"}
    # Per-order ordering: only the head of each order's queue was attempted.
    assert sorted(r.attempts for r in rows) == [0, 0, 0, 0, 1, 1]
    # The worker process "restarts": a brand-new runtime on the same database.
    await merchant_runtime.close()
    restarted = build_runtime(make_settings(database_url, merchant_api_keys=["merchant-key"]))
    try:
        receiver.start()
        for _ in range(4):  # each pass delivers the next event of each order
            await make_due(restarted)
            await drain(restarted)
    finally:
        await restarted.close()
    per_order: dict[str, list[str]] = {}
    for event in receiver.events():
        per_order.setdefault(event["data"]["id"], []).append(event["type"])
    assert per_order == {oid: ["order_create", "order_update", "order_update"]
                         for oid in orders}
    # The refund arrives before the shipment for each order, as it happened.
    first_order = [e["data"] for e in receiver.events() if e["data"]["id"] == orders[0]]
    assert first_order[1]["adjustments"][0]["type"] == "refund"
    assert first_order[1]["fulfillments"] == []
    assert first_order[2]["fulfillments"][0]["status"] == "shipped"


async def test_failed_attempts_are_logged_and_redelivery_on_demand(
        seller: Agent, merchant_runtime: Runtime, receiver: Receiver, backend: str) -> None:
    receiver.status = 503
    receiver.start()
    await configure(seller, f"http://127.0.0.1:{receiver.port}/hook")
    session = await seller.ready_session([{"id": "item_123"}])
    order = (await seller.complete(session["id"])).json()["order"]
    await drain(merchant_runtime)
    log = (await seller.http.get(f"/orders/{order['id']}/webhook-deliveries",
                                 headers=MERCHANT)).json()["data"]
    assert log[0]["status_code"] == 503
    assert log[0]["status"] == "pending"
    receiver.status = 200
    resp = await seller.http.post(f"/orders/{order['id']}/webhooks/redeliver",
                                  headers={**MERCHANT, "Idempotency-Key": "again"})
    assert resp.status_code == 202
    await make_due(merchant_runtime)
    await drain(merchant_runtime)
    assert [e["type"] for e in receiver.events()][-2:] == ["order_create", "order_update"]


@pytest.mark.parametrize(("path", "body"), [
    ("webhook", {"url": "https://agent.example/hooks", "secret": SECRET}),
    ("feed", {"url": "https://agent.example/feed-api"}),
])
async def test_configuring_an_unknown_agent_is_a_clear_404(seller: Agent, path: str,
                                                          body: dict) -> None:
    resp = await seller.http.post(f"/agents/agt_missing/{path}", json=body,
                                  headers={**MERCHANT, "Idempotency-Key": f"missing-{path}"})
    assert resp.status_code == 404, resp.text
    error = resp.json()
    assert error["code"] == "agent_not_found"
    assert "agt_missing" in error["message"]
