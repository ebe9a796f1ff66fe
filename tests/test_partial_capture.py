"""Partial capture, as Stripe does it: the merchant captures less than was authorised (a
line cannot ship) through the merchant API; the rest of the authorisation is released.
Stripe is faked at its HTTP layer (``tests.fake_stripe``: ``amount_to_capture``,
``amount_received``, the charge's ``amount_captured``); the sandbox PSP with
``REELCART_SANDBOX_CAPTURE_METHOD=manual`` behaves the same way. The ledger, commissions,
refunds and the payout reconciliation count only what was captured."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import httpx
import pytest
from sqlalchemy import func, select

from api.runtime import Runtime
from models import CommissionEntry, LedgerEntry, SandboxCharge
from models.db import transaction
from payments.sandbox import sandbox_fee
from tests.acp_schema import VERSIONS, assert_valid, require_spec
from tests.commission_world import contract, payee
from tests.conftest import US_ADDRESS, Agent, app_client, free_port, sandbox_runtime
from tests.fake_stripe import PINNED_VERSION, FakeStripe, parse_form
from tests.test_agent_webhooks import Receiver, configure, drain
from tests.test_stripe_money import MERCHANT, deliver, order_detail
from tests.test_stripe_money import STRIPE as STRIPE_SETTINGS

STRIPE = {**STRIPE_SETTINGS, "stripe_capture_method": "manual"}


async def capture(agent: Agent, order_id: str, body: dict) -> httpx.Response:
    return await agent.http.post(f"/orders/{order_id}/capture", json=body,
                                 headers={**MERCHANT, "Idempotency-Key": f"cap-{uuid4()}"})


async def refund(agent: Agent, order_id: str, body: dict) -> httpx.Response:
    return await agent.http.post(f"/orders/{order_id}/refunds", json=body,
                                 headers={**MERCHANT, "Idempotency-Key": f"rf-{uuid4()}"})


async def ledger_sum(rt: Runtime, order_id: str, column: str = "gross") -> int:
    async with rt.read_sessionmaker() as db:
        return int(await db.scalar(select(func.sum(getattr(LedgerEntry, column))).where(
            LedgerEntry.order_id == order_id, LedgerEntry.model == "last_touch")) or 0)


async def commissions(rt: Runtime, order_id: str) -> list[tuple[str, int]]:
    async with rt.read_sessionmaker() as db:
        return [(e.kind, e.amount) for e in await db.scalars(
            select(CommissionEntry).where(CommissionEntry.order_id == order_id)
            .order_by(CommissionEntry.id))]


async def authorised_order(agent: Agent, token: str, *, video: str | None = None) -> dict:
    body: dict = {"currency": "usd", "capabilities": {},
                  "line_items": [{"id": "item_123", "quantity": 3}],
                  "fulfillment_details": {"address": US_ADDRESS}}
    if video:
        body["affiliate_attribution"] = {"provider": "impact.com", "publisher_id": "pub_9",
                                         "creative_id": video}
    session = (await agent.post("/checkout_sessions", body)).json()
    done = await agent.complete(session["id"], token)
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "completed", done.json()
    order = done.json()["order"]
    assert (await order_detail(agent, order["id"]))["payment_status"] == "authorized"
    return order


async def refused_amounts(agent: Agent, order_id: str, authorised: int) -> None:
    for amount in (0, -5, authorised + 1):
        resp = await capture(agent, order_id, {"amount": amount})
        assert resp.status_code == 400, resp.text
        assert resp.json()["code"] == "capture_amount_invalid"
        assert resp.json()["param"] == "$.amount"
        assert resp.json()["amount_authorized"] == authorised
        shown = f"{abs(amount) // 100:,}.{abs(amount) % 100:02d} USD"
        assert resp.json()["message"] == (
            f"The capture amount must be between 0.01 USD and the authorised "
            f"{authorised // 100:,}.{authorised % 100:02d} USD; got "
            f"{'-' if amount < 0 else ''}{shown}.")
    resp = await capture(agent, order_id, {"amount": "12.50"})
    assert resp.status_code == 400, resp.text


# ---------------------------------------------------------------- Stripe


@pytest.fixture
async def stripe_manual(database_url: str, fake_stripe: FakeStripe) -> AsyncIterator[Runtime]:
    async with sandbox_runtime(database_url, **STRIPE) as rt:
        yield rt


async def test_partial_capture_with_stripe(stripe_manual: Runtime, fake_stripe: FakeStripe,
                                           backend: str) -> None:
    rt = stripe_manual
    async with app_client(rt) as client:
        agent = Agent(client)
        order = await authorised_order(agent, "spt_ok")
        pi = fake_stripe.payment_intents["pi_1"]
        authorised = pi["amount_capturable"]
        assert authorised == order_total(order)
        await refused_amounts(agent, order["id"], authorised)
        assert await rt.captures.run() == 0  # nothing was asked for
        # One of three units cannot ship: capture two thirds of the goods' worth.
        amount = authorised - 300
        resp = await capture(agent, order["id"], {"amount": amount})
        assert resp.status_code == 202, resp.text
        assert resp.json()["payment"]["capture"]["amount_to_capture"] == amount
        assert await rt.captures.run() == 1
        [call] = fake_stripe.calls("POST", "/v1/payment_intents/pi_1/capture")
        assert parse_form(call.content)["amount_to_capture"] == str(amount)
        # Stripe's side: received what was captured, the rest released.
        charge = fake_stripe.charges[pi["latest_charge"]]
        assert (pi["status"], pi["amount_received"], pi["amount_capturable"]) == \
            ("succeeded", amount, 0)
        assert (charge["amount"], charge["amount_captured"]) == (authorised, amount)
        # Stripe's events for it (payment_intent.succeeded carries amount_received) change
        # nothing more, however often they come.
        payload = fake_stripe.event("payment_intent.succeeded", pi)
        await deliver(agent, rt, payload, payload)
        got = await order_detail(agent, order["id"])
        assert got["payment_status"] == "paid"
        cap = got["payment"]["capture"]
        assert (cap["status"], cap["amount_authorized"], cap["amount_captured"],
                cap["amount_released"]) == ("captured", authorised, amount, 300)
        assert await ledger_sum(rt, order["id"]) == amount
        # Capturing again is refused; refunds stop at what was captured.
        again = await capture(agent, order["id"], {})
        assert again.status_code == 409, again.text
        assert again.json()["code"] == "capture_not_allowed"
        over = await refund(agent, order["id"], {"amount": amount + 1})
        assert over.status_code == 400, over.text
        assert over.json()["refundable_amount"] == amount
        done = await refund(agent, order["id"], {})
        assert done.status_code == 201, done.text
        assert done.json()["refunded_amount"] == amount
        assert done.json()["payment_status"] == "refunded"
        assert charge["amount_refunded"] == amount
        assert await ledger_sum(rt, order["id"]) == 0


async def test_partial_capture_from_the_stripe_dashboard(
        stripe_manual: Runtime, fake_stripe: FakeStripe, backend: str) -> None:
    """Captured in part outside ReelCart (the Stripe dashboard): ``payment_intent.succeeded``
    with ``amount_received`` below the authorised amount releases the rest here too."""
    rt = stripe_manual
    async with app_client(rt) as client:
        agent = Agent(client)
        order = await authorised_order(agent, "spt_ok")
        authorised = order_total(order)
        status, pi = fake_stripe.capture(PINNED_VERSION, {"amount_to_capture": "500"}, "pi_1")
        assert (status, pi["amount_received"]) == (200, 500)
        await deliver(agent, rt, fake_stripe.event("payment_intent.succeeded", pi))
        cap = (await order_detail(agent, order["id"]))["payment"]["capture"]
        assert (cap["status"], cap["amount_captured"], cap["amount_released"]) == \
            ("captured", 500, authorised - 500)
        assert await ledger_sum(rt, order["id"]) == 500
        assert not fake_stripe.calls("POST", "/v1/payment_intents/pi_1/capture")


async def test_capture_is_refused_for_a_payment_captured_at_once(
        shopper: Agent, fake_stripe: FakeStripe, backend: str) -> None:
    session = await shopper.ready_session()
    order = (await shopper.complete(session["id"], "spt_ok")).json()["order"]
    resp = await capture(shopper, order["id"], {"amount": 100})
    assert resp.status_code == 400, resp.text
    assert resp.json()["code"] == "capture_not_allowed"
    assert not fake_stripe.calls("POST", "/v1/payment_intents/pi_1/capture")
    missing = await capture(shopper, "ord_missing", {})
    assert missing.status_code == 404


def order_total(order: dict) -> int:
    return {t["type"]: t["amount"] for t in order["totals"]}["total"]


# ---------------------------------------------------------------- sandbox


@pytest.fixture
async def sandbox_manual(database_url: str) -> AsyncIterator[Runtime]:
    async with sandbox_runtime(database_url, merchant_api_keys=["merchant-key"],
                               sandbox_capture_method="manual") as rt:
        yield rt


async def test_partial_capture_with_the_sandbox_ledger_commissions_and_payout(
        sandbox_manual: Runtime, backend: str) -> None:
    rt = sandbox_manual
    async with app_client(rt) as client:
        agent = Agent(client)
        made = await client.post("/videos", json={
            "id": "vid-p", "generator": "sora-2", "published_url": "https://tiktok.test/p",
            "products": [{"product_id": "spec-items"}]},
            headers={**MERCHANT, "Idempotency-Key": "vid-p"})
        assert made.status_code in (200, 201), made.text
        async with transaction(rt.sessionmaker) as db:
            await payee(db, "ava")
            await contract(db, "c-p", "video", "vid-p", [("ava", 1)], rate_bps=1000)
        order = await authorised_order(agent, "spt_test_success", video="vid-p")
        authorised = order_total(order)
        async with rt.read_sessionmaker() as db:
            charge = await db.scalar(select(SandboxCharge))
        assert (charge.status, charge.amount, charge.fee_amount) == \
            ("requires_capture", authorised, 0)
        [(kind, sale)] = await commissions(rt, order["id"])
        assert kind == "sale"
        assert sale > 0
        await refused_amounts(agent, order["id"], authorised)
        # Refunds wait for the capture.
        early = await refund(agent, order["id"], {"amount": 100})
        assert early.json()["code"] == "payment_not_captured"
        amount = authorised - 300
        resp = await capture(agent, order["id"], {"amount": amount})
        assert resp.status_code == 202, resp.text
        assert await rt.captures.run() == 1
        assert await rt.captures.run() == 0
        async with rt.read_sessionmaker() as db:
            charge = await db.scalar(select(SandboxCharge))
        assert (charge.status, charge.amount_captured, charge.fee_amount) == \
            ("succeeded", amount, sandbox_fee(amount))
        got = await order_detail(agent, order["id"])
        assert got["payment_status"] == "paid"
        assert got["payment"]["capture"]["amount_captured"] == amount
        assert got["payment"]["fee_amount"] == sandbox_fee(amount)
        assert got["payment"]["net_amount"] == amount - sandbox_fee(amount)
        # The ledger: gross is what was captured, the fee the captured amount's.
        assert await ledger_sum(rt, order["id"]) == amount
        assert await ledger_sum(rt, order["id"], "fee") == sandbox_fee(amount)
        # Commissions lost the released part, in proportion.
        rows = await commissions(rt, order["id"])
        assert [k for k, _ in rows] == ["sale", "capture_release"]
        assert 0 < sum(a for _, a in rows) < sale
        # A refund of part of it, then the payout ties out to the cent.
        assert (await refund(agent, order["id"], {"amount": 137})).status_code == 201
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        recon = (await client.get("/finance/reconciliation", params={
            "from": today.isoformat(), "to": (today + timedelta(days=2)).isoformat()},
            headers=MERCHANT)).json()
        [payout] = recon["payouts"]
        assert payout["settled"] == amount - sandbox_fee(amount) - 137
        assert payout["difference"] == 0
        assert payout["status"] == "matched"
        assert {(i["category"], i["amount"], i["expected"], i["status"])
                for i in payout["items"]} == {("charge", amount, amount, "matched"),
                                              ("refund", -137, -137, "matched")}
        assert recon["unmatched_ours"] == []
        # Refunding everything captured reverses the ledger and the commissions exactly.
        rest = await refund(agent, order["id"], {})
        assert rest.status_code == 201, rest.text
        assert rest.json()["refunded_amount"] == amount
        assert await ledger_sum(rt, order["id"]) == 0
        assert sum(a for _, a in await commissions(rt, order["id"])) == 0
        assert (await refund(agent, order["id"], {"amount": 1})).status_code == 400


async def test_sandbox_capture_in_full_and_release(sandbox_manual: Runtime,
                                                   backend: str) -> None:
    """Capturing without an amount takes all of it; a canceled order's authorisation is
    released and never settles."""
    rt = sandbox_manual
    async with app_client(rt) as client:
        agent = Agent(client)
        whole = await authorised_order(agent, "spt_test_success")
        assert (await capture(agent, whole["id"], {})).status_code == 202
        released = await authorised_order(agent, "spt_test_success")
        canceled = await client.post(f"/orders/{released['id']}/cancel", json={},
                                     headers={**MERCHANT, "Idempotency-Key": "cancel"})
        assert canceled.status_code == 200, canceled.text
        assert await rt.captures.run() == 2
        async with rt.read_sessionmaker() as db:
            charges = {c.amount_captured: c.status for c in await db.scalars(
                select(SandboxCharge))}
        assert charges == {order_total(whole): "succeeded", None: "canceled"}
        assert (await order_detail(agent, whole["id"]))["payment"]["capture"]["amount_released"] \
            == 0
        assert (await order_detail(agent, released["id"]))["payment_status"] == "voided"
        assert await ledger_sum(rt, whole["id"]) == order_total(whole)


# ---------------------------------------------------------------- the Order agents see


@pytest.fixture
def agent_receiver() -> Iterator[Receiver]:
    """An agent's order-webhook endpoint on loopback (``tests.test_agent_webhooks``)."""
    r = Receiver(free_port())
    yield r
    r.stop()


async def test_the_acp_order_after_a_partial_capture_shows_what_was_charged(
        sandbox_manual: Runtime, agent_receiver: Receiver, backend: str) -> None:
    """ACP 2026-04-17: the ``total`` is "the original charged amount", so after a partial
    capture it is the captured amount; the released rest is a ``price_adjustment``
    adjustment (README: decisions). Every order an agent gets (the webhook after the
    capture, the completed session's ``order`` in every dated version) is valid for its
    version's schema; a later refund is counted against what was charged."""
    rt = sandbox_manual
    receiver = agent_receiver
    receiver.start()
    async with app_client(rt) as client:
        agent = Agent(client)
        await configure(agent, f"http://127.0.0.1:{receiver.port}/agentic_checkout/webhooks/"
                               "order_events")
        order = await authorised_order(agent, "spt_test_success")
        authorised = order_total(order)
        amount = authorised - 300
        assert (await capture(agent, order["id"], {"amount": amount})).status_code == 202
        assert await rt.captures.run() == 1
        await drain(rt)
        *_, captured = receiver.events()
        for event in receiver.events():
            assert_valid(event["data"], "Order")
        as_placed = {t["type"]: t["amount"] for t in order["totals"]}
        assert_charged(captured["data"], amount, authorised, as_placed)

        session_id = order["checkout_session_id"]
        assert order_has_totals("2026-04-17")
        for version in VERSIONS:
            got = await client.get(f"/checkout_sessions/{session_id}",
                                   headers=agent.headers(**{"API-Version": version}))
            assert got.status_code == 200, got.text
            assert_valid(got.json(), "CheckoutSessionWithOrder", version=version)
            assert_valid(got.json()["order"], "Order", version=version)
            if order_has_totals(version):
                assert_charged(got.json()["order"], amount, authorised, as_placed)
            else:  # an Order of this version has no amounts at all
                assert "totals" not in got.json()["order"]

        assert (await refund(agent, order["id"], {"amount": 137})).status_code == 201
        await drain(rt)
        refunded = receiver.events()[-1]["data"]
        assert_valid(refunded, "Order")
        totals = {t["type"]: t["amount"] for t in refunded["totals"]}
        assert (totals["total"], totals["amount_refunded"]) == (amount, 137)
        assert [a["type"] for a in refunded["adjustments"]] == ["price_adjustment", "refund"]


def order_has_totals(version: str) -> bool:
    bundle = require_spec() / "spec" / version / "json-schema" / "schema.agentic_checkout.json"
    return "totals" in json.loads(bundle.read_text())["$defs"]["Order"]["properties"]


def assert_charged(acp_order: dict, amount: int, authorised: int,
                   as_placed: dict[str, int]) -> None:
    totals = {t["type"]: t["amount"] for t in acp_order["totals"]}
    assert totals["total"] == amount  # what the buyer was charged
    assert {k: v for k, v in totals.items() if k != "total"} == {
        k: v for k, v in as_placed.items() if k not in ("total", "items_discount")}
    [released] = [a for a in acp_order["adjustments"] if a["type"] == "price_adjustment"]
    assert (released["amount"], released["currency"], released["status"]) == \
        (authorised - amount, "usd", "completed")
    assert released["occurred_at"]
    assert f"{amount // 100}.{amount % 100:02d} USD" in released["description"]
