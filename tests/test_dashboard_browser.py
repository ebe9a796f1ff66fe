"""The dashboard in a real browser: Playwright driving Debian's Chromium (headless).

Logs in, finds an order made by a sandbox checkout, refunds part of it and sees the
refund on the order and in the finance totals, opens a video page and sees its chart
drawn, downloads a CSV and reads its rows, and checks the order page at phone width.
Any JavaScript console error fails the test.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser import dashboard_browser
from tests.conftest import AGENT_KEY, US_ADDRESS, LiveServer


@pytest.fixture
def site(live_dashboard: Callable[..., LiveServer]) -> tuple[LiveServer, dict[str, Any]]:
    server = live_dashboard()
    headers = {"Authorization": f"Bearer {AGENT_KEY}", "API-Version": "2026-04-17"}
    with httpx.Client(base_url=server.url, timeout=20) as client:
        client.post("/videos", json={"id": "vid-browser", "title": "Rainy denim",
                                     "generator": "sora-2",
                                     "products": [{"product_id": "spec-items"}]},
                    headers={"Authorization": "Bearer merchant-key", "Idempotency-Key": "v"})
        session = client.post("/checkout_sessions", headers={**headers, "Idempotency-Key": "c"},
                              json={"currency": "usd", "capabilities": {},
                                    "line_items": [{"id": "item_123", "quantity": 3}],
                                    "metadata": {"video_id": "vid-browser"},
                                    "fulfillment_details": {"address": US_ADDRESS}}).json()
        done = client.post(f"/checkout_sessions/{session['id']}/complete",
                           headers={**headers, "Idempotency-Key": "p"}, json={
                               "buyer": {"email": "shopper@example.com"},
                               "payment_data": {"handler_id": "card_tokenized", "instrument": {
                                   "type": "card", "credential": {
                                       "type": "spt", "token": "spt_test_success"}}}}).json()
    return server, done["order"]


def test_dashboard_in_a_real_browser(site, backend: str, tmp_path: Path) -> None:
    server, order = site
    total = {t["type"]: t["amount"] for t in order["totals"]}["total"]
    with dashboard_browser(server.url, login=False, accept_downloads=True) as ui:
        page = ui.page
        page.goto(f"{server.url}/dashboard/orders")
        assert page.url.endswith("/dashboard/login")  # anonymous → login
        ui.login()
        page.click("header nav >> text=Orders")

        page.fill("input[name=q]", "shopper@example.com")
        page.click("form.inline button.primary")
        page.click(f"text={order['order_number']}")
        page.wait_for_url(f"**/dashboard/orders/{order['id']}")
        page.fill("input[name=amount]", "1.50")
        page.click("form[action$='/refund'] button")
        page.click("text=Refund 1.50 USD")  # the confirmation step
        page.wait_for_selector("text=Refund of 1.50 USD recorded.")
        assert page.inner_text("#refunded") == "1.50 USD"

        page.goto(f"{server.url}/dashboard/finance")
        assert page.inner_text("#total-gross") == f"{(total - 150) / 100:.2f} USD"
        with page.expect_download() as download:
            page.click("text=Download CSV")
        saved = tmp_path / "revenue.csv"
        download.value.save_as(saved)
        rows = list(csv.DictReader(saved.open()))
        assert [(r["video"], int(r["gross"])) for r in rows] == [("vid-browser", total - 150)]

        page.goto(f"{server.url}/dashboard/videos/vid-browser")
        chart = page.locator("svg.chart")
        box = chart.bounding_box()
        assert box is not None
        assert box["width"] > 200
        assert box["height"] > 50
        assert page.locator("svg.chart circle").count() >= 1  # a point per day of sales

        shot = tmp_path / "order-390.png"
        ui.at_phone_width(f"/dashboard/orders/{order['id']}", shot)
        assert shot.stat().st_size > 10_000
    assert ui.errors == []
