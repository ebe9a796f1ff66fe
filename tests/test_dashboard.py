"""The merchant dashboard over HTTP: login, CSRF, orders, refunds, videos, finance, CSV."""

from __future__ import annotations

import csv
import io
import re

import httpx
import pytest

from api.dashboard.auth import ScryptCost, create_user, hash_password, verify_password
from tests.conftest import AGENT_KEY, US_ADDRESS, Agent, app_client, sandbox_runtime


@pytest.fixture
async def site(database_url: str):
    async with sandbox_runtime(database_url, merchant_api_keys=["merchant-key"]) as rt:
        async with rt.sessionmaker() as db, db.begin():
            await create_user(db, "ada", "correct horse battery", FAST)
        async with app_client(rt, "https://shop.test") as client:
            yield client, rt


FAST = ScryptCost(14)  # the test settings' target cost (conftest.make_settings)


async def log_in(client: httpx.AsyncClient, username: str = "ada",
                 password: str = "correct horse battery") -> None:
    resp = await submit_login(client, username, password)
    assert resp.status_code == 303
    assert resp.headers["location"] == "/dashboard"


async def submit_login(client: httpx.AsyncClient, username: str, password: str
                       ) -> httpx.Response:
    """Like a browser: load the form (its CSRF token and cookie), then post it."""
    form = await client.get("/dashboard/login")
    return await client.post("/dashboard/login", data={
        "username": username, "password": password, "csrf_token": csrf_of(form.text)})


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match
    return match.group(1)


def test_passwords_are_hashed() -> None:
    stored = hash_password("s3cret-pass", FAST)
    assert "s3cret" not in stored
    assert verify_password("s3cret-pass", stored)
    assert not verify_password("wrong", stored)


async def test_anonymous_and_api_keys_are_sent_to_login(site, backend: str) -> None:
    client, _ = site
    for path in ("/dashboard", "/dashboard/orders", "/dashboard/videos", "/dashboard/finance",
                 "/dashboard/health", "/dashboard/orders/ord_x"):
        resp = await client.get(path)
        assert resp.status_code == 303, path
        assert resp.headers["location"] == "/dashboard/login"
        resp = await client.get(path, headers={"Authorization": f"Bearer {AGENT_KEY}"})
        assert resp.status_code == 303  # an API key is not a dashboard login
    bad = await submit_login(client, "ada", "nope")
    assert bad.status_code == 401
    await log_in(client)
    # A dashboard session cannot call the agent API.
    resp = await client.get("/checkout_sessions/cs_x", headers={"API-Version": "2026-04-17"})
    assert resp.status_code == 401


async def test_orders_refund_and_finance(site, backend: str) -> None:
    client, rt = site
    agent = Agent(client)
    session = (await agent.create(line_items=[{"id": "item_123", "quantity": 4}],
                                  fulfillment_details={"address": US_ADDRESS},
                                  buyer={"email": "buyer@example.com"},
                                  metadata={"video_id": "vid-d"})).json()
    await client.post("/videos", json={"id": "vid-d", "title": "Dashboard video",
                                       "products": [{"product_id": "spec-items"}]},
                      headers={"Authorization": "Bearer merchant-key", "Idempotency-Key": "v"})
    order = (await agent.complete(session["id"])).json()["order"]
    await log_in(client)
    listing = await client.get("/dashboard/orders", params={"q": "buyer@example.com"})
    assert order["order_number"] in listing.text
    page = await client.get(f"/dashboard/orders/{order['id']}")
    assert page.status_code == 200
    token = csrf_of(page.text)
    nonce = re.search(r'name="nonce" value="([^"]+)"', page.text).group(1)
    # Without the CSRF token: refused, nothing refunded.
    refused = await client.post(f"/dashboard/orders/{order['id']}/refund",
                                data={"amount": "1.00", "nonce": nonce})
    assert refused.status_code == 403
    # With it: first a confirmation step that shows exactly what will be refunded…
    review = await client.post(f"/dashboard/orders/{order['id']}/refund",
                               data={"amount": "1.50", "csrf_token": token, "nonce": nonce})
    assert review.status_code == 200
    assert re.search(r'id="refund-amount">1\.50 USD<', review.text)
    assert 'name="confirm" value="yes"' in review.text
    assert (await client.get(f"/orders/{order['id']}", headers={
        "Authorization": "Bearer merchant-key"})).json()["refunded_amount"] == 0
    # …then the confirmed refund, submitted twice (double click) → refunded once.
    for _ in range(2):
        done = await client.post(f"/dashboard/orders/{order['id']}/refund",
                                 data={"amount": "1.50", "csrf_token": token, "nonce": nonce,
                                       "confirm": "yes"})
        assert done.status_code == 303
    page = await client.get(done.headers["location"])
    assert "Refund of 1.50 USD recorded." in page.text
    assert re.search(r'id="refunded">\$?1\.50 USD<', page.text)
    # Finance totals reflect it (gross net of the refund).
    finance = await client.get("/dashboard/finance")
    total = {t["type"]: t["amount"] for t in order["totals"]}["total"]
    expected = f"{(total - 150) / 100:.2f} USD"
    assert re.search(rf'id="total-gross">{re.escape(expected)}<', finance.text)
    assert "<svg" in finance.text
    exported = await client.get("/dashboard/finance", params={"format": "csv"})
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert sum(int(r["gross"]) for r in rows) == total - 150
    assert {r["video"] for r in rows} == {"vid-d"}
    # The video page charts its sales.
    video = await client.get("/dashboard/videos/vid-d")
    assert "<svg" in video.text
    assert "Attributed sales per day" in video.text
    videos = await client.get("/dashboard/videos")
    assert "Dashboard video" in videos.text
    orders_csv = await client.get("/dashboard/orders", params={"format": "csv"})
    assert order["id"] in orders_csv.text
    health = await client.get("/dashboard/health")
    assert "Agent order webhooks" in health.text


async def test_buyer_email_from_fulfillment_details_is_shown(site, backend: str) -> None:
    """ACP 2025-12-12 on: the email may come only in ``fulfillment_details``; the
    dashboard shows it (detail, list, search) just as the buyer's order page accepts it."""
    client, _ = site
    agent = Agent(client)
    session = (await agent.create(
        line_items=[{"id": "item_123", "quantity": 1}],
        fulfillment_details={"name": "Grace Hopper", "email": "grace@example.com",
                             "phone_number": "+15551234567", "address": US_ADDRESS},
    )).json()
    order = (await agent.complete(session["id"])).json()["order"]
    await log_in(client)
    page = await client.get(f"/dashboard/orders/{order['id']}")
    assert page.status_code == 200
    assert re.search(r'id="buyer-email">grace@example\.com<', page.text)
    assert "no email" not in page.text
    assert "<strong>Grace Hopper</strong>" in page.text
    assert "+15551234567" in page.text
    listing = await client.get("/dashboard/orders", params={"q": "grace@example.com"})
    assert order["order_number"] in listing.text
    assert "grace@example.com" in listing.text
    status = await client.get(f"/order-status/{order['id']}",
                              params={"email": "Grace@Example.com"})
    assert "does not match" not in status.text


async def test_buyer_email_of_the_2025_09_29_buyer_object_is_shown(site, backend: str
                                                                    ) -> None:
    client, _ = site
    agent = Agent(client)
    resp = await client.post("/checkout_sessions", json={
        "items": [{"id": "item_123", "quantity": 1}],
        "buyer": {"first_name": "Alan", "last_name": "Turing", "email": "alan@example.com"},
        "fulfillment_address": US_ADDRESS},
        headers=agent.headers("idem-old", **{"API-Version": "2025-09-29"}))
    assert resp.status_code == 201, resp.text
    await log_in(client)
    order = (await agent.complete(resp.json()["id"])).json()["order"]
    page = await client.get(f"/dashboard/orders/{order['id']}")
    assert re.search(r'id="buyer-email">alan@example\.com<', page.text)
    assert "<strong>Alan Turing</strong>" in page.text


async def test_mark_shipped_and_logout(site, backend: str) -> None:
    client, _ = site
    agent = Agent(client)
    session = await agent.ready_session()
    order = (await agent.complete(session["id"])).json()["order"]
    await log_in(client)
    page = await client.get(f"/dashboard/orders/{order['id']}")
    token = csrf_of(page.text)
    shipped = await client.post(f"/dashboard/orders/{order['id']}/ship", data={
        "csrf_token": token, "carrier": "UPS", "tracking_number": "1Z1"})
    page = await client.get(shipped.headers["location"])
    assert "Marked as shipped." in page.text
    assert "1Z1" in page.text
    resent = await client.post(f"/dashboard/orders/{order['id']}/redeliver",
                               data={"csrf_token": token})
    page = await client.get(resent.headers["location"])
    assert "The agent will be sent the order again." in page.text
    assert "webhook.redeliver_requested" in page.text  # same action, same timeline, as the API
    assert (await client.post("/dashboard/logout", data={"csrf_token": token})).status_code == 303
    client.cookies.clear()
    assert (await client.get("/dashboard/orders")).status_code == 303


async def test_configured_user_fee_net_and_more_csv(database_url: str, backend: str) -> None:
    async with sandbox_runtime(
            database_url,
            dashboard_user=f"finance:{hash_password('from-config-123', FAST)}") as rt:
        await rt.ensure_configured_user()
        async with app_client(rt, "https://shop.test") as client:
            agent = Agent(client)
            session = await agent.ready_session()
            order = (await agent.complete(session["id"])).json()["order"]
            resp = await submit_login(client, "finance", "from-config-123")
            assert resp.status_code == 303
            page = await client.get(f"/dashboard/orders/{order['id']}")
            from models.money import format_minor
            from payments.sandbox import sandbox_fee

            total = {t["type"]: t["amount"] for t in order["totals"]}["total"]
            assert f"Fee {format_minor(sandbox_fee(total), 'usd')}" in page.text
            assert f"net <strong>{format_minor(total - sandbox_fee(total), 'usd')}" in page.text
            finance = await client.get("/dashboard/finance")
            assert "Attributed revenue per day" in finance.text
            # Today's sale is in tomorrow's payout: still pending, and it reconciles.
            assert '<span class="pill ">matched</span> <span class="pill warn">pending</span>' \
                in finance.text
            recon = await client.get("/dashboard/finance", params={"format": "recon",
                                                                   "to": "2099-01-01"})
            assert recon.headers["content-type"].startswith("text/csv")
            assert recon.text.splitlines()[0].startswith("payout_id,")
            videos = await client.get("/dashboard/videos", params={"format": "csv"})
            assert videos.text.splitlines()[0].startswith("id,title,generator")
            catalog = await client.get("/dashboard/catalog")
            assert "Last feed build" in catalog.text
