"""The dashboard's overview with sales in two currencies, in a real browser at desktop and
phone (390 px) width: each currency has its own figures, chart and top lists, in its own
units; nothing is added across currencies. Any console error or CSP violation fails.
Screenshots go to ``$REELCART_SCREENSHOTS`` when set (to look at)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import update

from models import LedgerEntry, Order
from tests.browser import dashboard_browser
from tests.conftest import LiveServer
from tests.test_dashboard_pages_browser import MERCHANT, _buy, screenshots


async def paid_in_euros(database_url: str, order_id: str) -> None:
    from models.db import create_engine, create_sessionmaker, transaction

    engine = create_engine(database_url)
    try:
        async with transaction(create_sessionmaker(engine)) as db:
            await db.execute(update(Order).where(Order.id == order_id).values(currency="eur"))
            await db.execute(update(LedgerEntry).where(LedgerEntry.order_id == order_id)
                             .values(currency="eur"))
    finally:
        await engine.dispose()


def money(amount: int, currency: str) -> str:
    return f"{amount // 100}.{amount % 100:02d} {currency}"


def test_the_overview_shows_each_currency(live_dashboard: Callable[..., LiveServer],
                                          database_url: str, backend: str,
                                          tmp_path: Path) -> None:
    server = live_dashboard()
    with httpx.Client(base_url=server.url, timeout=20) as client:
        made = client.post("/videos", json={"id": "vid-rain", "title": "Rainy denim walk",
                                            "products": [{"product_id": "denim-jacket"}]},
                           headers={**MERCHANT, "Idempotency-Key": "v"})
        assert made.status_code in (200, 201), made.text
        orders: list[dict[str, Any]] = [
            _buy(client, "0", "vid-rain", "denim-jacket-m", 2),
            _buy(client, "1", None, "ceramic-mug-sand", 3),
            _buy(client, "2", None, "canvas-tote-natural", 1)]
    totals = [{t["type"]: t["amount"] for t in o["totals"]}["total"] for o in orders]
    asyncio.run(paid_in_euros(database_url, orders[1]["id"]))
    shots = screenshots(tmp_path)
    with dashboard_browser(server.url) as ui:
        page = ui.page
        page.goto(f"{server.url}/dashboard?period=7")
        assert page.locator("section.sales").count() == 2
        assert page.inner_text("#sales-usd-title") == "Sales in USD"
        assert page.inner_text("#sales-eur-title") == "Sales in EUR"
        usd = totals[0] + totals[2]
        assert page.inner_text("#kpi-usd-revenue .figure") == money(usd, "USD")
        assert page.inner_text("#kpi-usd-orders .figure") == "2"
        assert page.inner_text("#kpi-eur-revenue .figure") == money(totals[1], "EUR")
        assert page.inner_text("#kpi-eur-orders .figure") == "1"
        assert page.locator("#sales-usd svg.chart").count() == 1
        assert page.locator("#sales-eur svg.chart").count() == 1
        assert "Rainy denim walk" in page.inner_text("#top-videos-usd")
        assert money(totals[1], "EUR") in page.inner_text("#top-agents-eur")
        assert "USD" not in page.inner_text("#sales-eur")
        page.screenshot(path=str(shots / "home-currencies-desktop.png"), full_page=True)
        small = ui.at_phone_width("/dashboard?period=7", shots / "home-currencies-390.png")
        assert small.inner_text("#kpi-eur-revenue .figure") == money(totals[1], "EUR")
    assert ui.errors == []
