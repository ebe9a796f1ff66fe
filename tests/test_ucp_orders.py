"""UCP orders after checkout: signed order webhooks to the platform (verified with an
independent RFC 9421 implementation, ``http-message-signatures``), attribution into the
video ledger and echoed on the order, and the order in the dashboard and finance reports
like any ACP order."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from http_message_signatures import HTTPMessageVerifier, InvalidSignature, MappingKeyResolver
from http_message_signatures.algorithms import ECDSA_P256_SHA256
from sqlalchemy import select

from api.dashboard.auth import create_user
from api.runtime import Runtime
from api.worker import run_once
from models import AttributionTouch, LedgerEntry, OutboxMessage
from tests import ucp_schema
from tests.conftest import sandbox_runtime
from tests.test_dashboard import log_in
from tests.test_ucp import merchant_config, payment, shipping
from tests.ucp_platform import Platform, ucp_platform

MERCHANT = {"Authorization": "Bearer merchant-key"}


@pytest.fixture
async def shop(database_url: str, tmp_path: Path) -> AsyncIterator[Runtime]:
    async with sandbox_runtime(database_url, merchant_config=merchant_config(tmp_path),
                               merchant_api_keys=["merchant-key"],
                               ucp_simulation_secret="sim-secret") as rt:
        async with rt.sessionmaker() as db, db.begin():
            await create_user(db, "ada", "correct horse battery")
        yield rt


def _public_key(jwk: dict) -> ec.EllipticCurvePublicKey:
    def number(value: str) -> int:
        return int.from_bytes(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)), "big")

    return ec.EllipticCurvePublicNumbers(number(jwk["x"]), number(jwk["y"]),
                                         ec.SECP256R1()).public_key()


async def buy(platform: Platform, client: httpx.AsyncClient, **extra: object) -> dict:
    created = await client.post("/ucp/checkout-sessions", headers=platform.headers(), json={
        "line_items": [{"item": {"id": "item_123"}, "quantity": 2}],
        "buyer": {"email": "ada@example.com", "first_name": "Ada"},
        "fulfillment": shipping(), **extra})
    assert created.status_code == 201, created.text
    done = await client.post(f"/ucp/checkout-sessions/{created.json()['id']}/complete",
                             headers=platform.headers(), json=payment())
    assert done.status_code == 200, done.text
    return done.json()


async def test_signed_order_webhooks(shop: Runtime, backend: str) -> None:
    async with ucp_platform(shop) as (platform, client):
        jwk = (await client.get("/.well-known/ucp")).json()["signing_keys"][0]
        completed = await buy(platform, client)
        order_id = completed["order"]["id"]
        await client.post(f"/testing/simulate-shipping/{order_id}",
                          headers={"Simulation-Secret": "sim-secret"})
        refund = await client.post(f"/orders/{order_id}/refunds", json={"amount": 100},
                                   headers={**MERCHANT, "Idempotency-Key": "r1"})
        assert refund.status_code == 201, refund.text
        while await run_once(shop):
            pass
        hooks = [r for r in platform.received if r["path"] == "/webhooks/ucp/orders"]
        assert len(hooks) >= 3  # created, shipped, refunded
        verifier = HTTPMessageVerifier(
            signature_algorithm=ECDSA_P256_SHA256,
            key_resolver=MappingKeyResolver(public_keys={jwk["kid"]: _public_key(jwk)},
                                            private_keys={}))
        url = f"http://127.0.0.1:{platform.port}/webhooks/ucp/orders"
        for hook in hooks:
            request = httpx.Request("POST", url, headers=hook["headers"], content=hook["body"])
            (result,) = verifier.verify(request, body=hook["body"], require_components=(
                "@method", "@authority", "@path", "content-digest", "content-type"))
            assert result.parameters["keyid"] == jwk["kid"]
            assert hook["headers"]["Webhook-Id"]
            assert hook["headers"]["UCP-Agent"] == 'profile="https://shop.test/.well-known/ucp"'
            body = json.loads(hook["body"])
            ucp_schema.order(body)
            assert body["id"] == order_id
            assert set(body["ucp"]["capabilities"]) == {"dev.ucp.shopping.order"}
        last = json.loads(hooks[-1]["body"])
        assert last["fulfillment"]["events"][0]["type"] == "shipped"
        assert last["adjustments"][0]["type"] == "refund"
        assert last["adjustments"][0]["amount"] == 100
        # Tampering is detected by the independent verifier.
        forged = httpx.Request("POST", url, headers=hooks[0]["headers"],
                               content=hooks[0]["body"].replace(b"ord_", b"orx_"))
        with pytest.raises(InvalidSignature):
            verifier.verify(forged, body=forged.content)
        async with shop.read_sessionmaker() as db:
            topics = set(await db.scalars(select(OutboxMessage.topic)))
        assert "ucp_order_webhook" in topics


async def test_attribution_reaches_the_ledger_and_the_order(shop: Runtime, backend: str
                                                             ) -> None:
    async with ucp_platform(shop) as (platform, client):
        video = await client.post("/videos", headers={**MERCHANT, "Idempotency-Key": "v1"},
                                  json={"id": "vid-yt-1", "title": "Denim in 30s",
                                        "products": [{"product_id": "spec-items"}]})
        assert video.status_code == 201, video.text
        attribution = {"utm_source": "youtube", "utm_medium": "shopping_ads",
                       "utm_campaign": "fall", "utm_content": "vid-yt-1",
                       "gclid": "Cj0KCQ-secret-click"}
        completed = await buy(platform, client, attribution=attribution)
        order_id = completed["order"]["id"]
        order = (await client.get(f"/ucp/orders/{order_id}", headers=platform.headers())).json()
        ucp_schema.order(order)
        assert order["attribution"] == attribution  # echoed on the order
        async with shop.read_sessionmaker() as db:
            touch = (await db.scalars(select(AttributionTouch))).one()
            rows = list(await db.scalars(select(LedgerEntry).where(
                LedgerEntry.order_id == order_id, LedgerEntry.model == "last_touch")))
        assert (touch.channel, touch.touchpoint, touch.video_id, touch.video_known) == (
            "ucp", "first", "vid-yt-1", True)
        assert (touch.provider, touch.campaign_id, touch.sub_id) == (
            "ucp:youtube", "fall", "shopping_ads")
        # The click id reaches the ledger only as a fingerprint.
        assert touch.token_fingerprint == hashlib.sha256(b"Cj0KCQ-secret-click").hexdigest()
        assert [(r.video_id, r.gross) for r in rows] == [("vid-yt-1", order_total(order))]
        report = (await client.get("/finance/revenue?group_by=video&model=last_touch",
                                   headers=MERCHANT)).json()
        assert {r["key"]: r["gross"] for r in report["rows"]}["vid-yt-1"] == order_total(order)
        pii = await client.post("/ucp/checkout-sessions", headers=platform.headers(), json={
            "line_items": [{"item": {"id": "item_123"}}],
            "attribution": {"utm_content": "buyer ada@example.com"}})
        assert pii.status_code == 400
        ucp_schema.error_response(pii.json())


def order_total(order: dict) -> int:
    return next(t["amount"] for t in order["totals"] if t["type"] == "total")


async def test_ucp_order_in_dashboard_and_finance(shop: Runtime, backend: str) -> None:
    async with ucp_platform(shop) as (platform, client):
        completed = await buy(platform, client)
        order = (await client.get(f"/ucp/orders/{completed['order']['id']}",
                                  headers=platform.headers())).json()
        await log_in(client)
        listing = await client.get("/dashboard/orders", params={"q": "ada@example.com"})
        assert order["label"] in listing.text
        page = await client.get(f"/dashboard/orders/{order['id']}")
        assert page.status_code == 200
        assert order["label"] in page.text
        # The platform, as the order's agent, by name (not its agt_ucp_… id).
        assert re.search(r"UCP [^<]+ \(agent\)", page.text)
        finance = await client.get("/dashboard/finance")
        expected = f"{order_total(order) / 100:.2f} USD"
        assert re.search(rf'id="total-gross">{re.escape(expected)}<', finance.text)
        merchant = await client.get("/orders", headers=MERCHANT)
        assert order["id"] in merchant.text


@pytest.fixture
async def manual_shop(database_url: str, tmp_path: Path) -> AsyncIterator[Runtime]:
    async with sandbox_runtime(database_url, merchant_config=merchant_config(tmp_path),
                               merchant_api_keys=["merchant-key"],
                               sandbox_capture_method="manual") as rt:
        yield rt


async def test_the_ucp_order_after_a_partial_capture_shows_what_was_charged(
        manual_shop: Runtime, backend: str) -> None:
    """UCP 2026-04-08 is silent on partial capture: as in ACP (README: decisions), the
    order's ``total`` is what was captured, itemised in its ``lines`` (authorised, released;
    they sum to it, as totals.json requires), the other totals stay as ordered, and the
    released rest is a completed ``price_adjustment`` adjustment with a negative total.
    Every order the platform gets (webhooks, ``GET``) validates against the UCP schemas."""
    shop = manual_shop
    async with ucp_platform(shop) as (platform, client):
        completed = await buy(platform, client)
        order_id = completed["order"]["id"]
        placed = (await client.get(f"/ucp/orders/{order_id}", headers=platform.headers())
                  ).json()
        ucp_schema.order(placed)
        authorised = order_total(placed)
        assert placed["adjustments"] == []
        amount = authorised - 250
        captured = await client.post(f"/orders/{order_id}/capture", json={"amount": amount},
                                     headers={**MERCHANT, "Idempotency-Key": "cap-1"})
        assert captured.status_code == 202, captured.text
        assert await shop.captures.run() == 1
        refund = await client.post(f"/orders/{order_id}/refunds", json={"amount": 100},
                                   headers={**MERCHANT, "Idempotency-Key": "r1"})
        assert refund.status_code == 201, refund.text
        while await run_once(shop):
            pass
        order = (await client.get(f"/ucp/orders/{order_id}", headers=platform.headers())
                 ).json()
        hooks = [json.loads(r["body"]) for r in platform.received
                 if r["path"] == "/webhooks/ucp/orders"]
    ucp_schema.order(order)
    for hook in hooks:
        ucp_schema.order(hook)
    assert hooks[-1]["totals"] == order["totals"]
    assert hooks[-1]["adjustments"] == order["adjustments"]
    total = next(t for t in order["totals"] if t["type"] == "total")
    assert total["amount"] == amount  # what the buyer was charged
    assert sum(line["amount"] for line in total["lines"]) == amount
    assert [line["amount"] for line in total["lines"]] == [authorised, -250]
    assert [t for t in order["totals"] if t["type"] != "total"] == [
        t for t in placed["totals"] if t["type"] != "total"]
    released, refunded = order["adjustments"]
    assert (released["type"], released["status"], released["totals"]) == (
        "price_adjustment", "completed", [{"type": "total", "amount": -250}])
    assert released["occurred_at"]
    assert f"{amount // 100}.{amount % 100:02d} USD" in released["description"]
    assert (refunded["type"], refunded["totals"]) == (
        "refund", [{"type": "total", "amount": -100}])
