"""The dashboard in a real browser: Playwright driving Debian's Chromium (headless).

Logs in, finds an order made by a sandbox checkout, refunds part of it and sees the
refund on the order and in the finance totals, opens a video page and sees its chart
drawn, downloads a CSV and reads its rows, and checks the order page at phone width.
Any JavaScript console error fails the test.
"""

from __future__ import annotations

import asyncio
import csv
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import (
    AGENT_KEY,
    US_ADDRESS,
    LiveServer,
    make_settings,
    reset_database,
    start_live_server,
)

CHROMIUM = os.environ.get("REELCART_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
PASSWORD = "browser-test-password"


def _require_browser() -> Any:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("playwright is not installed")
        pytest.skip("playwright is not installed")
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"Chromium not found at {CHROMIUM}")
        pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    return sync_playwright


async def _seed_user(database_url: str) -> None:
    from api.dashboard.auth import ScryptCost, create_user
    from models.db import create_engine, create_sessionmaker, transaction

    await reset_database(database_url)
    engine = create_engine(database_url)
    async with transaction(create_sessionmaker(engine)) as db:
        await create_user(db, "ada", PASSWORD, ScryptCost(14))
    await engine.dispose()


@pytest.fixture
def site(database_url: str) -> Iterator[tuple[LiveServer, dict[str, Any]]]:
    asyncio.run(_seed_user(database_url))
    server = start_live_server(make_settings(
        database_url, merchant_api_keys=["merchant-key"], database_pool_size=5,
        public_base_url="http://127.0.0.1"))
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
    yield server, done["order"]
    server.stop()


def test_dashboard_in_a_real_browser(site, backend: str, tmp_path: Path) -> None:
    sync_playwright = _require_browser()
    server, order = site
    total = {t["type"]: t["amount"] for t in order["totals"]}["total"]
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(accept_downloads=True)
        page = context.new_page()
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))

        page.goto(f"{server.url}/dashboard/orders")
        assert page.url.endswith("/dashboard/login")  # anonymous → login
        page.fill("input[name=username]", "ada")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url("**/dashboard")
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

        phone = browser.new_context(viewport={"width": 390, "height": 844},
                                    storage_state=context.storage_state())
        small = phone.new_page()
        small.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        small.goto(f"{server.url}/dashboard/orders/{order['id']}")
        shot = tmp_path / "order-390.png"
        small.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
        # Usable at phone width: nothing forces sideways scrolling of the page.
        assert small.evaluate("document.documentElement.scrollWidth") <= 390
        browser.close()
    assert errors == []
