"""Shopify forwarding (exactly once without Shopify idempotency) and Shopify webhooks."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from pytest_httpx import HTTPXMock
from sqlalchemy import func, select, update

from api.runtime import Runtime
from api.worker import run_once
from models import InboxEvent, OutboxMessage, SandboxRefund
from models.base import utc_now
from tests.acp_schema import assert_valid
from tests.conftest import Agent, app_client, sandbox_runtime
from tests.fake_shopify import ENDPOINT, SHOP, TOKEN, VERSION, FakeShopify, delivery
from tests.test_agent_webhooks import SECRET as AGENT_SECRET
from tests.test_agent_webhooks import Receiver, configure
from webhooks.signing import verify

MERCHANT = {"Authorization": "Bearer merchant-key"}
pytestmark = pytest.mark.httpx_mock(should_mock=lambda r: r.url.host != "127.0.0.1")


@pytest.fixture
def fake_shopify(httpx_mock: HTTPXMock) -> FakeShopify:
    fake = FakeShopify()
    httpx_mock.add_callback(fake, url=ENDPOINT, method="POST", is_reusable=True,
                            is_optional=True)
    return fake


@pytest.fixture
async def shop_runtime(database_url: str, fake_shopify: FakeShopify
                       ) -> AsyncIterator[Runtime]:
    async with sandbox_runtime(
            database_url, merchant_api_keys=["merchant-key"], shopify_shop=SHOP,
            shopify_access_token=TOKEN, shopify_api_version=VERSION,
            shopify_webhook_secret="shopify-client-secret") as rt:
        yield rt


@pytest.fixture
async def buyer(shop_runtime: Runtime) -> AsyncIterator[Agent]:
    async with app_client(shop_runtime) as client:
        yield Agent(client)


async def paid_order(buyer: Agent) -> dict:
    session = await buyer.ready_session([{"id": "item_123", "quantity": 2},
                                         {"id": "few-left"}])
    resp = await buyer.complete(session["id"], buyer={"email": "ada@example.com",
                                                      "first_name": "Ada"})
    assert resp.status_code == 200, resp.text
    return resp.json()["order"]


async def make_due(rt: Runtime) -> None:
    async with rt.sessionmaker() as db, db.begin():
        await db.execute(update(OutboxMessage).where(OutboxMessage.status == "pending")
                         .values(next_attempt_at=utc_now()))
        await db.execute(update(InboxEvent).where(InboxEvent.processed_at.is_(None))
                         .values(next_attempt_at=utc_now()))


async def detail(buyer: Agent, order_id: str) -> dict:
    return (await buyer.http.get(f"/orders/{order_id}", headers=MERCHANT)).json()


async def test_paid_order_is_created_once_with_the_right_fields(
        buyer: Agent, shop_runtime: Runtime, fake_shopify: FakeShopify, backend: str) -> None:
    order = await paid_order(buyer)
    await run_once(shop_runtime)
    await run_once(shop_runtime)
    assert fake_shopify.creates() == 1
    sent = fake_shopify.inputs[0]
    info = await detail(buyer, order["id"])
    assert sent["sourceIdentifier"] == order["id"]
    assert sent["financialStatus"] == "PAID"
    assert sent["transactions"][0]["authorizationCode"] == info["payment"]["reference"]
    assert sent["transactions"][0]["amountSet"]["shopMoney"]["amount"] == \
        f"{info['total_amount'] / 100:.2f}"
    lines = {li["sku"]: li for li in sent["lineItems"]}
    assert lines["item_123"]["quantity"] == 2
    assert lines["item_123"]["priceSet"]["shopMoney"] == {"amount": "3.00", "currencyCode": "USD"}
    assert lines["item_123"]["taxLines"][0]["rate"] == 0.0725
    assert sent["shippingLines"][0]["priceSet"]["shopMoney"]["amount"] == "5.99"
    assert sent["shippingAddress"]["provinceCode"] == "CA"
    assert {"key": "acp_order_id", "value": order["id"]} in sent["customAttributes"]
    assert info["forwarding"]["status"] == "forwarded"
    assert info["forwarding"]["shopify_order_name"] == "#5001"


async def test_lost_response_then_retry_creates_no_duplicate(
        buyer: Agent, shop_runtime: Runtime, fake_shopify: FakeShopify, backend: str) -> None:
    fake_shopify.faults = ["commit_then_timeout"]
    order = await paid_order(buyer)
    await run_once(shop_runtime)
    assert (await detail(buyer, order["id"]))["forwarding"]["status"] == "pending"
    await make_due(shop_runtime)
    await run_once(shop_runtime)
    assert fake_shopify.creates() == 1
    assert fake_shopify.calls == ["OrderCreate", "FindOrderBySourceIdentifier"]
    info = await detail(buyer, order["id"])
    assert info["forwarding"]["status"] == "forwarded"


@pytest.mark.parametrize("fault", ["throttled", "http429", "http503"])
async def test_throttling_and_outages_are_retried(buyer: Agent, shop_runtime: Runtime,
                                                  fake_shopify: FakeShopify, fault: str,
                                                  backend: str) -> None:
    fake_shopify.faults = [fault]
    order = await paid_order(buyer)
    await run_once(shop_runtime)
    async with shop_runtime.sessionmaker() as db:
        message = await db.scalar(select(OutboxMessage).where(
            OutboxMessage.topic == "shopify_order"))
    assert message.status == "pending"
    assert message.next_attempt_at > utc_now()  # backed off
    await make_due(shop_runtime)
    await run_once(shop_runtime)
    assert len(fake_shopify.orders) == 1  # one order in the store
    # The retry looked the order up before sending the mutation again.
    assert fake_shopify.calls == ["OrderCreate", "FindOrderBySourceIdentifier", "OrderCreate"]
    assert (await detail(buyer, order["id"]))["forwarding"]["status"] == "forwarded"


async def test_validation_error_puts_the_order_in_needs_attention(
        buyer: Agent, shop_runtime: Runtime, fake_shopify: FakeShopify, backend: str) -> None:
    fake_shopify.reject_with = "Variant is not available"
    order = await paid_order(buyer)
    await run_once(shop_runtime)
    await make_due(shop_runtime)
    await run_once(shop_runtime)
    assert fake_shopify.creates() == 1  # a rejection is final, not retried
    info = await detail(buyer, order["id"])
    assert info["forwarding"]["status"] == "needs_attention"
    assert "Variant is not available" in info["forwarding"]["attention_reason"]
    assert info["status"] == "manual_review"
    listed = (await buyer.http.get("/orders?status=manual_review", headers=MERCHANT)).json()
    assert [o["id"] for o in listed["data"]] == [order["id"]]
    # The merchant fixes the cause and retries: the order goes through, once.
    fake_shopify.reject_with = None
    resp = await buyer.http.post(f"/orders/{order['id']}/shopify/retry",
                                 headers={**MERCHANT, "Idempotency-Key": "retry-1"})
    assert resp.status_code == 202
    await run_once(shop_runtime)
    assert len(fake_shopify.orders) == 1
    info = await detail(buyer, order["id"])
    assert info["forwarding"]["status"] == "forwarded"
    assert info["status"] == "confirmed"


async def post(buyer: Agent, raw: bytes, headers: dict[str, str]) -> httpx.Response:
    return await buyer.http.post("/webhooks/shopify", content=raw, headers=headers)


async def forwarded_order(buyer: Agent, rt: Runtime) -> dict:
    order = await paid_order(buyer)
    await run_once(rt)
    return order


async def test_fulfillment_webhooks_apply_once_in_any_order(
        buyer: Agent, shop_runtime: Runtime, fake_shopify: FakeShopify, backend: str) -> None:
    order = await forwarded_order(buyer, shop_runtime)
    created = fake_shopify.fulfillment_payload(order["id"], skus=[("item_123", 2),
                                                                  ("few-left", 1)])
    delivered = fake_shopify.fulfillment_payload(
        order["id"], skus=[("item_123", 2), ("few-left", 1)], shipment_status="delivered",
        updated_at="2026-11-25T10:00:00Z")
    raw_upd, hdr_upd = delivery("fulfillments/update", delivered)
    raw_new, hdr_new = delivery("fulfillments/create", created)
    # The update (delivered) arrives first, twice; the create arrives late.
    for raw, headers in ((raw_upd, hdr_upd), (raw_upd, hdr_upd), (raw_new, hdr_new)):
        assert (await post(buyer, raw, headers)).status_code == 200
    await run_once(shop_runtime)
    info = await detail(buyer, order["id"])
    acp = info["acp_order"]
    assert_valid(acp, "Order")
    assert len(acp["fulfillments"]) == 1
    assert acp["fulfillments"][0]["status"] == "delivered"  # the stale create did not regress
    assert acp["fulfillments"][0]["tracking_number"] == "1Z999AA10123456784"
    assert acp["status"] == "completed"
    async with shop_runtime.read_sessionmaker() as db:
        stored = await db.scalar(select(func.count()).select_from(InboxEvent))
    assert stored == 2  # the duplicate delivery was not stored


async def test_bad_hmac_is_401_and_nothing_stored(buyer: Agent, shop_runtime: Runtime,
                                                  fake_shopify: FakeShopify,
                                                  backend: str) -> None:
    raw, headers = delivery("orders/cancelled", {"id": 1}, secret="wrong-secret")
    assert (await post(buyer, raw, headers)).status_code == 401
    raw, headers = delivery("orders/cancelled", {"id": 1})
    tampered = raw.replace(b'"id":1', b'"id":2')
    assert (await post(buyer, tampered, headers)).status_code == 401
    async with shop_runtime.read_sessionmaker() as db:
        assert await db.scalar(select(func.count()).select_from(InboxEvent)) == 0


async def test_shopify_refund_becomes_exactly_one_provider_refund(
        buyer: Agent, shop_runtime: Runtime, fake_shopify: FakeShopify, backend: str) -> None:
    order = await forwarded_order(buyer, shop_runtime)
    payload = fake_shopify.refund_payload(order["id"], "2.50")
    first = delivery("refunds/create", payload, webhook_id="wh-refund-1")
    replay = delivery("refunds/create", payload, webhook_id="wh-refund-1")
    redelivered = delivery("refunds/create", payload)  # new webhook id, same refund
    for raw, headers in (first, replay, redelivered):
        assert (await post(buyer, raw, headers)).status_code == 200
    await run_once(shop_runtime)
    async with shop_runtime.read_sessionmaker() as db:
        refunds = list(await db.scalars(select(SandboxRefund)))
    assert [r.amount for r in refunds] == [250]
    info = await detail(buyer, order["id"])
    assert info["refunded_amount"] == 250
    assert info["refunds"][0]["source"] == "shopify"


async def test_orders_that_are_not_ours_are_ignored(buyer: Agent, shop_runtime: Runtime,
                                                    fake_shopify: FakeShopify,
                                                    backend: str) -> None:
    raw, headers = delivery("fulfillments/create", {"id": 1, "order_id": 424242,
                                                    "status": "success"})
    assert (await post(buyer, raw, headers)).status_code == 200
    await run_once(shop_runtime)
    async with shop_runtime.read_sessionmaker() as db:
        event = await db.scalar(select(InboxEvent))
    assert event.processed_at is not None


async def test_full_flow_to_the_agent(buyer: Agent, shop_runtime: Runtime,
                                      fake_shopify: FakeShopify, backend: str) -> None:
    """create → complete (sandbox) → Shopify order → fulfillment webhook → the agent
    receives order_update with tracking."""
    from tests.conftest import free_port

    receiver = Receiver(free_port())
    receiver.start()
    try:
        await configure(buyer, f"http://127.0.0.1:{receiver.port}/order_events")
        order = await paid_order(buyer)
        await run_once(shop_runtime)
        assert fake_shopify.creates() == 1
        raw, headers = delivery("fulfillments/create", fake_shopify.fulfillment_payload(
            order["id"], skus=[("item_123", 2), ("few-left", 1)]))
        await post(buyer, raw, headers)
        while await run_once(shop_runtime):
            pass
    finally:
        receiver.stop()
    events = receiver.events()
    assert [e["type"] for e in events] == ["order_create", "order_update"]
    for raw_event in receiver.received:
        assert verify(AGENT_SECRET, raw_event["body"], raw_event["headers"]["Merchant-Signature"])
    shipped = events[-1]["data"]
    assert_valid(shipped, "Order")
    assert shipped["status"] == "shipped"
    assert shipped["fulfillments"][0]["tracking_number"] == "1Z999AA10123456784"
    assert shipped["fulfillments"][0]["carrier"] == "UPS"
