"""Etsy: catalog in (first and incremental), stock both ways and the last unit, Etsy
orders in (webhook and polling), tracking back once, videos once per change, 429s,
tokens. Etsy is faked at the HTTP layer (tests/fake_etsy.py)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from cryptography.fernet import Fernet
from pytest_httpx import HTTPXMock
from sqlalchemy import func, select, update

from api.runtime import Runtime
from attribution.ledger import LedgerPolicy
from etsy.client import SCOPES, authorization_url, pkce_pair
from etsy.errors import EtsyUnavailable
from etsy.hooks import ETSY_STOCK, ETSY_TRACKING
from etsy.service import EtsyIntegration
from etsy.wiring import build_etsy
from models import (
    Agent,
    EtsyConflict,
    EtsyConnection,
    EtsyListingLink,
    EtsyReceipt,
    InboxEvent,
    LedgerEntry,
    Order,
    OutboxMessage,
    Product,
    Variant,
    Video,
    VideoProduct,
)
from models.base import utc_now
from tests.conftest import Agent as AgentClient
from tests.conftest import app_client, sandbox_runtime
from tests.fake_etsy import (
    API_PATTERN,
    KEYSTRING,
    SHARED_SECRET,
    SHOP_ID,
    VIDEO_HOST,
    WEBHOOK_SECRET,
    FakeEtsy,
    order_paid_delivery,
)
from webhooks import inbox

MERCHANT = {"Authorization": "Bearer merchant-key"}
pytestmark = pytest.mark.httpx_mock(should_mock=lambda r: r.url.host != "127.0.0.1")
TOKEN_KEY = Fernet.generate_key().decode()
ETSY_SETTINGS = {
    "etsy_keystring": KEYSTRING, "etsy_shared_secret": SHARED_SECRET,
    "etsy_shop_id": str(SHOP_ID), "etsy_token_key": TOKEN_KEY,
    "etsy_webhook_secret": WEBHOOK_SECRET, "merchant_api_keys": ["merchant-key"]}
ADDRESS = {"name": "Ada", "line_one": "1 Market St", "city": "San Francisco", "state": "CA",
           "country": "US", "postal_code": "94105"}


@pytest.fixture
def fake_etsy(httpx_mock: HTTPXMock) -> FakeEtsy:
    fake = FakeEtsy()
    httpx_mock.add_callback(fake, url=API_PATTERN, is_reusable=True, is_optional=True)
    httpx_mock.add_callback(
        lambda request: httpx.Response(200, content=b"MP4:" + request.url.path.encode(),
                                       headers={"content-type": "video/mp4"}),
        url=re.compile(re.escape(VIDEO_HOST) + ".*"), is_reusable=True, is_optional=True)
    fake.add_listing(1001, "Hand-thrown mug", [{"sku": "MUG-1", "price": 2500, "quantity": 1}])
    fake.add_listing(1002, "Linen scarf", [
        {"sku": "SCARF-RED", "price": 3000, "quantity": 5, "values": [(200, 11, "Color", "Red")]},
        {"sku": "SCARF-BLUE", "price": 3200, "quantity": 3,
         "values": [(200, 12, "Color", "Blue")]}], images=2)
    fake.add_listing(1003, "Risograph print", [{"sku": "", "price": 1250, "quantity": 10}])
    return fake


@pytest.fixture
async def etsy_rt(database_url: str, fake_etsy: FakeEtsy) -> AsyncIterator[Runtime]:
    async with sandbox_runtime(database_url, **ETSY_SETTINGS) as rt:
        assert rt.etsy is not None
        await rt.etsy.tokens.store(fake_etsy.issue_tokens())
        yield rt


@pytest.fixture
async def buyer(etsy_rt: Runtime) -> AsyncIterator[AgentClient]:
    async with app_client(etsy_rt) as client:
        yield AgentClient(client)


def integration(rt: Runtime) -> EtsyIntegration:
    assert rt.etsy is not None
    return rt.etsy


async def scalar(rt: Runtime, stmt: object) -> object:
    async with rt.sessionmaker() as db:
        return await db.scalar(stmt)  # type: ignore[call-overload]


async def stock(rt: Runtime, variant_id: str) -> int | None:
    return await scalar(rt, select(Variant.stock).where(Variant.id == variant_id))  # type: ignore[return-value]


async def make_due(rt: Runtime) -> None:
    async with rt.sessionmaker() as db, db.begin():
        await db.execute(update(OutboxMessage).where(OutboxMessage.status == "pending")
                         .values(next_attempt_at=utc_now()))
        await db.execute(update(InboxEvent).where(InboxEvent.processed_at.is_(None))
                         .values(next_attempt_at=utc_now()))


async def deliver(rt: Runtime) -> int:
    """One outbox pass, waiting for its deliveries to end."""
    ended = await rt.outbox.run_pass(wait=30)
    await rt.outbox.drain()
    return ended


async def process_inbox(rt: Runtime) -> int:
    return await inbox.process_due(rt.sessionmaker, rt.inbox_handlers)


async def agent_buys(buyer: AgentClient, item: str, quantity: int = 1) -> httpx.Response:
    resp = await buyer.create(line_items=[{"id": item, "quantity": quantity}],
                              fulfillment_details={"address": ADDRESS})
    assert resp.status_code == 201, resp.text
    session = resp.json()
    if session["status"] != "ready_for_payment":
        return resp
    return await buyer.complete(session["id"])


async def etsy_orders(rt: Runtime) -> list[Order]:
    async with rt.sessionmaker() as db:
        return list(await db.scalars(select(Order).where(Order.payment_provider == "etsy")
                                     .order_by(Order.created_at)))


# ---------------------------------------------------------------------- catalog in

async def test_first_sync_imports_listings_with_their_etsy_ids(
        etsy_rt: Runtime, fake_etsy: FakeEtsy, backend: str) -> None:
    etsy = integration(etsy_rt)
    etsy.page_size = 2  # three listings: two pages
    report = await etsy.sync_listings()
    assert (report.catalog.created, report.pages, report.incremental) == (3, 2, False)
    assert fake_etsy.count("getListingsByShop") == 2
    async with etsy_rt.sessionmaker() as db:
        mug = await db.get(Variant, "etsy-1001")
        red = await db.get(Variant, "etsy-1002-200-11")
        blue = await db.get(Variant, "etsy-1002-200-12")
        scarf = await db.get(Product, "etsy-1002")
        links = {k.variant_id: k for k in await db.scalars(select(EtsyListingLink))}
    assert mug is not None
    assert red is not None
    assert blue is not None
    assert scarf is not None
    assert (mug.price_amount, mug.currency, mug.stock, mug.sku) == (2500, "usd", 1, "MUG-1")
    assert (red.price_amount, red.stock, red.sku) == (3000, 5, "SCARF-RED")
    assert (blue.price_amount, blue.stock) == (3200, 3)
    assert blue.variant_options == [{"name": "Color", "value": "Blue"}]
    assert scarf.url == "https://www.etsy.com/listing/1002/x"
    assert len(scarf.media) == 2
    inventory = fake_etsy.inventories[1002]["products"]
    assert links["etsy-1002-200-12"].listing_id == "1002"
    assert links["etsy-1002-200-12"].etsy_product_id == str(inventory[1]["product_id"])
    assert links["etsy-1002-200-12"].offering_id == str(
        inventory[1]["offerings"][0]["offering_id"])
    assert set(links) == {"etsy-1001", "etsy-1002-200-11", "etsy-1002-200-12", "etsy-1003"}


async def test_incremental_sync_reads_only_what_changed_and_keeps_our_stock(
        etsy_rt: Runtime, fake_etsy: FakeEtsy, backend: str) -> None:
    etsy = integration(etsy_rt)
    etsy.page_size = 2
    await etsy.sync_listings()
    calls = fake_etsy.count("getListingsByShop")
    async with etsy_rt.sessionmaker() as db, db.begin():  # an agent sold 3 prints meanwhile
        await db.execute(update(Variant).where(Variant.id == "etsy-1003").values(stock=7))
    fake_etsy.touch(1002, title="Linen scarf, hand-woven")
    fake_etsy.touch(1003, description="Two-colour risograph.")
    report = await etsy.sync_listings()
    assert report.incremental
    assert report.listings_seen == 2
    assert (report.catalog.created, report.catalog.updated) == (0, 2)
    assert fake_etsy.count("getListingsByShop") == calls + 2  # stops at the mark
    async with etsy_rt.sessionmaker() as db:
        scarf = await db.get(Product, "etsy-1002")
        assert scarf is not None
        assert scarf.title == "Linen scarf, hand-woven"
    assert await stock(etsy_rt, "etsy-1003") == 7  # Etsy's 10 does not overwrite ours
    again = await etsy.sync_listings()  # only the listing at the mark is read again
    assert (again.listings_seen, again.catalog.unchanged, again.catalog.updated) == (1, 1, 0)


# ---------------------------------------------------------------------- stock out

async def test_agent_sale_decrements_the_etsy_listing_through_the_outbox(
        etsy_rt: Runtime, buyer: AgentClient, fake_etsy: FakeEtsy, backend: str) -> None:
    await integration(etsy_rt).sync_listings()
    resp = await agent_buys(buyer, "etsy-1002-200-11", 2)
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "completed"
    async with etsy_rt.sessionmaker() as db:  # written with the order, before any call
        queued = list(await db.scalars(select(OutboxMessage).where(
            OutboxMessage.topic == ETSY_STOCK)))
    assert [(m.key, m.status) for m in queued] == [("1002", "pending")]
    assert fake_etsy.count("updateListingInventory") == 0
    assert await deliver(etsy_rt) >= 1
    assert fake_etsy.quantity(1002, "SCARF-RED") == 3
    assert fake_etsy.quantity(1002, "SCARF-BLUE") == 3  # the other product is kept
    listing_id, body = fake_etsy.puts[-1]
    assert listing_id == 1002
    assert [p["sku"] for p in body["products"]] == ["SCARF-RED", "SCARF-BLUE"]
    assert str(body["products"][0]["offerings"][0]["price"]) == "30.00"  # exact decimal
    assert body["products"][0]["property_values"][0]["value_ids"] == [11]
    async with etsy_rt.sessionmaker() as db:  # Etsy issued new product ids: we follow
        link = await db.get(EtsyListingLink, "etsy-1002-200-11")
    assert link is not None
    assert link.etsy_product_id == str(fake_etsy.inventories[1002]["products"][0]["product_id"])
    assert link.last_pushed_quantity == 3


# ---------------------------------------------------------------------- Etsy orders in

async def test_paid_etsy_order_by_webhook_becomes_an_etsy_order_and_takes_our_stock(
        etsy_rt: Runtime, buyer: AgentClient, fake_etsy: FakeEtsy, backend: str) -> None:
    await integration(etsy_rt).sync_listings()
    receipt_id = fake_etsy.sell(1002, 1, "SCARF-BLUE")
    raw, headers = order_paid_delivery(receipt_id)
    first = await buyer.http.post("/webhooks/etsy", content=raw, headers=headers)
    again = await buyer.http.post("/webhooks/etsy", content=raw, headers=headers)
    assert first.status_code == 200
    assert first.json() == {"received": True, "duplicate": False}
    assert again.json()["duplicate"] is True
    assert await process_inbox(etsy_rt) == 1
    orders = await etsy_orders(etsy_rt)
    assert len(orders) == 1
    order = orders[0]
    assert (order.total_amount, order.currency, order.status) == (3800, "usd", "confirmed")
    assert order.line_items[0]["item"]["id"] == "etsy-1002-200-12"
    assert await stock(etsy_rt, "etsy-1002-200-12") == 2
    async with etsy_rt.sessionmaker() as db:
        agent = await db.get(Agent, order.agent_id)
        receipt = await db.get(EtsyReceipt, str(receipt_id))
    assert agent is not None
    assert agent.name == "etsy"
    assert receipt is not None
    assert receipt.order_id == order.id
    listed = await buyer.http.get("/orders", headers=MERCHANT)
    assert order.id in listed.text
    finance = await buyer.http.get("/finance/revenue?group_by=agent", headers=MERCHANT)
    assert finance.status_code == 200
    assert fake_etsy.count("updateListingInventory") == 0  # nothing charged, nothing pushed
    refund = await buyer.http.post(f"/orders/{order.id}/refunds", json={"amount": 100},
                                   headers={**MERCHANT, "Idempotency-Key": "rf-etsy"})
    assert refund.status_code == 400, refund.text
    assert refund.json()["code"] == "refund_on_marketplace"
    detail = await dashboard_page(etsy_rt, f"/dashboard/orders/{order.id}")
    assert "etsy" in detail
    assert order.order_number in await dashboard_page(etsy_rt, "/dashboard/orders", new_user=False)


async def test_webhook_signature_is_checked_on_the_raw_body(
        etsy_rt: Runtime, buyer: AgentClient, fake_etsy: FakeEtsy, backend: str) -> None:
    receipt_id = fake_etsy.sell(1003)
    raw, headers = order_paid_delivery(receipt_id)
    tampered = raw.replace(b"order.paid", b"order.paid ")
    assert (await buyer.http.post("/webhooks/etsy", content=tampered, headers=headers)
            ).status_code == 401
    _, wrong = order_paid_delivery(receipt_id, secret="whsec_" + "QUJD" * 8)
    assert (await buyer.http.post("/webhooks/etsy", content=raw, headers=wrong)
            ).status_code == 401
    stale_raw, stale = order_paid_delivery(receipt_id, timestamp=1_000_000_000)
    assert (await buyer.http.post("/webhooks/etsy", content=stale_raw, headers=stale)
            ).status_code == 401
    async with etsy_rt.sessionmaker() as db:
        assert await db.scalar(select(func.count()).select_from(InboxEvent)) == 0


async def test_polling_takes_each_receipt_once_whatever_sees_it_first(
        etsy_rt: Runtime, buyer: AgentClient, fake_etsy: FakeEtsy, backend: str) -> None:
    etsy = integration(etsy_rt)
    await etsy.sync_listings()
    first = fake_etsy.sell(1003, 2)
    fake_etsy.sell(1002, 1, "SCARF-RED")
    assert await etsy.poll_receipts() == 2
    assert await etsy.poll_receipts() == 0
    raw, headers = order_paid_delivery(first)  # the webhook arrives late
    await buyer.http.post("/webhooks/etsy", content=raw, headers=headers)
    await process_inbox(etsy_rt)
    assert len(await etsy_orders(etsy_rt)) == 2
    assert await stock(etsy_rt, "etsy-1003") == 8
    assert await stock(etsy_rt, "etsy-1002-200-11") == 4


async def test_the_worker_polls_receipts_on_its_schedule(
        etsy_rt: Runtime, fake_etsy: FakeEtsy, backend: str) -> None:
    from api.worker import run_once

    await integration(etsy_rt).sync_listings()
    fake_etsy.sell(1003)
    await run_once(etsy_rt)
    assert len(await etsy_orders(etsy_rt)) == 1
    polls = fake_etsy.count("getShopReceipts")
    assert await integration(etsy_rt).tick(timedelta(minutes=5)) == 0  # not due yet
    assert fake_etsy.count("getShopReceipts") == polls


async def test_etsy_sale_after_a_shoppable_link_click_is_credited_to_the_video(
        etsy_rt: Runtime, buyer: AgentClient, fake_etsy: FakeEtsy, backend: str) -> None:
    etsy = integration(etsy_rt)
    await etsy.sync_listings()
    await add_video(etsy_rt, "vid_clicked", "etsy-1003", 0)
    click = await buyer.http.get("/go/etsy/1003?rc_video=vid_clicked&utm_campaign=spring")
    assert click.status_code == 302
    assert click.headers["location"] == "https://www.etsy.com/listing/1003/x"
    assert (await buyer.http.get("/go/etsy/999999?rc_video=v")).status_code == 404
    fake_etsy.clock = int(utc_now().timestamp()) + 60  # the sale follows the click
    fake_etsy.sell(1003, 2)
    fake_etsy.sell(1001)  # no click on this listing: no credit
    await etsy.poll_receipts()
    credited, plain = await etsy_orders(etsy_rt)
    async with etsy_rt.sessionmaker() as db:
        rows = list(await db.scalars(select(LedgerEntry).where(
            LedgerEntry.order_id == credited.id, LedgerEntry.model == "last_touch")))
        other = list(await db.scalars(select(LedgerEntry).where(
            LedgerEntry.order_id == plain.id, LedgerEntry.video_id.is_not(None))))
    assert [(r.video_id, r.gross) for r in rows] == [("vid_clicked", 3100)]
    assert other == []


# ---------------------------------------------------------------------- the last unit

async def test_last_unit_etsy_sale_first_then_the_agent_finds_it_gone(
        etsy_rt: Runtime, buyer: AgentClient, fake_etsy: FakeEtsy, backend: str) -> None:
    await integration(etsy_rt).sync_listings()
    raw, headers = order_paid_delivery(fake_etsy.sell(1001))
    await buyer.http.post("/webhooks/etsy", content=raw, headers=headers)
    await process_inbox(etsy_rt)
    assert await stock(etsy_rt, "etsy-1001") == 0
    resp = await agent_buys(buyer, "etsy-1001")
    session = resp.json()
    assert session["status"] != "completed"
    assert any(m.get("code") == "out_of_stock" for m in session["messages"]), session
    async with etsy_rt.sessionmaker() as db:
        assert await db.scalar(select(func.count()).select_from(Order)) == 1  # Etsy's only
        assert await db.scalar(select(func.count()).select_from(EtsyConflict)) == 0


async def test_last_unit_agent_first_then_etsy_oversells_a_visible_conflict(
        etsy_rt: Runtime, buyer: AgentClient, fake_etsy: FakeEtsy, backend: str) -> None:
    await integration(etsy_rt).sync_listings()
    resp = await agent_buys(buyer, "etsy-1001")
    assert resp.json()["status"] == "completed"
    receipt_id = fake_etsy.sell(1001)  # before our push reached Etsy
    raw, headers = order_paid_delivery(receipt_id)
    await buyer.http.post("/webhooks/etsy", content=raw, headers=headers)
    await process_inbox(etsy_rt)
    assert await stock(etsy_rt, "etsy-1001") == 0  # never below zero
    [order] = await etsy_orders(etsy_rt)
    assert order.status == "manual_review"
    assert "Oversold" in (order.attention_reason or "")
    async with etsy_rt.sessionmaker() as db:
        conflicts = list(await db.scalars(select(EtsyConflict)))
    assert [(c.kind, c.variant_id, c.receipt_id) for c in conflicts] == [
        ("oversold", "etsy-1001", str(receipt_id))]
    await deliver(etsy_rt)  # the push still sets Etsy to our count
    assert fake_etsy.quantity(1001) == 0
    page = await dashboard_page(etsy_rt, "/dashboard/health")
    assert "oversold" in page
    assert "etsy-1001" in page


async def test_last_unit_concurrent_agent_and_etsy_exactly_one_takes_it(
        etsy_rt: Runtime, buyer: AgentClient, fake_etsy: FakeEtsy, backend: str) -> None:
    etsy = integration(etsy_rt)
    await etsy.sync_listings()
    resp = await buyer.create(line_items=[{"id": "etsy-1001"}],
                              fulfillment_details={"address": ADDRESS})
    session = resp.json()
    receipt = fake_etsy.receipts[fake_etsy.sell(1001)]
    agent_resp, etsy_order = await asyncio.gather(buyer.complete(session["id"]),
                                                  etsy.ingest_receipt(receipt))
    assert etsy_order is not None
    agent_won = agent_resp.json()["status"] == "completed"
    async with etsy_rt.sessionmaker() as db:
        conflicts = await db.scalar(select(func.count()).select_from(EtsyConflict))
    assert await stock(etsy_rt, "etsy-1001") == 0
    assert conflicts == (1 if agent_won else 0)  # a unit sold twice is never silent


# ---------------------------------------------------------------------- tracking back

async def test_shipping_an_etsy_order_posts_its_tracking_once(
        etsy_rt: Runtime, buyer: AgentClient, fake_etsy: FakeEtsy, backend: str) -> None:
    etsy = integration(etsy_rt)
    await etsy.sync_listings()
    receipt_id = fake_etsy.sell(1003)
    await etsy.poll_receipts()
    [order] = await etsy_orders(etsy_rt)
    shipped = await buyer.http.post(f"/orders/{order.id}/fulfillments", headers={
        **MERCHANT, "Idempotency-Key": "ship-1"}, json={
        "carrier": "USPS", "tracking_number": "9400111899223"})
    assert shipped.status_code in (200, 201), shipped.text
    fake_etsy.faults["createReceiptShipment"] = ["commit_then_500"]  # posted, answer lost
    await deliver(etsy_rt)
    async with etsy_rt.sessionmaker() as db:
        message = await db.scalar(select(OutboxMessage).where(
            OutboxMessage.topic == ETSY_TRACKING))
        assert message is not None
        assert message.status == "pending"
    await make_due(etsy_rt)
    await deliver(etsy_rt)
    await make_due(etsy_rt)
    await deliver(etsy_rt)
    assert fake_etsy.shipments_posted == [(receipt_id, "9400111899223")]
    assert fake_etsy.count("createReceiptShipment") == 1
    assert fake_etsy.receipts[receipt_id]["shipments"][0]["carrier_name"] == "USPS"
    async with etsy_rt.sessionmaker() as db:
        row = await db.get(EtsyReceipt, str(receipt_id))
        message = await db.scalar(select(OutboxMessage).where(
            OutboxMessage.topic == ETSY_TRACKING))
    assert row is not None
    assert row.tracking_posted_at is not None
    assert message is not None
    assert message.status == "delivered"


async def test_shipping_an_agent_order_sends_nothing_to_etsy(
        etsy_rt: Runtime, buyer: AgentClient, fake_etsy: FakeEtsy, backend: str) -> None:
    await integration(etsy_rt).sync_listings()
    order = (await agent_buys(buyer, "etsy-1003")).json()["order"]
    await buyer.http.post(f"/orders/{order['id']}/fulfillments", headers={
        **MERCHANT, "Idempotency-Key": "ship-2"}, json={"tracking_number": "1Z999"})
    async with etsy_rt.sessionmaker() as db:
        assert await db.scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.topic == ETSY_TRACKING)) == 0


# ---------------------------------------------------------------------- videos out

async def add_video(rt: Runtime, video_id: str, product_id: str, minutes: int) -> None:
    async with rt.sessionmaker() as db, db.begin():
        db.add(Video(id=video_id, title=video_id, generator="sora-2",
                     source_url=f"{VIDEO_HOST}/{video_id}.mp4",
                     published_at=utc_now() + timedelta(minutes=minutes)))
        await db.flush()
        db.add(VideoProduct(video_id=video_id, product_id=product_id))


async def test_featured_video_is_uploaded_once_and_again_when_it_changes(
        etsy_rt: Runtime, fake_etsy: FakeEtsy, backend: str) -> None:
    etsy = integration(etsy_rt)
    await etsy.sync_listings()
    await add_video(etsy_rt, "vid_first", "etsy-1001", 0)
    assert await etsy.push_videos() == 1
    assert await etsy.push_videos() == 0  # unchanged: nothing sent
    assert [(lid, b"/vid_first.mp4" in body) for lid, body in fake_etsy.uploads] == [
        (1001, True)]
    await add_video(etsy_rt, "vid_second", "etsy-1001", 5)  # newer: now featured
    assert await etsy.push_videos() == 1
    assert await etsy.push_videos() == 0
    assert len(fake_etsy.uploads) == 2
    assert b"/vid_second.mp4" in fake_etsy.uploads[1][1]
    assert fake_etsy.count("deleteListingVideo") == 1
    assert len(fake_etsy.videos[1001]) == 1  # the listing shows the new one only


async def test_video_files_are_fetched_through_the_outbound_policy(
        etsy_rt: Runtime, fake_etsy: FakeEtsy, backend: str) -> None:
    etsy = integration(etsy_rt)
    await etsy.sync_listings()
    async with etsy_rt.sessionmaker() as db, db.begin():
        db.add(Video(id="vid_internal", source_url="https://169.254.169.254/latest/v.mp4",
                     published_at=utc_now()))
        await db.flush()
        db.add(VideoProduct(video_id="vid_internal", product_id="etsy-1003"))
    assert await etsy.push_videos() == 0
    assert fake_etsy.uploads == []
    async with etsy_rt.sessionmaker() as db:
        row = await db.get(EtsyConnection, "default")
    assert row is not None
    assert "refused" in (row.last_error or "")


# ---------------------------------------------------------------------- rate limits

async def test_429_is_retried_after_retry_after_and_recorded(
        etsy_rt: Runtime, fake_etsy: FakeEtsy, backend: str) -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    etsy = build_etsy(etsy_rt.settings, etsy_rt.sessionmaker, etsy_rt.http, LedgerPolicy(),
                      sleep=sleep)
    assert etsy is not None
    fake_etsy.throttle(2, retry_after="1")
    report = await etsy.sync_listings()
    assert report.catalog.created == 3
    assert slept == [1.0, 1.0]
    async with etsy_rt.sessionmaker() as db:
        row = await db.get(EtsyConnection, "default")
    assert row is not None
    assert row.rate_limited_count == 2
    assert row.limit_per_day == 10000
    assert row.remaining_today is not None


async def test_daily_quota_429_is_not_slept_but_rescheduled(
        etsy_rt: Runtime, buyer: AgentClient, fake_etsy: FakeEtsy, backend: str) -> None:
    etsy = integration(etsy_rt)
    await etsy.sync_listings()
    fake_etsy.throttle(1, retry_after="3600")
    with pytest.raises(EtsyUnavailable) as caught:
        await etsy.poll_receipts()
    assert caught.value.rate_limited
    assert caught.value.retry_after == 3600
    await agent_buys(buyer, "etsy-1003")
    fake_etsy.throttle(1, retry_after="3600")
    before = utc_now()
    await deliver(etsy_rt)
    async with etsy_rt.sessionmaker() as db:
        message = await db.scalar(select(OutboxMessage).where(
            OutboxMessage.topic == ETSY_STOCK))
        row = await db.get(EtsyConnection, "default")
    assert message is not None
    assert message.status == "pending"
    assert message.next_attempt_at >= before + timedelta(minutes=59)
    assert row is not None
    assert "429" in (row.last_error or "")


# ---------------------------------------------------------------------- OAuth

async def test_expired_token_is_refreshed_and_stored_encrypted(
        etsy_rt: Runtime, fake_etsy: FakeEtsy, backend: str) -> None:
    etsy = integration(etsy_rt)
    first = fake_etsy.issue_tokens()
    await etsy.tokens.store({**first, "expires_in": 0})
    await etsy.sync_listings()
    grants = [r["grant_type"] for r in fake_etsy.token_requests]
    assert grants == ["refresh_token"]
    assert fake_etsy.token_requests[0]["refresh_token"] == first["refresh_token"]
    async with etsy_rt.sessionmaker() as db:
        row = await db.get(EtsyConnection, "default")
    assert row is not None
    assert row.access_token_enc
    assert row.refresh_token_enc
    assert first["refresh_token"] not in row.refresh_token_enc  # encrypted at rest
    assert "77001." not in row.access_token_enc
    fresh = etsy.tokens.decrypt(row.access_token_enc)
    assert fresh in fake_etsy.access_tokens
    assert fresh != first["access_token"]
    fake_etsy.access_tokens.discard(fresh)  # revoked early: a 401 refreshes once
    await etsy.poll_receipts()
    assert [r["grant_type"] for r in fake_etsy.token_requests] == ["refresh_token"] * 2


async def test_authorisation_code_with_pkce(
        etsy_rt: Runtime, fake_etsy: FakeEtsy, backend: str) -> None:
    etsy = integration(etsy_rt)
    verifier, challenge = pkce_pair()
    url = httpx.URL(authorization_url(keystring=KEYSTRING, redirect_uri="https://m.test/cb",
                                      state="st4te", challenge=challenge))
    assert url.host == "www.etsy.com"
    assert url.path == "/oauth/connect"
    assert url.params["scope"] == SCOPES == \
        "listings_r listings_w transactions_r transactions_w shops_r"
    assert url.params["code_challenge_method"] == "S256"
    fake_etsy.challenges["the-code"] = challenge
    tokens = await etsy.tokens.oauth.exchange_code(code="the-code", verifier=verifier,
                                                   redirect_uri="https://m.test/cb")
    assert tokens["access_token"] in fake_etsy.access_tokens
    fake_etsy.challenges["other-code"] = challenge
    with pytest.raises(Exception, match="invalid_grant"):
        await etsy.tokens.oauth.exchange_code(code="other-code", verifier="wrong" * 10,
                                              redirect_uri="https://m.test/cb")


async def dashboard_page(rt: Runtime, path: str, *, new_user: bool = True) -> str:
    from api.dashboard.auth import create_user
    from tests.test_dashboard import FAST, submit_login

    if new_user:
        async with rt.sessionmaker() as db, db.begin():
            await create_user(db, "etsy-viewer", "a-long-password-1", FAST)
    async with app_client(rt, "https://shop.test") as client:
        signed_in = await submit_login(client, "etsy-viewer", "a-long-password-1")
        assert signed_in.status_code == 303
        page = await client.get(path)
        assert page.status_code == 200, page.text[:300]
        return page.text
