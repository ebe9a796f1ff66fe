"""``reelcart demo``'s history: played through the real services (checkout over ACP REST in
several versions and over MCP, the sandbox PSP, fulfilment, refunds, disputes, commission
payouts) under an injected clock, deterministic, idempotent, and reconciling."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from api.cli.server import _load_demo
from api.demo.loader import load_history
from api.demo.story import CONTRACTS, DAYS, PAYEES, VIDEOS, plan
from api.runtime import Runtime, build_runtime
from commissions import service as commission_service
from creatives import experiments
from links import repository as link_repository
from links.funnel import funnel
from models import (
    Agent,
    AttributionTouch,
    CheckoutSession,
    CommissionContract,
    CommissionEntry,
    Dispute,
    Experiment,
    Fulfillment,
    LedgerEntry,
    LinkTouch,
    Order,
    Payee,
    PayoutRun,
    Refund,
    ShoppableLink,
    Statement,
    Video,
)
from models.base import clock_override, utc_now
from models.video import VideoViewCount
from payments.reconciliation import reconcile
from tests.conftest import make_settings, reset_database

Json = dict[str, Any]


@pytest.fixture(scope="module")
async def demo(database_url: str) -> AsyncIterator[tuple[Runtime, str]]:
    """One demo load per backend, shared by the tests below (it is the expensive part)."""
    await reset_database(database_url)
    summary = await _load_demo(make_settings(database_url))
    runtime = build_runtime(make_settings(database_url))
    try:
        yield runtime, summary
    finally:
        await runtime.close()


async def _count(runtime: Runtime, model: Any, *where: Any) -> int:
    async with runtime.sessionmaker() as db:
        return int(await db.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def test_the_story_is_deterministic() -> None:
    now = datetime(2026, 12, 2, 15, 30, tzinfo=UTC)
    first, second = plan(now), plan(now)
    assert first.orders == second.orders
    assert first.views == second.views
    assert 250 <= len(first.orders) <= 450
    assert plan(now, seed=1).orders != first.orders
    later = plan(now + timedelta(hours=3))  # the same day: more of today, the same past
    assert later.orders[:len(first.orders) - 5] == first.orders[:-5]
    assert all(o.at < now for o in first.orders)


def test_the_clock_override_reaches_column_defaults() -> None:
    then = datetime(2026, 9, 1, 12, tzinfo=UTC)
    with clock_override(lambda: then):
        assert utc_now() == then
    assert utc_now() > then + timedelta(days=30)


async def test_orders_from_several_agents_and_protocols_over_ninety_days(
        demo: tuple[Runtime, str]) -> None:
    runtime, summary = demo
    for channel in ("ACP 2025-09-29", "ACP 2025-12-12", "ACP 2026-01-30", "ACP 2026-04-17",
                    "MCP 2026-04-17"):
        assert channel in summary, summary
    orders = await _count(runtime, Order)
    assert 250 <= orders <= 450
    assert await _count(runtime, CheckoutSession) > orders  # abandoned checkouts too
    async with runtime.sessionmaker() as db:
        per_agent = dict((await db.execute(
            select(Agent.name, func.count(Order.id)).join(Order, Order.agent_id == Agent.id)
            .group_by(Agent.name))).all())
        first, last = (await db.execute(select(func.min(Order.created_at),
                                               func.max(Order.created_at)))).one()
    assert set(per_agent) == {"ChatGPT", "Microsoft Copilot", "Perplexity", "Claude (MCP)"}
    assert min(per_agent.values()) >= 20
    midnight = datetime.combine(datetime.now(UTC).date(), datetime.min.time(), UTC)
    assert midnight - timedelta(days=DAYS) <= first < midnight - timedelta(days=DAYS - 5)
    assert midnight - timedelta(days=1) < last < datetime.now(UTC)  # the injected clock


async def test_refunds_disputes_and_shipments(demo: tuple[Runtime, str]) -> None:
    runtime, _ = demo
    assert await _count(runtime, Order, Order.payment_status == "refunded") >= 3
    assert await _count(runtime, Order, Order.payment_status == "partially_refunded") >= 3
    assert await _count(runtime, Refund, Refund.status == "succeeded") >= 6
    async with runtime.sessionmaker() as db:
        disputes = {d.status: d for d in await db.scalars(select(Dispute))}
        lost = await db.get(Order, disputes["lost"].order_id)
        won = await db.get(Order, disputes["won"].order_id)
    assert set(disputes) == {"won", "lost", "needs_response"}
    assert disputes["won"].funds_reinstated
    assert not disputes["lost"].funds_reinstated
    assert lost is not None
    assert lost.payment_status == "dispute_lost"
    assert won is not None
    assert won.payment_status == "paid"
    delivered = await _count(runtime, Fulfillment, Fulfillment.status == "delivered",
                             Fulfillment.tracking_number.is_not(None))
    assert delivered >= 150
    assert await _count(runtime, Fulfillment, Fulfillment.status == "shipped") >= 1  # in transit
    assert await _count(runtime, Order, Order.status == "confirmed") >= 1  # still to ship


async def test_videos_touches_and_attribution(demo: tuple[Runtime, str]) -> None:
    runtime, _ = demo
    async with runtime.sessionmaker() as db:
        videos = {v.id: v for v in await db.scalars(select(Video))}
        generators = set(await db.scalars(select(Video.generator)))
        credited = set(await db.scalars(select(LedgerEntry.video_id).where(
            LedgerEntry.kind == "sale", LedgerEntry.video_id.is_not(None))))
        touches = list(await db.scalars(select(AttributionTouch)))
        views = await db.scalar(select(func.sum(VideoViewCount.views)))
    assert len(videos) == len(VIDEOS) == 21
    assert {"sora-2", "veo-3.1", "runway-gen-4", "kling-2.1"} <= generators
    chains = [v for v in videos.values() if v.parent_video_id
              and videos[v.parent_video_id].parent_video_id]
    assert chains  # a remix of a remix
    assert len(credited) >= 18
    by_session: dict[str, set[str | None]] = {}
    for t in touches:
        by_session.setdefault(t.checkout_session_id, set()).add(t.video_id)
    assert any(len(v) > 1 for v in by_session.values())  # first and last touch differ
    assert {t.touchpoint for t in touches} >= {"first", "last", "web"}
    assert int(views or 0) > 100_000


async def test_daily_sandbox_payouts_reconcile(demo: tuple[Runtime, str]) -> None:
    runtime, _ = demo
    end = datetime.now(UTC) + timedelta(days=2)
    async with runtime.sessionmaker() as db:
        report = await reconcile(db, runtime.provider, end - timedelta(days=DAYS + 3), end)
    payouts = report["payouts"]
    assert len(payouts) >= DAYS - 5
    assert [p for p in payouts if p["status"] != "matched"] == []
    categories = {item["category"] for p in payouts for item in p["items"]}
    assert categories == {"charge", "refund", "dispute", "dispute_reversal"}
    assert report["unmatched_ours"] == []
    async with runtime.sessionmaker() as db:  # the dashboard's window starts mid-day
        recent = await reconcile(db, runtime.provider, datetime.now(UTC) - timedelta(days=30),
                                 end)
    assert recent["unmatched_ours"] == []
    assert len(recent["payouts"]) >= 29


async def test_creators_are_paid_monthly(demo: tuple[Runtime, str]) -> None:
    runtime, _ = demo
    assert await _count(runtime, Payee) == len(PAYEES)
    assert await _count(runtime, CommissionContract) == len(CONTRACTS)
    assert await _count(runtime, PayoutRun) >= 2
    assert await _count(runtime, CommissionEntry, CommissionEntry.kind == "refund") >= 1
    async with runtime.sessionmaker() as db:
        statements = list(await db.scalars(select(Statement)))
        states = [(await commission_service.get_statement(db, s.id)) for s in statements]
    assert {s["status"] for s in states} >= {"paid", "open"}
    assert sum(1 for s in states if s["lines"]) >= 8


async def test_shoppable_links_clicks_and_the_funnel(demo: tuple[Runtime, str]) -> None:
    runtime, summary = demo
    assert "21 shoppable links" in summary, summary
    today = datetime.now(UTC).date()
    async with runtime.sessionmaker() as db:
        links = await link_repository.list_links(db, video_id=None, product_id=None,
                                                 channel=None, limit=100, offset=0)
        rows = await funnel(db, start=today - timedelta(days=DAYS), end=today + timedelta(1),
                            model="last_touch")
        joined = int(await db.scalar(select(func.count()).select_from(AttributionTouch).where(
            AttributionTouch.click_id.is_not(None))) or 0)
    assert {link.video_id for link in links} == {v.id for v in VIDEOS}
    # Clicks, then checkouts through them, then orders: per video, in that order.
    flowing = [r for r in rows if r.views > r.clicks > r.checkouts >= r.completed > 0
               and r.orders > 0 and r.net_revenue.get("usd", 0) > 0]
    assert len(flowing) >= 10, [(r.video_id, r.views, r.clicks, r.checkouts) for r in rows]
    assert sum(r.clicks for r in rows) > 500
    assert joined >= 40  # buyers' checkouts carried their click (ACP token, web rc_click)
    async with runtime.sessionmaker() as db:
        touches = list(await db.scalars(select(LinkTouch)))
    assert {t.kind for t in touches} == {"click"}
    assert all(t.touched_at.replace(tzinfo=UTC) < datetime.now(UTC) - timedelta(minutes=4)
               for t in touches)  # stamped with the story's clock, not the loading time
    assert len({t.visitor for t in touches}) > 0.9 * len(touches)  # people, not one browser


async def test_experiments_report_views_and_orders_per_variant(
        demo: tuple[Runtime, str]) -> None:
    runtime, _ = demo
    async with runtime.sessionmaker() as db:
        listed = await experiments.list_experiments(db, product_id=None, limit=10, offset=0)
        reports = [await experiments.report(db, e["id"]) for e in listed["data"]]
    assert {tuple(r["video_ids"]) for r in reports} == {
        ("rainy-denim", "denim-noir"), ("summer-shades", "summer-shades-remix")}
    for r in reports:
        for variant in r["variants"]:
            assert variant["views"] > 1000, r
            assert variant["orders"] > 0, r
            assert isinstance(variant["revenue"]["amount"], int)
            assert variant["revenue"]["amount"] > 0
        assert r["verdict"] in {"winner", "inconclusive"}  # enough data for a verdict


async def test_loading_again_changes_nothing(demo: tuple[Runtime, str]) -> None:
    runtime, _ = demo
    tables = (Order, CheckoutSession, ShoppableLink, LinkTouch, Experiment, AttributionTouch)
    before = [await _count(runtime, t) for t in tables]
    assert (await load_history(runtime)).startswith("demo history already loaded")
    assert [await _count(runtime, t) for t in tables] == before
