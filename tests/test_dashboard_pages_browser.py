"""The dashboard's home, order (refund with confirmation, dispute), videos (remix tree,
unknown creatives), finance, 404 and the offline /docs and /redoc, in a real browser at
desktop and phone (390 px) width. Any JavaScript console error or CSP violation fails.

Product images live on the merchant's https CDN (the demo catalog's
``https://shop.example.com``); the browser is offline, so a route answers those requests
with a small PNG, as the CDN would. Screenshots go to ``$REELCART_SCREENSHOTS`` when set
(to look at), else to the test's temporary directory.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser import CHROMIUM, CHROMIUM_ARGS, PASSWORD
from tests.browser import require_browser as _require_browser
from tests.conftest import AGENT_KEY, US_ADDRESS, LiveServer

PNG = bytes.fromhex(  # 1×1 grey PNG
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c6360606060000000050001a5f645400000000049454e44ae426082")
MERCHANT = {"Authorization": "Bearer merchant-key"}
AGENT = {"Authorization": f"Bearer {AGENT_KEY}", "API-Version": "2026-04-17"}
VIDEOS = [
    {"id": "vid-rain", "title": "Rainy denim walk", "generator": "veo-3.1", "creator": "Mia",
     "products": [{"product_id": "denim-jacket"}]},
    {"id": "vid-rain-neon", "title": "Rainy denim walk — neon remix", "generator": "runway",
     "parent_video_id": "vid-rain", "creator": "Mia"},
    {"id": "vid-rain-slowmo", "title": "Rainy denim walk — slow motion", "generator": "kling",
     "parent_video_id": "vid-rain-neon"},
    {"id": "vid-rain-bw", "title": "Rainy denim walk — black and white", "generator": "sora-2",
     "parent_video_id": "vid-rain"},
    {"id": "vid-mug", "title": "Morning pour-over ritual with a very long descriptive title",
     "generator": "sora-2", "products": [{"product_id": "ceramic-mug"}]},
]
# (video credited, variant, quantity): the sales the pages show.
SALES = [("vid-rain", "denim-jacket-m", 2), ("vid-rain-neon", "denim-jacket-l", 1),
         ("vid-mug", "ceramic-mug-sand", 3), ("vid-rain", "denim-jacket-m", 1),
         ("vid-ghost", "linen-shirt-m", 1), (None, "canvas-tote-natural", 2)]


def screenshots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("REELCART_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _variants(client: httpx.Client) -> set[str]:
    products = client.get("/products", headers=MERCHANT, params={"limit": 200})
    if products.status_code != 200:
        return set()
    return {v["id"] for p in products.json().get("data", []) for v in p.get("variants", [])}


def _buy(client: httpx.Client, key: str, video: str | None, variant: str, quantity: int
         ) -> dict[str, Any]:
    session = client.post("/checkout_sessions", headers={**AGENT, "Idempotency-Key": f"c{key}"},
                          json={"currency": "usd", "capabilities": {},
                                "line_items": [{"id": variant, "quantity": quantity}],
                                "metadata": {"video_id": video} if video else {},
                                "fulfillment_details": {"address": US_ADDRESS}})
    assert session.status_code == 201, session.text
    done = client.post(f"/checkout_sessions/{session.json()['id']}/complete",
                       headers={**AGENT, "Idempotency-Key": f"p{key}"}, json={
                           "buyer": {"first_name": "Grace", "last_name": "Hopper",
                                     "email": f"grace{key}@example.com"},
                           "payment_data": {"handler_id": "card_tokenized", "instrument": {
                               "type": "card", "credential": {
                                   "type": "spt", "token": "spt_test_success"}}}})
    assert done.status_code in (200, 201), done.text
    return dict(done.json()["order"])


@pytest.fixture
def shop(live_dashboard: Callable[..., LiveServer]) -> tuple[LiveServer, list[dict[str, Any]]]:
    server = live_dashboard()
    orders = []
    with httpx.Client(base_url=server.url, timeout=20) as client:
        for i, video in enumerate(VIDEOS):
            resp = client.post("/videos", json=video,
                               headers={**MERCHANT, "Idempotency-Key": f"v{i}"})
            assert resp.status_code in (200, 201), resp.text
        for i, (video, variant, quantity) in enumerate(SALES):
            orders.append(_buy(client, str(i), video, variant, quantity))
        disputed = client.post(f"/orders/{orders[1]['id']}/sandbox-dispute", json={
            "reason": "product_not_received"}, headers={**MERCHANT, "Idempotency-Key": "d"})
        assert disputed.status_code == 201, disputed.text
    return server, orders


def test_new_pages_in_a_real_browser(shop, backend: str, tmp_path: Path) -> None:
    sync_playwright = _require_browser()
    server, orders = shop
    shots = screenshots(tmp_path)
    errors: list[str] = []

    def watch(page: Any) -> None:
        page.on("console", lambda m: errors.append(f"{page.url}: {m.text}")
                if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(f"{page.url}: {e}"))
        page.route(re.compile(r"^https://"), lambda route: route.fulfill(
            status=200, content_type="image/png", body=PNG))

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        desktop = browser.new_context(viewport={"width": 1280, "height": 900})
        page = desktop.new_page()
        watch(page)
        page.goto(f"{server.url}/dashboard")
        page.fill("input[name=username]", "ada")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url("**/dashboard")  # login lands on the overview

        # Home: six figures with their change, a point per day, top videos by title.
        assert page.title() == "Home · ReelCart"
        assert page.locator(".kpi").count() == 6
        assert page.inner_text("#kpi-usd-orders .figure") == str(len(SALES))
        assert "no data in the previous 30 days" in page.inner_text("#kpi-usd-revenue .change")
        assert page.locator("svg.chart circle.point").count() == 30
        top = page.locator("#top-videos-usd tbody tr")
        assert top.count() == 4
        assert "Rainy denim walk" in top.nth(0).inner_text()
        assert "unknown creative" in page.inner_text("#top-videos-usd")
        assert page.locator("#top-agents-usd tbody tr").count() == 1
        assert page.inner_text("#top-agents-usd tbody tr td").startswith("development")
        disputes = page.inner_text("#alert-disputes")
        assert "1 open dispute" in disputes
        assert "evidence due" in disputes
        page.screenshot(path=str(shots / "home-desktop.png"), full_page=True)
        page.click("a.chip:has-text('7 days')")
        page.wait_for_url("**/dashboard?period=7")
        assert page.locator("svg.chart circle.point").count() == 7
        page.fill("input[name=from]", "2026-01-01")
        page.fill("input[name=to]", "2026-03-31")
        page.click("text=Custom period")
        # 90 days drawn as the 14 ISO weeks they touch, not 90 unreadable points.
        assert page.locator("svg.chart circle.point").count() == 14

        # The disputed order: dispute details, refunds disabled while it is open.
        disputed = orders[1]
        page.goto(f"{server.url}/dashboard/orders/{disputed['id']}")
        assert page.title() == f"Order {disputed['order_number']} · ReelCart"
        row = page.inner_text("#disputes tbody tr")
        assert "needs_response" in row
        assert "product not received" in row
        assert re.search(r"\d{4}-\d\d-\d\d", row)  # the evidence due date
        assert page.locator("#refund-form button").is_disabled()
        assert "dispute is open" in page.inner_text("#refund-blocked")
        page.screenshot(path=str(shots / "order-disputed-desktop.png"), full_page=True)

        # A normal order: buyer, address, items with images and options, actor names.
        order = orders[0]
        page.goto(f"{server.url}/dashboard/orders/{order['id']}")
        assert "Grace Hopper" in page.inner_text("#buyer")
        assert "grace0@example.com" in page.inner_text("#buyer")
        assert "1 Market St" in page.inner_text("#shipping")
        assert page.locator("#items img").count() == 1
        assert "Size: M" in page.inner_text("#items")
        assert "(agent)" in page.inner_text("#timeline")
        assert "key_" not in page.inner_text("#timeline")
        page.screenshot(path=str(shots / "order-desktop.png"), full_page=True)
        # Refund: too much is refused in the order's currency…
        page.fill("input[name=amount]", "100000")
        page.click("#refund-form button")
        assert "100000.00 USD is more than the" in page.inner_text(".notice.error")
        # …a partial amount is shown for confirmation, and only then refunded.
        page.fill("input[name=amount]", "12.5")
        page.click("#refund-form button")
        assert page.inner_text("#refund-amount") == "12.50 USD"
        assert page.title().startswith("Confirm refund")
        page.screenshot(path=str(shots / "refund-confirm-desktop.png"), full_page=True)
        page.click("text=Refund 12.50 USD")
        page.wait_for_selector("text=Refund of 12.50 USD recorded.")
        assert page.inner_text("#refunded") == "12.50 USD"
        assert "ada (dashboard)" in page.inner_text("#timeline")

        # Videos: bars sorted by value with titles, the unknown creative flagged.
        page.goto(f"{server.url}/dashboard/videos")
        bars = page.locator("svg.chart rect.bar")
        assert bars.count() == 3  # the disputed sale nets to zero: no bar
        widths = [bars.nth(i).bounding_box()["width"] for i in range(bars.count())]
        assert widths == sorted(widths, reverse=True)
        labels = page.locator("svg.chart text.label").all_text_contents()
        assert labels[0] == "Rainy denim walk"
        assert "vid-ghost (unknown creative)" in labels
        assert "vid-ghost" in page.inner_text("#unknown-creatives")
        page.screenshot(path=str(shots / "videos-desktop.png"), full_page=True)
        # The remix family as a tree, from the original down.
        page.goto(f"{server.url}/dashboard/videos/vid-rain-neon")
        tree = page.locator("#remix-lineage ul.tree")
        assert tree.locator("li").count() == 4
        assert tree.locator("> li > .node").inner_text().startswith("Rainy denim walk")
        assert "(this video)" in tree.locator(".node.current").inner_text()
        assert "slow motion" in tree.locator(".node.current + ul").inner_text()
        page.screenshot(path=str(shots / "video-desktop.png"), full_page=True)

        # Finance: titles, not ids; the unknown creative flagged.
        page.goto(f"{server.url}/dashboard/finance")
        table = page.inner_text("#revenue")
        assert "Rainy denim walk" in table
        assert "vid-rain\t" not in table
        assert "unknown creative" in table
        page.screenshot(path=str(shots / "finance-desktop.png"), full_page=True)

        # Missing pages: a real 404 with one title (Chromium logs each 404 it is sent
        # to, and those are the only console messages they may cause).
        seen = len(errors)
        for path in ("/dashboard/nope", "/dashboard/orders/ord_missing",
                     "/dashboard/videos/vid-missing"):
            response = page.goto(f"{server.url}{path}")
            assert response is not None
            assert response.status == 404, path
            assert page.title() == "Not found · ReelCart"
            assert page.locator("header nav").count() == 1  # still inside the dashboard
        assert all("status of 404" in e for e in errors[seen:])
        del errors[seen:]

        # Phone width: every page fits without sideways scrolling of the page.
        phone = browser.new_context(viewport={"width": 390, "height": 844},
                                    storage_state=desktop.storage_state())
        small = phone.new_page()
        watch(small)
        for name, path in (("home", "/dashboard"), ("order", f"/dashboard/orders/{order['id']}"),
                           ("order-disputed", f"/dashboard/orders/{disputed['id']}"),
                           ("videos", "/dashboard/videos"),
                           ("video", "/dashboard/videos/vid-rain-neon"),
                           ("finance", "/dashboard/finance"),
                           ("finance-weeks", "/dashboard/finance?from=2026-09-01&to=2026-12-31")):
            small.goto(f"{server.url}{path}")
            small.screenshot(path=str(shots / f"{name}-390.png"), full_page=True)
            assert small.evaluate("document.documentElement.scrollWidth") <= 390, name
        small.goto(f"{server.url}/dashboard/orders/{order['id']}")
        small.fill("input[name=amount]", "1")
        small.click("#refund-form button")
        assert small.inner_text("#refund-amount") == "1.00 USD"
        small.screenshot(path=str(shots / "refund-confirm-390.png"), full_page=True)
        assert small.evaluate("document.documentElement.scrollWidth") <= 390
        small.click("text=Refund 1.00 USD")
        small.wait_for_selector("text=Refund of 1.00 USD recorded.")
        assert small.inner_text("#refunded") == "13.50 USD"
        # The period chips at phone width: 90 days are drawn per week.
        small.goto(f"{server.url}/dashboard")
        small.click("a.chip:has-text('90 days')")
        small.wait_for_url("**/dashboard?period=90")
        assert small.locator("svg.chart circle.point").count() in (13, 14)
        assert "Revenue per week" in small.inner_text("main")
        small.screenshot(path=str(shots / "home-90-390.png"), full_page=True)
        assert small.evaluate("document.documentElement.scrollWidth") <= 390
        browser.close()
    assert errors == []


def test_docs_and_redoc_work_offline(shop, backend: str, tmp_path: Path) -> None:
    """/docs and /redoc load only same-origin assets (all served), render the API, and
    raise no console error or CSP violation; nothing leaves the machine."""
    sync_playwright = _require_browser()
    server, _ = shop
    shots = screenshots(tmp_path)
    with httpx.Client(base_url=server.url, timeout=20) as client:
        for path in ("/docs", "/redoc"):
            html = client.get(path)
            assert html.status_code == 200
            assets = re.findall(r'(?:src|href)="([^"]+)"', html.text)
            assert assets
            assert all(a.startswith("/") and not a.startswith("//") for a in assets), assets
            for asset in assets:
                assert client.get(asset).status_code == 200, asset
            assert "'unsafe-eval'" not in html.headers["content-security-policy"]
            assert "script-src 'self';" in html.headers["content-security-policy"]
    errors: list[str] = []
    outside: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: outside.append(r.url)
                if not r.url.startswith((server.url, "data:", "blob:")) else None)
        page.goto(f"{server.url}/docs")
        page.wait_for_selector(".swagger-ui .info .title")
        assert "ReelCart" in page.inner_text(".swagger-ui .info .title")
        assert page.locator(".opblock").count() > 10
        page.screenshot(path=str(shots / "docs-desktop.png"))
        page.goto(f"{server.url}/redoc")
        page.wait_for_selector("h1:has-text('ReelCart')", timeout=30_000)
        page.screenshot(path=str(shots / "redoc-desktop.png"))
        browser.close()
    assert outside == []
    assert errors == []
