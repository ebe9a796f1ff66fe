"""The dashboard's overview, safe refunds, 404s, titles and the offline API docs, over
HTTP on both backends; the period and refund-amount arithmetic as pure functions."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from api.dashboard import charts, overview
from api.dashboard.auth import create_user
from api.dashboard.refund_form import RefundRefused, parse_amount
from models import FeedDelivery, LedgerEntry, Order
from models.base import utc_now
from tests.conftest import US_ADDRESS, Agent, app_client, sandbox_runtime
from tests.test_dashboard import FAST, csrf_of, log_in, site  # noqa: F401 (fixture)

MERCHANT = {"Authorization": "Bearer merchant-key"}


# ---------------------------------------------------------------- pure arithmetic


def test_periods_and_their_previous_period() -> None:
    today = date(2026, 12, 2)
    chosen, problem = overview.choose_period(today, "7", None, None)
    assert (chosen.start, chosen.end, chosen.days, problem) == (
        date(2026, 11, 26), date(2026, 12, 3), 7, None)
    assert chosen.previous().start == date(2026, 11, 19)
    assert chosen.previous().end == chosen.start
    custom, problem = overview.choose_period(today, "custom", "2026-01-01", "2026-01-31")
    assert (custom.days, custom.label, problem) == (31, "custom", None)
    assert overview.choose_period(today, "bogus", None, None)[0].days == 30
    backwards, problem = overview.choose_period(today, "custom", "2026-02-01", "2026-01-01")
    assert backwards.days == 30
    assert problem == "The custom period ends before it starts."
    assert overview.choose_period(today, "custom", "2020-01-01", "2026-01-01")[1]


def test_changes_and_rates_are_exact() -> None:
    assert overview.change(1500, 1000) == (overview.Trend.up, "+50.0%")
    assert overview.change(1000, 1500) == (overview.Trend.down, "-33.3%")
    assert overview.change(0, 0) == (overview.Trend.flat, "no change")
    assert overview.change(5, 0) == (overview.Trend.new, "new")
    assert overview.percent(1, 3) == "33.3%"
    assert overview.percent(2, 3) == "66.7%"
    assert overview.percent(1, 0) is None
    assert overview.rate_change((1, 10), (1, 20)) == (overview.Trend.up, "+5.0 pp")
    assert overview.average(1000, 3) == 333
    assert overview.average(1001, 2) == 501  # half up
    assert overview.average(0, 0) == 0


def test_refund_amounts_parse_exactly_by_currency_exponent() -> None:
    assert parse_amount("19.99", "usd") == 1999
    assert parse_amount("0.1", "usd") == 10
    assert parse_amount("1,234.50", "eur") == 123450
    assert parse_amount("19.99 USD", "usd") == 1999
    assert parse_amount("500", "jpy") == 500
    assert parse_amount("1.234", "kwd") == 1234
    assert parse_amount("0.30", "usd") == 30  # 0.1 + 0.2 trouble cannot happen
    for text, currency, why in (
            ("", "usd", "Enter the amount to refund, e.g. 1.00 USD."),
            ("   ", "usd", "Enter the amount to refund"),
            ("19.999", "usd", "USD has 2 decimal places."),
            ("5.5", "jpy", "JPY has 0 decimal places (whole amounts only)."),
            ("-1", "usd", "more than zero"), ("0", "usd", "more than zero"),
            ("1e3", "usd", "not an amount in USD"), ("NaN", "usd", "not an amount"),
            ("Infinity", "usd", "not an amount"), ("12.3.4", "usd", "not an amount")):
        with pytest.raises(RefundRefused, match=re.escape(why)):
            parse_amount(text, currency)


def test_series_are_filled_per_day_and_summed_per_week() -> None:
    days, unit = charts.over_time([("2026-11-30", 500), ("2026-12-02", 700)],
                                  date(2026, 11, 29), date(2026, 12, 3))
    assert unit == "day"
    assert days == [("2026-11-29", 0), ("2026-11-30", 500), ("2026-12-01", 0),
                    ("2026-12-02", 700)]
    weeks, unit = charts.over_time([("2026-11-30", 500), ("2026-12-06", 1), ("2026-12-07", 2)],
                                   date(2026, 10, 1), date(2026, 12, 31))
    assert unit == "week"
    assert dict(weeks)["wk 2026-11-30"] == 501
    assert dict(weeks)["wk 2026-12-07"] == 2
    assert sum(v for _, v in weeks) == 503
    svg = charts.bar_chart([("small", 100), ("big", 900), ("mid", 500)], "usd", title="t")
    assert [m for m in re.findall(r'class="label">([a-z]+)<', svg)] == ["big", "mid", "small"]


# ---------------------------------------------------------------- pages over HTTP


async def _orders(client, count: int) -> list[dict]:
    agent = Agent(client)
    out = []
    for i in range(count):
        session = (await agent.create(line_items=[{"id": "item_123", "quantity": i + 1}],
                                      fulfillment_details={"address": US_ADDRESS},
                                      buyer={"email": f"b{i}@example.com"},
                                      metadata={"video_id": "vid-h"} if i % 2 == 0 else {}))
        out.append((await agent.complete(session.json()["id"])).json()["order"])
    return out


async def test_home_compares_the_period_with_the_one_before(site, backend: str) -> None:  # noqa: F811
    client, rt = site
    await client.post("/videos", json={"id": "vid-h", "title": "Home video"},
                      headers={**MERCHANT, "Idempotency-Key": "v"})
    orders = await _orders(client, 3)
    totals = [o["totals"][-1]["amount"] for o in orders]
    assert [t["type"] for t in orders[0]["totals"]][-1] == "total"
    # The first order was placed 10 days ago: the previous 7-day period.
    async with rt.sessionmaker() as db, db.begin():
        await db.execute(update(Order).where(Order.id == orders[0]["id"]).values(
            created_at=utc_now() - timedelta(days=10)))
        await db.execute(update(LedgerEntry).where(LedgerEntry.order_id == orders[0]["id"])
                         .values(order_at=utc_now() - timedelta(days=10)))
    await log_in(client)
    home = await client.get("/dashboard", params={"period": "7"})
    assert home.status_code == 200
    text = home.text
    assert "<title>Home · ReelCart</title>" in text

    def figure(card: str) -> str:
        found = re.search(rf'id="kpi-usd-{card}">.*?class="figure">([^<]+)<.*?class="change[^"]*">'
                          rf'(.*?)</p>', text, re.S)
        assert found, card
        return found.group(1) + " | " + re.sub(r"<[^>]+>", "", found.group(2))

    now_total = totals[1] + totals[2]
    change = overview.change(now_total, totals[0])[1]
    assert figure("revenue") == f"{now_total // 100}.{now_total % 100:02d} USD | {change} " \
                                "vs previous 7 days"
    assert figure("orders") == "2 | +100.0% vs previous 7 days"
    assert figure("aov").startswith(f"{overview.average(now_total, 2) / 100:.2f} USD")
    # One of the two orders in the period came through a video (orders 0 and 2 did).
    assert figure("attributed").startswith(overview.percent(totals[2], now_total) or "")
    assert len(re.findall(r'<circle class="point"', text)) == 7
    assert "Home video" in text  # top videos by title
    assert re.search(r'id="top-agents-usd".*development', text, re.S)
    # A bad custom period says so and shows 30 days.
    bad = await client.get("/dashboard", params={"period": "custom", "from": "x", "to": ""})
    assert "Choose both dates" in bad.text
    assert len(re.findall(r'<circle class="point"', bad.text)) == 30


async def test_home_shows_each_currency_on_its_own(site, backend: str) -> None:  # noqa: F811
    """Orders in USD and in EUR (a currency the merchant no longer offers): each currency
    has its own figures, chart and top lists, in its own minor units; nothing is added
    across currencies."""
    client, rt = site
    await client.post("/videos", json={"id": "vid-h", "title": "Home video"},
                      headers={**MERCHANT, "Idempotency-Key": "v"})
    orders = await _orders(client, 3)
    totals = [o["totals"][-1]["amount"] for o in orders]
    async with rt.sessionmaker() as db, db.begin():  # the second order was paid in euros
        await db.execute(update(Order).where(Order.id == orders[1]["id"]).values(
            currency="eur"))
        await db.execute(update(LedgerEntry).where(LedgerEntry.order_id == orders[1]["id"])
                         .values(currency="eur"))
    await log_in(client)
    text = (await client.get("/dashboard", params={"period": "7"})).text

    def figure(currency: str, card: str) -> str:
        found = re.search(rf'id="kpi-{currency}-{card}">.*?class="figure">([^<]+)<', text,
                          re.S)
        assert found, (currency, card)
        return found.group(1)

    def money(amount: int, currency: str) -> str:
        return f"{amount // 100}.{amount % 100:02d} {currency}"

    usd = totals[0] + totals[2]
    assert figure("usd", "revenue") == money(usd, "USD")
    assert figure("usd", "orders") == "2"
    assert figure("usd", "aov") == money(overview.average(usd, 2), "USD")
    assert figure("eur", "revenue") == money(totals[1], "EUR")
    assert figure("eur", "orders") == "1"
    assert figure("eur", "aov") == money(totals[1], "EUR")
    assert figure("eur", "attributed") == "0.0%"  # order 1 came through no video
    assert figure("usd", "attributed") == overview.percent(usd, usd)
    # The configured currency first, then the other; a chart and top lists for each.
    assert text.index('id="sales-usd"') < text.index('id="sales-eur"')
    assert len(re.findall(r'<svg[^>]*class="chart', text)) == 2
    agents = re.search(r'id="top-agents-eur".*?</table>', text, re.S)
    assert agents
    assert money(totals[1], "EUR") in agents.group(0)
    assert "USD" not in agents.group(0)
    # Nothing sold in the period: the merchant's currency, empty.
    empty = (await client.get("/dashboard", params={
        "period": "custom", "from": "2001-01-01", "to": "2001-01-07"})).text
    assert re.findall(r'id="sales-(\w+)"', empty) == ["usd"]


async def test_home_alerts(database_url: str, backend: str, tmp_path: Path) -> None:
    async with sandbox_runtime(database_url, merchant_api_keys=["merchant-key"],
                               feeds_dir=tmp_path) as rt:
        async with rt.sessionmaker() as db, db.begin():
            await create_user(db, "ada", "correct horse battery", FAST)
        async with app_client(rt, "https://shop.test") as client:
            await _check_alerts(client, rt, tmp_path)


async def _check_alerts(client, rt, feeds_dir: Path) -> None:
    orders = await _orders(client, 2)
    resp = await client.post(f"/orders/{orders[0]['id']}/sandbox-dispute",
                             json={"reason": "fraudulent"},
                             headers={**MERCHANT, "Idempotency-Key": "d"})
    assert resp.status_code == 201
    async with rt.sessionmaker() as db, db.begin():
        await db.execute(update(Order).where(Order.id == orders[1]["id"]).values(
            status="manual_review"))
        db.add(FeedDelivery(id="fd_1", destination="google", run_id="r1", mode="full",
                            status="failed", error="401 from the Merchant API"))
    # What `reelcart feeds build` leaves beside the feeds: its validation report.
    (feeds_dir / "report.json").write_text(json.dumps({"validation": {
        "items": 10, "valid": 8, "invalid": 2, "excluded": 0, "problems": [
            {"problem": "missing_required", "count": 2, "examples": []}],
        "store_problems": []}}))
    await log_in(client)
    text = (await client.get("/dashboard")).text
    alerts = re.search(r'id="alerts".*?</section>', text, re.S)
    assert alerts
    block = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", alerts.group(0)))
    assert f"1 order needs attention: {orders[1]['order_number']}" in block
    due = (utc_now() + timedelta(days=7)).date().isoformat()
    assert f"1 open dispute: {orders[0]['order_number']}" in block
    assert f"fraudulent · evidence due {due}" in block
    assert "0 failed deliveries." in block
    assert "1 feed destination failing: google (1 failure)" in block
    assert "2 feed items failed validation · 2 × missing_required" in block
    assert "0 authorisations near expiry." in block


async def test_refunds_need_an_amount_and_a_confirmation(site, backend: str) -> None:  # noqa: F811
    client, _ = site
    (order,) = await _orders(client, 1)
    await log_in(client)
    page = (await client.get(f"/dashboard/orders/{order['id']}")).text
    form = {"csrf_token": csrf_of(page), "nonce": "n1"}
    url = f"/dashboard/orders/{order['id']}/refund"

    async def refunded() -> int:
        detail = await client.get(f"/orders/{order['id']}", headers=MERCHANT)
        return int(detail.json()["refunded_amount"])

    # An empty amount never means "everything" — not even with confirm=yes.
    for data in ({}, {"amount": ""}, {"amount": "  ", "confirm": "yes"}):
        resp = await client.post(url, data={**form, **data})
        assert resp.status_code == 303
        assert "error=Enter%20the%20amount%20to%20refund" in resp.headers["location"]
    # Too much is refused in the order's currency, never in cents.
    total = order["totals"][-1]["amount"]
    resp = await client.post(url, data={**form, "amount": "100000", "confirm": "yes"})
    shown = (await client.get(resp.headers["location"])).text
    assert (f"100000.00 USD is more than the {total // 100}.{total % 100:02d} USD "
            "left to refund.") in shown
    assert 'role="alert"' in shown
    assert await refunded() == 0
    # The confirmation repeats the exact amount; nothing moves until it is confirmed.
    review = await client.post(url, data={**form, "amount": "0.1"})
    assert re.search(r'id="refund-amount">0\.10 USD<', review.text)
    assert 'name="amount" value="0.10"' in review.text
    assert await refunded() == 0
    done = await client.post(url, data={**form, "amount": "0.10", "confirm": "yes"})
    assert "notice=Refund%20of%200.10%20USD%20recorded." in done.headers["location"]
    assert await refunded() == 10


async def test_refunds_are_disabled_while_a_dispute_is_open(site, backend: str) -> None:  # noqa: F811
    client, _ = site
    (order,) = await _orders(client, 1)
    await client.post(f"/orders/{order['id']}/sandbox-dispute", json={},
                      headers={**MERCHANT, "Idempotency-Key": "d"})
    await log_in(client)
    page = (await client.get(f"/dashboard/orders/{order['id']}")).text
    assert re.search(r'<button class="primary" type="submit" disabled>Review refund', page)
    assert "A dispute is open" in page
    assert "<th>Evidence due</th>" in page
    resp = await client.post(f"/dashboard/orders/{order['id']}/refund", data={
        "csrf_token": csrf_of(page), "nonce": "n", "amount": "1.00", "confirm": "yes"})
    assert "error=A%20dispute%20is%20open" in resp.headers["location"]
    detail = await client.get(f"/orders/{order['id']}", headers=MERCHANT)
    assert detail.json()["refunded_amount"] == 0


async def test_order_page_names_buyer_items_and_actors(site, backend: str) -> None:  # noqa: F811
    client, _ = site
    agent = Agent(client)
    session = await agent.create(line_items=[{"id": "denim-jacket-m", "quantity": 2}],
                                 fulfillment_details={"address": US_ADDRESS},
                                 buyer={"first_name": "Ada", "last_name": "Lovelace",
                                        "email": "ada@example.com"})
    order = (await agent.complete(session.json()["id"])).json()["order"]
    await client.post(f"/orders/{order['id']}/cancel", headers={
        **MERCHANT, "Idempotency-Key": "x"}, json={})
    await log_in(client)
    page = (await client.get(f"/dashboard/orders/{order['id']}")).text
    assert "Ada Lovelace" in page
    assert "ada@example.com" in page
    assert "1 Market St" in page
    assert "San Francisco, CA 94105" in page
    assert re.search(r'<img src="https://shop\.example\.com/images/denim-jacket/2\.jpg"', page)
    assert "Size: M" in page
    assert "development (agent)" in page  # not agent:<id>
    assert "agent:" not in re.search(r'id="timeline".*', page, re.S).group(0)
    listing = (await client.get("/dashboard/orders")).text
    row = re.search(rf"{order['order_number']}.*?</tr>", listing, re.S)
    assert row
    assert "ada@example.com" in row.group(0)
    assert "<td class=\"hide-sm\">development</td>" in row.group(0)


async def test_missing_pages_are_404_with_one_title(site, backend: str) -> None:  # noqa: F811
    client, _ = site
    # Anonymous: the login page, titled once.
    login = await client.get("/dashboard/login")
    assert "<title>Log in · ReelCart</title>" in login.text
    anonymous = await client.get("/dashboard/no-such-page")
    assert anonymous.status_code == 404
    assert "<title>Not found · ReelCart</title>" in anonymous.text
    await log_in(client)
    for path in ("/dashboard/no-such-page", "/dashboard/orders/ord_nope",
                 "/dashboard/videos/vid-nope", "/dashboard/payouts/runs/run_nope",
                 "/dashboard/payees/pe_nope", "/dashboard/statements/st_nope"):
        resp = await client.get(path)
        assert resp.status_code == 404, path
        assert resp.headers["content-type"].startswith("text/html")
        assert "<title>Not found · ReelCart</title>" in resp.text
        assert "Log out" in resp.text  # the nav, for a logged-in merchant
    for path in ("/dashboard", "/dashboard/orders", "/dashboard/videos", "/dashboard/finance",
                 "/dashboard/catalog", "/dashboard/health", "/dashboard/payouts"):
        resp = await client.get(path)
        assert resp.status_code == 200, path
        head = re.search(r"<head>.*?</head>", resp.text, re.S)
        assert head
        titles = re.findall(r"<title>([^<]*)</title>", head.group(0))
        assert len(titles) == 1
        assert titles[0].count("ReelCart") == 1, titles
        assert "script" not in resp.headers["content-security-policy"]
        assert "style=" not in resp.text  # CSP: no inline styles
    # The API keeps its error shape.
    api = await client.get("/no-such-endpoint")
    assert api.status_code == 404
    assert api.json()["code"] == "not_found"


async def test_docs_assets_are_served_from_the_package(site, backend: str) -> None:  # noqa: F811
    client, _ = site
    for path, bundle in (("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")):
        page = await client.get(path)
        assert page.status_code == 200
        assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert any(a.endswith(bundle) for a in assets)
        for asset in assets:
            assert asset.startswith("/")
            assert not asset.startswith("//")
            got = await client.get(asset)
            assert got.status_code == 200, asset
            assert len(got.content) > 100
        policy = page.headers["content-security-policy"]
        assert "script-src 'self';" in policy
        assert "http" not in policy  # no CDN allowed
    bundle = await client.get("/docs-assets/redoc.standalone.js")
    assert b"cdn.redoc.ly" not in bundle.content
