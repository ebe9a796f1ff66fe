"""The per-video funnel (issue 19): views from every source → clicks → checkouts created →
completed → net revenue, rates, revenue per 1,000 views and cancellation reasons; JSON,
CSV and the dashboard page in a real browser (desktop and 390 px)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import func, select

from api.runtime import Runtime
from models import LedgerEntry, Order, VideoViewCount
from models.base import utc_now
from tests.browser import dashboard_browser
from tests.conftest import AGENT_KEY, US_ADDRESS, Agent, LiveServer
from tests.test_links import BROWSER, MERCHANT, make_link

PAY = {"payment_data": {"handler_id": "card_tokenized", "instrument": {
    "type": "card", "credential": {"type": "spt", "token": "spt_test_success"}}}}


async def add_views(rt: Runtime, video_id: str, source: str, views: int, days_ago: int = 0
                    ) -> None:
    """Platform-reported views (the creative engineer's import writes these rows)."""
    async with rt.sessionmaker() as db, db.begin():
        db.add(VideoViewCount(video_id=video_id, source=source, views=views,
                              day=(utc_now() - timedelta(days=days_ago)).date()))


async def test_funnel_counts_every_step(seller: Agent, merchant_runtime: Runtime,
                                        backend: str) -> None:
    agent, rt = seller, merchant_runtime
    for video_id, product in (("vid-a", "denim-jacket"), ("vid-b", "linen-shirt")):
        await agent.http.post("/videos", json={"id": video_id, "title": video_id.upper(),
                                               "products": [{"product_id": product}]},
                              headers={**MERCHANT, "Idempotency-Key": f"v-{video_id}"})
    link = await make_link(agent, video_id="vid-a", product_id="denim-jacket",
                           channel="tiktok")
    code = link["code"]
    await add_views(rt, "vid-a", "tiktok", 1000)
    await add_views(rt, "vid-a", "tiktok", 5000, days_ago=40)  # outside the period
    await add_views(rt, "vid-b", "youtube", 200)
    for _ in range(3):  # pixel impressions on the merchant's page
        await agent.http.get(f"/v/{code}/i.gif", headers=BROWSER)
    for _ in range(4):  # clicks from four visitors
        await agent.http.get(f"/v/{code}", headers=BROWSER)
    await agent.http.get(f"/v/{code}", headers={"User-Agent": "Googlebot/2.1"})  # not counted
    await rt.touch_buffer.flush()
    attribution = {"provider": "reelcart", "token": code}
    # Two checkouts through the link: one completed, one cancelled with a reason; and one
    # more cancelled without a reason.
    sessions = []
    for _ in range(3):
        resp = await agent.create(line_items=[{"id": "item_123", "quantity": 2}],
                                  fulfillment_details={"address": US_ADDRESS},
                                  affiliate_attribution=attribution)
        sessions.append(resp.json()["id"])
    assert (await agent.post(f"/checkout_sessions/{sessions[0]}/complete", PAY)
            ).status_code == 200
    await agent.post(f"/checkout_sessions/{sessions[1]}/cancel",
                     {"intent_trace": {"reason_code": "price_sensitivity"}})
    await agent.post(f"/checkout_sessions/{sessions[2]}/cancel")
    async with rt.read_sessionmaker() as db:
        order = (await db.scalars(select(Order).where(
            Order.checkout_session_id == sessions[0]))).one()
        net = int((await db.execute(select(func.sum(LedgerEntry.net)).where(
            LedgerEntry.order_id == order.id, LedgerEntry.model == "last_touch"))).scalar_one())
    assert 0 < net <= order.total_amount

    resp = await agent.http.get("/finance/funnel", headers=MERCHANT)
    assert resp.status_code == 200, resp.text
    report = resp.json()
    rows = {r["video_id"]: r for r in report["rows"]}
    a = rows["vid-a"]
    assert a["views"] == 1003
    assert a["views_by_source"] == {"pixel": 3, "tiktok": 1000}
    assert (a["clicks"], a["checkouts_created"], a["checkouts_completed"]) == (4, 3, 1)
    assert a["cancellation_reasons"] == {"price_sensitivity": 1, "unspecified": 1}
    [(currency, revenue)] = a["net_revenue"].items()
    assert (currency, revenue) == ("usd", net)  # ties out to the ledger
    assert a["click_through_rate"] == round(4 / 1003, 4)
    assert a["checkout_rate"] == 0.75
    assert a["completion_rate"] == round(1 / 3, 4)
    assert a["revenue_per_1000_views"] == {"usd": revenue * 1000 // 1003}
    b = rows["vid-b"]
    assert (b["views"], b["clicks"], b["checkouts_created"], b["net_revenue"]) == (
        200, 0, 0, {})
    assert b["checkout_rate"] is None  # nothing to divide by
    assert report["totals"]["views"] == 1203
    # One video, and the CSV of the same rows.
    one = (await agent.http.get("/finance/funnel?video_id=vid-b", headers=MERCHANT)).json()
    assert [r["video_id"] for r in one["rows"]] == ["vid-b"]
    text = (await agent.http.get("/finance/funnel?format=csv", headers=MERCHANT)).text
    parsed = {r["video_id"]: r for r in csv.DictReader(io.StringIO(text))}
    assert (parsed["vid-a"]["views"], parsed["vid-a"]["net_revenue"]) == ("1003", str(revenue))
    assert parsed["vid-a"]["cancellation_reasons"] == "price_sensitivity=1;unspecified=1"
    bad = await agent.http.get("/finance/funnel?from=2026-05-01&to=2026-04-01",
                               headers=MERCHANT)
    assert bad.status_code == 400
    assert bad.json()["param"] == "$.from"
    assert (await agent.http.get("/finance/funnel")).status_code == 401


async def test_which_touches_tie_a_checkout_to_a_video(seller: Agent, merchant_runtime: Runtime,
                                                       backend: str) -> None:
    """The rule (README "Funnel"): a session is a checkout of every video one of its touches
    names — a claim's link code or click id (as ``token`` or ``creative_id``) names the
    link's video, a ``creative_id`` (or source URL) naming a known video names it — once
    per video however many touches; a claim naming no known video or link counts for none."""
    agent, rt = seller, merchant_runtime
    for video_id, product in (("vid-a", "denim-jacket"), ("vid-b", "linen-shirt")):
        await agent.http.post("/videos", json={"id": video_id, "title": video_id.upper(),
                                               "products": [{"product_id": product}]},
                              headers={**MERCHANT, "Idempotency-Key": f"v-{video_id}"})
    code = (await make_link(agent, video_id="vid-a", product_id="denim-jacket",
                            channel="tiktok"))["code"]
    location = (await agent.http.get(f"/v/{code}", headers=BROWSER)).headers["location"]
    click_id = parse_qs(urlsplit(location).query)["rc_click"][0]
    await rt.touch_buffer.flush()

    async def session(first: dict, last: dict | None = None) -> str:
        resp = await agent.create(line_items=[{"id": "item_123"}],
                                  fulfillment_details={"address": US_ADDRESS},
                                  affiliate_attribution=first)
        assert resp.status_code == 201, resp.text
        if last is not None:
            done = await agent.complete(resp.json()["id"], affiliate_attribution=last)
            assert done.status_code == 200, done.text
        return str(resp.json()["id"])

    def claim(creative_id: str) -> dict:
        return {"provider": "impact.com", "publisher_id": "pub_9", "creative_id": creative_id}

    await session(claim(code))  # the link's code
    await session({"provider": "reelcart", "token": click_id})  # its click
    await session(claim("vid-a"))  # the video by id
    await session(claim("vid-a"), claim("vid-a"))  # twice: counted once
    await session(claim("vid-a"), claim("vid-b"))  # two videos: each
    await session(claim("not-a-video"))  # none
    report = (await agent.http.get("/finance/funnel", headers=MERCHANT)).json()
    rows = {r["video_id"]: r for r in report["rows"]}
    assert set(rows) == {"vid-a", "vid-b"}
    assert (rows["vid-a"]["checkouts_created"], rows["vid-a"]["checkouts_completed"]) == (5, 2)
    assert (rows["vid-b"]["checkouts_created"], rows["vid-b"]["checkouts_completed"]) == (1, 1)
    assert rows["vid-a"]["clicks"] == 1
    assert report["totals"]["checkouts_created"] == 6  # per video: a session in two counts twice


@pytest.fixture
def funnel_site(live_dashboard: Callable[..., LiveServer]) -> LiveServer:
    server = live_dashboard()
    merchant = {"Authorization": "Bearer merchant-key"}
    agent = {"Authorization": f"Bearer {AGENT_KEY}", "API-Version": "2026-04-17"}
    with httpx.Client(base_url=server.url, timeout=20) as client:
        for video_id, title, product in (("vid-rain", "Rainy denim", "denim-jacket"),
                                         ("vid-sun", "Linen at noon", "linen-shirt")):
            client.post("/videos", json={"id": video_id, "title": title,
                                         "products": [{"product_id": product}]},
                        headers={**merchant, "Idempotency-Key": f"v-{video_id}"})
        codes = {}
        for video_id, product in (("vid-rain", "denim-jacket"), ("vid-sun", "linen-shirt")):
            codes[video_id] = client.post("/links", json={
                "video_id": video_id, "product_id": product, "channel": "tiktok"},
                headers={**merchant, "Idempotency-Key": f"l-{video_id}"}).json()["code"]
        for video_id, views, clicks in (("vid-rain", 40, 6), ("vid-sun", 25, 2)):
            for _ in range(views):
                client.get(f"/v/{codes[video_id]}/i.gif", headers=BROWSER)
            for _ in range(clicks):
                client.get(f"/v/{codes[video_id]}", headers=BROWSER, follow_redirects=False)
            client.cookies.clear()
        for n, (video_id, cancel) in enumerate((("vid-rain", None), ("vid-rain", None),
                                                ("vid-rain", "price_sensitivity"),
                                                ("vid-sun", None))):
            session = client.post("/checkout_sessions", headers={
                **agent, "Idempotency-Key": f"c{n}"}, json={
                "currency": "usd", "capabilities": {},
                "line_items": [{"id": "item_123", "quantity": n + 1}],
                "affiliate_attribution": {"provider": "reelcart", "token": codes[video_id]},
                "fulfillment_details": {"address": US_ADDRESS}}).json()
            path = f"/checkout_sessions/{session['id']}"
            if cancel:
                client.post(f"{path}/cancel", headers={**agent, "Idempotency-Key": f"x{n}"},
                            json={"intent_trace": {"reason_code": cancel}})
            else:
                client.post(f"{path}/complete", headers={**agent, "Idempotency-Key": f"p{n}"},
                            json=PAY)
    return server


def test_funnel_page_in_a_real_browser(funnel_site, backend: str, tmp_path: Path) -> None:
    server = funnel_site
    with dashboard_browser(server.url, accept_downloads=True) as ui:
        page = ui.page
        page.click("header >> text=Funnel")
        page.wait_for_url("**/dashboard/funnel")
        # The clicks and views are written by the batched writer: within 50 ms.
        page.wait_for_timeout(200)
        page.reload()
        assert page.inner_text("#total-views") == "65"
        assert page.inner_text("#total-clicks") == "8"
        assert page.locator("svg.chart").count() == 3  # funnel, revenue, per 1,000 views
        assert page.locator("svg.chart rect").count() >= 4 + 2
        assert "price_sensitivity" in page.inner_text("body")
        page.screenshot(path=str(tmp_path / "funnel-desktop.png"), full_page=True)
        with page.expect_download() as download:
            page.click("text=Download CSV")
        saved = tmp_path / "funnel.csv"
        download.value.save_as(saved)
        rows = {r["video_id"]: r for r in csv.DictReader(saved.open())}
        assert (rows["vid-rain"]["clicks"], rows["vid-rain"]["checkouts_completed"]) == (
            "6", "2")
        page.goto(f"{server.url}/dashboard/funnel?video=vid-sun")
        assert "Funnel of Linen at noon" in page.inner_text("h2")

        shot = tmp_path / "funnel-390.png"
        ui.at_phone_width("/dashboard/funnel", shot)
        assert shot.stat().st_size > 10_000
    assert ui.errors == []
