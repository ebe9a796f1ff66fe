"""Three videos, thirty sandbox sales, refunds and a dispute: the per-video report and the
payout reconciliation tie out to the cent."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from api.runtime import Runtime
from models import Order, SandboxCharge
from tests.conftest import US_ADDRESS, Agent

MERCHANT = {"Authorization": "Bearer merchant-key"}
VIDEOS = ("vid-a", "vid-b", "vid-c")


@pytest.fixture
async def shop(seller: Agent, merchant_runtime: Runtime) -> tuple[Agent, Runtime]:
    for n, video in enumerate(VIDEOS):
        await seller.http.post("/videos", json={
            "id": video, "generator": ("sora-2", "veo-3")[n % 2], "campaign": "launch",
            "published_url": f"https://tiktok.test/{video}",
            "products": [{"product_id": "spec-items"}]},
            headers={**MERCHANT, "Idempotency-Key": video})
    return seller, merchant_runtime


async def test_thirty_sales_three_videos_report_and_payouts_to_the_cent(shop,
                                                                        backend: str) -> None:
    agent, rt = shop
    expected_by_video: dict[str | None, int] = {}
    orders: list[tuple[str, int, str | None]] = []
    for n in range(30):
        video = VIDEOS[n % 3] if n % 10 != 9 else None  # every tenth sale: no video
        body = {"currency": "usd", "capabilities": {},
                "line_items": [{"id": "item_123", "quantity": 1 + n % 4}],
                "fulfillment_details": {"address": US_ADDRESS}}
        if video:
            body["affiliate_attribution"] = {"provider": "impact.com",
                                             "publisher_id": "pub_9", "creative_id": video}
        session = (await agent.post("/checkout_sessions", body)).json()
        done = (await agent.complete(session["id"])).json()
        assert done["status"] == "completed", done
        order_id = done["order"]["id"]
        total = {t["type"]: t["amount"] for t in done["order"]["totals"]}["total"]
        orders.append((order_id, total, video))
        expected_by_video[video] = expected_by_video.get(video, 0) + total
    # Refunds: two partial, one full; one dispute.
    refunds = [(orders[0][0], 137), (orders[1][0], orders[1][1]), (orders[4][0], 1)]
    for index, (order_id, amount) in enumerate(refunds):
        resp = await agent.http.post(f"/orders/{order_id}/refunds", json={"amount": amount},
                                     headers={**MERCHANT, "Idempotency-Key": f"rf{index}"})
        assert resp.status_code == 201, resp.text
    disputed_id, disputed_total, disputed_video = orders[7]
    resp = await agent.http.post(f"/orders/{disputed_id}/sandbox-dispute", json={},
                                 headers={**MERCHANT, "Idempotency-Key": "dispute"})
    assert resp.status_code == 201, resp.text
    assert resp.json()["payment_status"] == "disputed"
    video_of = {order_id: video for order_id, _, video in orders}
    for order_id, amount in refunds:
        expected_by_video[video_of[order_id]] -= amount
    expected_by_video[disputed_video] -= disputed_total
    # Per-video report (last touch = the only touch here) equals our independent sums.
    report = (await agent.http.get("/finance/revenue?group_by=video&model=last_touch",
                                   headers=MERCHANT)).json()
    assert {r["key"]: r["gross"] for r in report["rows"]} == expected_by_video
    # Linear / position-based agree on totals and each video's share of each sale is exact.
    for model in ("linear", "position_based", "first_touch"):
        other = (await agent.http.get(f"/finance/revenue?group_by=video&model={model}",
                                      headers=MERCHANT)).json()
        assert other["totals"]["gross"] == sum(expected_by_video.values())
    # Payout reconciliation: today's activity arrives tomorrow.
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    recon = (await agent.http.get(
        "/finance/reconciliation", params={"from": today.isoformat(),
                                           "to": (today + timedelta(days=2)).isoformat()},
        headers=MERCHANT)).json()
    assert len(recon["payouts"]) == 1
    payout = recon["payouts"][0]
    async with rt.read_sessionmaker() as db:
        fees = sum(c.fee_amount for c in await db.scalars(select(SandboxCharge)))
        gross = sum(o.total_amount for o in await db.scalars(select(Order)))
    refunded = sum(amount for _, amount in refunds)
    assert payout["charges"] == gross
    assert payout["refunds"] == -refunded
    assert payout["disputes"] == -disputed_total
    assert payout["fees"] == fees + 1500  # processing fees + the dispute fee
    assert payout["settled"] == gross - refunded - disputed_total - fees - 1500
    assert payout["difference"] == 0
    assert payout["status"] == "matched"
    assert {i["status"] for i in payout["items"]} == {"matched"}
    assert recon["unmatched_ours"] == []
    csv_text = (await agent.http.get(
        "/finance/reconciliation", params={"from": today.isoformat(), "format": "csv",
                                           "to": (today + timedelta(days=2)).isoformat()},
        headers=MERCHANT)).text
    assert csv_text.count("\n") == len(payout["items"]) + 1


async def test_a_payout_is_pending_until_it_arrives_then_paid(shop, backend: str) -> None:
    """Stripe's payout lifecycle: ``pending`` (or ``in_transit``) until ``arrival_date``,
    then ``paid``. Today's sales arrive at the next midnight, so their payout is pending;
    yesterday's arrived at today's midnight and is paid. Both still reconcile."""
    agent, rt = shop
    for _ in range(2):
        session = await agent.ready_session()
        done = (await agent.complete(session["id"])).json()
        assert done["status"] == "completed", done
    async with rt.sessionmaker() as db, db.begin():  # one sale happened yesterday
        first = await db.scalar(select(SandboxCharge).order_by(SandboxCharge.created_at))
        first.created_at -= timedelta(days=1)
        order = await db.scalar(select(Order).where(Order.payment_reference == first.id))
        order.created_at -= timedelta(days=1)
    now = datetime.now(UTC)
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    recon = (await agent.http.get(
        "/finance/reconciliation", params={"from": (today - timedelta(days=1)).isoformat(),
                                           "to": (today + timedelta(days=2)).isoformat()},
        headers=MERCHANT)).json()
    arrived, coming = recon["payouts"]
    assert (arrived["arrival"], arrived["payout_status"]) == (today.isoformat(), "paid")
    assert (coming["arrival"], coming["payout_status"]) == (
        (today + timedelta(days=1)).isoformat(), "pending")
    assert [p["status"] for p in recon["payouts"]] == ["matched", "matched"]
    assert recon["unmatched_ours"] == []
    payouts, _ = await rt.provider.settlement(today - timedelta(days=1),
                                              today + timedelta(days=2))
    assert sorted(p.status for p in payouts) == ["paid", "pending"]
    assert all(p.status == "paid" for p in payouts if p.arrival <= now)
    # The CSV export carries each row's payout status too, beside its payout id.
    csv_text = (await agent.http.get(
        "/finance/reconciliation", params={"from": (today - timedelta(days=1)).isoformat(),
                                           "to": (today + timedelta(days=2)).isoformat(),
                                           "format": "csv"}, headers=MERCHANT)).text
    rows = list(csv.DictReader(io.StringIO(csv_text)))
    assert csv_text.splitlines()[0].startswith("payout_id,payout_status,")
    assert [(r["payout_id"], r["payout_status"]) for r in rows] == [
        (p["payout_id"], p["payout_status"]) for p in recon["payouts"] for _ in p["items"]]
    assert {r["payout_status"] for r in rows} == {"paid", "pending"}
