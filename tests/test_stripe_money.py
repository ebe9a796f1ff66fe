"""Money with Stripe as it behaves today (issue 11): one test per defect, each failing on
the old code, all through the HTTP API with Stripe faked at the HTTP layer
(``tests.fake_stripe``, built from Stripe's published shapes)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import httpx
import pytest
from pytest_httpx import HTTPXMock
from sqlalchemy import func, select, update

from api.runtime import Runtime
from api.settings import Settings, settings_error_line
from api.worker import run_once
from models import (
    CheckoutSession,
    LedgerEntry,
    Order,
    PaymentAttempt,
    PaymentAuthorization,
    ProviderIncident,
    Variant,
)
from models.base import utc_now
from payment_events.stripe_events import SUBSCRIBED_EVENTS
from tests.conftest import STRIPE_KEY, Agent, app_client, sandbox_runtime
from tests.fake_stripe import PINNED_VERSION, FakeStripe, parse_form, sign

MERCHANT = {"Authorization": "Bearer merchant-key"}
STRIPE = {"payments_provider": "stripe", "stripe_api_key": STRIPE_KEY,
          "stripe_webhook_secret": "whsec_test_secret", "stripe_account_id": "acct_test_1",
          "merchant_api_keys": ["merchant-key"]}


async def post_event(agent: Agent, payload: bytes) -> None:
    resp = await agent.http.post("/webhooks/stripe", content=payload,
                                 headers={"Stripe-Signature": sign(payload)})
    assert resp.status_code == 200, resp.text


async def deliver(agent: Agent, rt: Runtime, *payloads: bytes) -> None:
    for payload in payloads:
        await post_event(agent, payload)
    while await run_once(rt):
        pass


async def order_detail(agent: Agent, order_id: str) -> dict:
    resp = await agent.http.get(f"/orders/{order_id}", headers=MERCHANT)
    assert resp.status_code == 200, resp.text
    return resp.json()


async def ship(agent: Agent, order_id: str, body: dict | None = None) -> httpx.Response:
    return await agent.http.post(f"/orders/{order_id}/fulfillments", json=body or {},
                                 headers={**MERCHANT, "Idempotency-Key": f"ship-{uuid4()}"})


async def refund(agent: Agent, order_id: str, body: dict, key: str) -> httpx.Response:
    return await agent.http.post(f"/orders/{order_id}/refunds", json=body,
                                 headers={**MERCHANT, "Idempotency-Key": key})


async def paid_order(agent: Agent, token: str = "spt_ok", items: list | None = None) -> dict:
    session = await agent.ready_session(items or [{"id": "item_123", "quantity": 3}])
    resp = await agent.complete(session["id"], token)
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "completed", resp.json()
    return resp.json()["order"]


async def ledger_sum(rt: Runtime, order_id: str, column: str = "gross") -> int:
    async with rt.read_sessionmaker() as db:
        return int(await db.scalar(select(func.sum(getattr(LedgerEntry, column))).where(
            LedgerEntry.order_id == order_id, LedgerEntry.model == "last_touch")) or 0)


async def stock(rt: Runtime, variant: str) -> int:
    async with rt.read_sessionmaker() as db:
        return int(await db.scalar(select(Variant.stock).where(Variant.id == variant)) or 0)


@pytest.fixture
async def manual_runtime(database_url: str, fake_stripe: FakeStripe
                         ) -> AsyncIterator[Runtime]:
    async with sandbox_runtime(database_url, stripe_capture_method="manual", **STRIPE) as rt:
        yield rt


@pytest.fixture
async def buyer(manual_runtime: Runtime) -> AsyncIterator[Agent]:
    async with app_client(manual_runtime) as client:
        yield Agent(client)


# ---------------------------------------------------------------- 1. phantom refunds


async def test_lost_refund_answer_is_booked_once(
        shopper: Agent, stripe_runtime: Runtime, fake_stripe: FakeStripe, backend: str) -> None:
    """Refund 300, the answer is lost, ``charge.refunded`` (no ``refunds`` list since
    2022-11-15) arrives, the merchant retries with the same key: 300 everywhere."""
    order = await paid_order(shopper)
    fake_stripe.lost_answers["/v1/refunds"] = 3  # first try + 2 SDK retries, same key
    lost = await refund(shopper, order["id"], {"amount": 300}, "refund-300")
    assert lost.status_code == 503
    assert lost.headers["Retry-After"]
    pi = fake_stripe.payment_intents["pi_1"]
    charge_event = fake_stripe.charge_event("charge.refunded", "pi_1")
    assert b'"refunds"' not in charge_event  # as Stripe renders it on the pinned version
    await deliver(shopper, stripe_runtime, charge_event)
    retried = await refund(shopper, order["id"], {"amount": 300}, "refund-300")
    assert retried.status_code == 201, retried.text
    stripe_refunded = fake_stripe.charges[pi["latest_charge"]]["amount_refunded"]
    assert stripe_refunded == 300
    assert len(fake_stripe.refunds) == 1
    detail = await order_detail(shopper, order["id"])
    assert detail["refunded_amount"] == stripe_refunded
    assert [r["amount"] for r in detail["refunds"]] == [300]
    acp = detail["acp_order"]
    assert sum(a["amount"] for a in acp["adjustments"] if a["type"] == "refund"
               and a["status"] == "completed") == stripe_refunded
    assert {t["type"]: t["amount"] for t in acp["totals"]}["amount_refunded"] == 300
    total = detail["total_amount"]
    assert await ledger_sum(stripe_runtime, order["id"]) == total - stripe_refunded
    revenue = (await shopper.http.get("/finance/revenue?group_by=agent",
                                      headers=MERCHANT)).json()
    assert sum(r["gross"] for r in revenue["rows"]) == total - stripe_refunded


# ---------------------------------------------------------------- 2. API versions


async def test_current_api_versions_charge_without_payment_method_types(
        database_url: str, fake_stripe: FakeStripe, backend: str) -> None:
    async with sandbox_runtime(database_url, stripe_spt_api_version="2026-08-26.preview",
                               **STRIPE) as rt, app_client(rt) as client:
        agent = Agent(client)
        order = await paid_order(agent, "spt_ok_dahlia")
        [request] = fake_stripe.created_payment_intents()
        form = parse_form(request.content)
        assert "payment_method_types[0]" not in form
        assert form["automatic_payment_methods[enabled]"] == "true"
        assert form["automatic_payment_methods[allow_redirects]"] == "never"
        assert request.headers["Stripe-Version"] == "2026-08-26.preview"
        detail = await order_detail(agent, order["id"])
        assert detail["payment"]["api_version"] == "2026-08-26.preview"
    # Without an SPT preview version every call uses the pinned one (the SDK's).
    async with sandbox_runtime(database_url, stripe_spt_api_version=None, **STRIPE) as rt, \
            app_client(rt) as client:
        await paid_order(Agent(client), "spt_ok_endive")
        assert fake_stripe.created_payment_intents()[-1].headers["Stripe-Version"] == \
            PINNED_VERSION


def test_the_pinned_api_version_is_the_sdks() -> None:
    import stripe

    assert stripe._api_version._ApiVersion.CURRENT == PINNED_VERSION
    assert Settings(_env_file=None).stripe_api_version == PINNED_VERSION
    assert hasattr(stripe.StripeClient("sk_test_x"), "v1")


async def test_a_stripe_400_is_an_integration_error_not_a_decline(
        database_url: str, fake_stripe: FakeStripe, backend: str,
        caplog: pytest.LogCaptureFixture) -> None:
    """A request Stripe refuses as malformed (here: the token sent under a parameter name
    this account's version does not know) is the merchant's integration to fix."""
    caplog.set_level(logging.INFO)
    async with sandbox_runtime(database_url,
                               stripe_spt_param="payment_method_data.shared_payment_token",
                               dashboard_user=None, **STRIPE) as rt, \
            app_client(rt) as client:
        agent = Agent(client)
        session = await agent.ready_session()
        resp = await agent.complete(session["id"], "spt_secret_value_1")
        assert resp.status_code == 503, resp.text
        assert resp.json()["code"] == "payment_provider_error"
        assert int(resp.headers["Retry-After"]) > 0
        fetched = (await agent.get(f"/checkout_sessions/{session['id']}")).json()
        assert fetched["status"] == "ready_for_payment"
        assert not [m for m in fetched["messages"] if m["code"] == "payment_declined"]
        async with rt.read_sessionmaker() as db:
            incident = await db.scalar(select(ProviderIncident))
            attempt = await db.scalar(select(PaymentAttempt))
        assert incident.kind == "integration_error"
        assert incident.code == "parameter_missing"
        assert attempt.status == "error"
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR
              and r.name == "reelcart.stripe"]
    assert errors
    assert getattr(errors[0], "code", None) == "parameter_missing"
    from api.logs import JsonFormatter
    text = "\n".join(JsonFormatter().format(r) for r in caplog.records)
    assert "spt_secret_value_1" not in text
    assert STRIPE_KEY not in text


# ---------------------------------------------------------------- 3. manual capture


async def test_manual_capture_on_first_shipment_then_refund(
        buyer: Agent, manual_runtime: Runtime, fake_stripe: FakeStripe, backend: str) -> None:
    rt = manual_runtime
    order = await paid_order(buyer, items=[{"id": "few-left", "quantity": 2}])
    pi = fake_stripe.payment_intents["pi_1"]
    assert parse_form(fake_stripe.created_payment_intents()[0].content)["capture_method"] \
        == "manual"
    assert pi["status"] == "requires_capture"
    detail = await order_detail(buyer, order["id"])
    assert detail["payment_status"] == "authorized"
    assert detail["payment"]["capture"]["status"] == "authorized"
    # Not shipped: the worker captures nothing.
    assert await rt.captures.run() == 0
    # Refunds wait for the capture (an authorisation is released, not refunded).
    early = await refund(buyer, order["id"], {"amount": 100}, "early")
    assert early.status_code == 400
    assert early.json()["code"] == "payment_not_captured"
    # First shipment (one of two units), its answer lost once: captured once, retries safe.
    shipped = await ship(buyer, order["id"], {"line_items": [
        {"id": detail["line_items"][0]["id"], "quantity": 1}]})
    assert shipped.status_code == 201, shipped.text
    capture_path = "/v1/payment_intents/pi_1/capture"
    fake_stripe.lost_answers[capture_path] = 3
    await rt.captures.run()
    assert pi["status"] == "succeeded"  # Stripe captured; we do not know yet
    assert (await order_detail(buyer, order["id"]))["payment_status"] == "authorized"
    async with rt.sessionmaker() as db, db.begin():  # the retry delay is over
        await db.execute(update(PaymentAuthorization).values(leased_until=None))
    await rt.captures.run()
    # Second shipment and a duplicate Stripe event: nothing more is captured.
    assert (await ship(buyer, order["id"])).status_code == 201
    await deliver(buyer, rt, fake_stripe.event("payment_intent.succeeded", pi))
    await rt.captures.run()
    captures = fake_stripe.calls("POST", capture_path)
    assert len({r.headers["Idempotency-Key"] for r in captures}) == 1
    charge = fake_stripe.charges[pi["latest_charge"]]
    assert charge["amount_captured"] == pi["amount"]
    detail = await order_detail(buyer, order["id"])
    assert detail["payment_status"] == "paid"
    assert detail["payment"]["capture"]["amount_captured"] == pi["amount"]
    # A refund now works.
    done = await refund(buyer, order["id"], {"amount": 500}, "after-capture")
    assert done.status_code == 201, done.text
    assert done.json()["refunded_amount"] == 500
    assert charge["amount_refunded"] == 500


async def test_cancel_before_capture_releases_the_authorisation_and_restocks(
        buyer: Agent, manual_runtime: Runtime, fake_stripe: FakeStripe, backend: str) -> None:
    rt = manual_runtime
    before = await stock(rt, "few-left")
    order = await paid_order(buyer, items=[{"id": "few-left", "quantity": 2}])
    assert await stock(rt, "few-left") == before - 2
    resp = await buyer.http.post(f"/orders/{order['id']}/cancel", json={"reason": "oops"},
                                 headers={**MERCHANT, "Idempotency-Key": "cancel-1"})
    assert resp.status_code == 200, resp.text
    assert await stock(rt, "few-left") == before
    await rt.captures.run()
    await rt.captures.run()
    assert fake_stripe.payment_intents["pi_1"]["status"] == "canceled"
    assert len(fake_stripe.calls("POST", "/v1/payment_intents/pi_1/cancel")) == 1
    assert not fake_stripe.calls("POST", "/v1/payment_intents/pi_1/capture")
    detail = await order_detail(buyer, order["id"])
    assert detail["status"] == "canceled"
    assert detail["payment_status"] == "voided"
    assert detail["payment"]["capture"]["status"] == "canceled"
    # Shipping a canceled order is refused; nothing is captured.
    assert (await ship(buyer, order["id"])).status_code == 400


async def test_capture_failure_needs_attention_and_expiry_is_warned(
        buyer: Agent, manual_runtime: Runtime, fake_stripe: FakeStripe, backend: str) -> None:
    rt = manual_runtime
    first = await paid_order(buyer)
    second = await paid_order(buyer)
    # The first authorisation lapsed at Stripe before we shipped.
    fake_stripe.payment_intents["pi_1"]["status"] = "canceled"
    assert (await ship(buyer, first["id"])).status_code == 201
    await rt.captures.run()
    detail = await order_detail(buyer, first["id"])
    assert detail["payment_status"] == "needs_attention"
    assert detail["payment"]["capture"]["status"] == "needs_attention"
    assert "payment:" in detail["forwarding"]["attention_reason"]
    listing = (await buyer.http.get("/orders?payment_status=needs_attention",
                                    headers=MERCHANT)).json()
    assert [o["id"] for o in listing["data"]] == [first["id"]]
    # The second is close to expiry (7 days, warned 24 h before): warned once.
    later = utc_now() + timedelta(days=6, hours=1)
    assert await rt.captures.warn_expiring(later) == 1
    assert await rt.captures.warn_expiring(later) == 0
    async with rt.read_sessionmaker() as db:
        kinds = sorted(i.kind for i in await db.scalars(select(ProviderIncident)))
    assert kinds == ["authorization_expiring", "capture_failed"]
    assert second["id"]


async def test_capture_after_a_configured_delay(database_url: str, fake_stripe: FakeStripe,
                                                backend: str) -> None:
    async with sandbox_runtime(database_url, stripe_capture_method="manual",
                               stripe_capture_delay_hours=2, **STRIPE) as rt, \
            app_client(rt) as client:
        order = await paid_order(Agent(client))
        assert await rt.captures.run() == 0
        assert await rt.captures.run(utc_now() + timedelta(hours=3)) == 1
        assert fake_stripe.payment_intents["pi_1"]["status"] == "succeeded"
        assert (await order_detail(Agent(client), order["id"]))["payment_status"] == "paid"


# ---------------------------------------------------------------- 4. refund lifecycle


async def test_refund_that_fails_later_is_taken_back(
        shopper: Agent, stripe_runtime: Runtime, fake_stripe: FakeStripe, backend: str) -> None:
    order = await paid_order(shopper, "spt_refundfail_1")
    total = (await order_detail(shopper, order["id"]))["total_amount"]
    resp = await refund(shopper, order["id"], {"amount": 400}, "r-fail")
    assert resp.json()["refunded_amount"] == 400
    [stripe_refund] = fake_stripe.refunds.values()
    await deliver(shopper, stripe_runtime, *fake_stripe.settle_refund(stripe_refund["id"],
                                                                       "failed"))
    detail = await order_detail(shopper, order["id"])
    assert detail["refunded_amount"] == 0
    assert detail["payment_status"] == "paid"
    assert [r["status"] for r in detail["refunds"]] == ["failed"]
    assert not [a for a in detail["acp_order"]["adjustments"] if a["type"] == "refund"]
    assert await ledger_sum(stripe_runtime, order["id"]) == total
    # A refund can be asked for again (a new request) and goes through; refunding the
    # whole order then reverses all of its ledger (the failed refund reversed nothing).
    again = await refund(shopper, order["id"], {}, "r-again")
    assert again.status_code == 201, again.text
    assert again.json()["refunded_amount"] == total
    assert await ledger_sum(stripe_runtime, order["id"]) == 0


async def test_pending_refund_is_pending_until_stripe_says_so(
        shopper: Agent, stripe_runtime: Runtime, fake_stripe: FakeStripe, backend: str) -> None:
    order = await paid_order(shopper, "spt_refundpending_1")
    resp = await refund(shopper, order["id"], {"amount": 250}, "r-pending")
    assert resp.status_code == 201
    body = resp.json()
    assert body["refunded_amount"] == 0
    assert [a["status"] for a in body["acp_order"]["adjustments"]] == ["pending"]
    [stripe_refund] = fake_stripe.refunds.values()
    # refund.created (pending) arrives after the answer: nothing changes.
    await deliver(shopper, stripe_runtime, fake_stripe.event("refund.created", stripe_refund))
    assert (await order_detail(shopper, order["id"]))["refunded_amount"] == 0
    await deliver(shopper, stripe_runtime, *fake_stripe.settle_refund(stripe_refund["id"],
                                                                       "succeeded"))
    detail = await order_detail(shopper, order["id"])
    assert detail["refunded_amount"] == 250
    assert [a["status"] for a in detail["acp_order"]["adjustments"]] == ["completed"]


# ---------------------------------------------------------------- 5. disputes


async def test_inquiry_moves_no_money_and_closes(
        shopper: Agent, stripe_runtime: Runtime, fake_stripe: FakeStripe, backend: str) -> None:
    order = await paid_order(shopper)
    total = (await order_detail(shopper, order["id"]))["total_amount"]
    dispute, events = fake_stripe.open_dispute("pi_1", status="warning_needs_response")
    await deliver(shopper, stripe_runtime, *events)
    detail = await order_detail(shopper, order["id"])
    assert detail["payment_status"] == "paid"
    assert detail["disputes"][0]["status"] == "warning_needs_response"
    assert detail["acp_order"]["adjustments"] == []
    assert await ledger_sum(stripe_runtime, order["id"]) == total
    await deliver(shopper, stripe_runtime,
                  *fake_stripe.update_dispute(dispute["id"], "warning_under_review"),
                  *fake_stripe.update_dispute(dispute["id"], "warning_closed"))
    detail = await order_detail(shopper, order["id"])
    assert detail["disputes"][0]["status"] == "warning_closed"
    assert detail["payment_status"] == "paid"
    assert await ledger_sum(stripe_runtime, order["id"]) == total


async def test_chargeback_withdrawn_then_won_is_reinstated_once(
        shopper: Agent, stripe_runtime: Runtime, fake_stripe: FakeStripe, backend: str) -> None:
    order = await paid_order(shopper)
    total = (await order_detail(shopper, order["id"]))["total_amount"]
    dispute, opened = fake_stripe.open_dispute("pi_1")
    await deliver(shopper, stripe_runtime, *opened, opened[-1])  # funds_withdrawn twice
    detail = await order_detail(shopper, order["id"])
    assert detail["payment_status"] == "disputed"
    assert detail["disputes"][0]["funds_withdrawn"] is True
    due = datetime.fromtimestamp(dispute["evidence_details"]["due_by"], UTC)
    assert detail["disputes"][0]["evidence_due_by"][:19] == due.strftime("%Y-%m-%dT%H:%M:%S")
    assert await ledger_sum(stripe_runtime, order["id"]) == 0
    won = fake_stripe.update_dispute(dispute["id"], "won")
    late = fake_stripe.event("charge.dispute.updated", dict(dispute, status="under_review"))
    await deliver(shopper, stripe_runtime, *won, late)
    detail = await order_detail(shopper, order["id"])
    assert detail["payment_status"] == "paid"
    assert detail["disputes"][0]["status"] == "won"
    assert detail["disputes"][0]["funds_reinstated"] is True
    assert await ledger_sum(stripe_runtime, order["id"]) == total


async def test_prevented_dispute_closes_without_money(
        shopper: Agent, stripe_runtime: Runtime, fake_stripe: FakeStripe, backend: str) -> None:
    order = await paid_order(shopper)
    total = (await order_detail(shopper, order["id"]))["total_amount"]
    dispute, events = fake_stripe.open_dispute("pi_1", status="warning_needs_response")
    await deliver(shopper, stripe_runtime, *events,
                  *fake_stripe.update_dispute(dispute["id"], "prevented"))
    detail = await order_detail(shopper, order["id"])
    assert detail["disputes"][0]["status"] == "prevented"
    assert detail["payment_status"] == "paid"
    assert await ledger_sum(stripe_runtime, order["id"]) == total


# ---------------------------------------------------------------- 6. 3-D Secure retry


async def test_a_new_3ds_result_after_a_denied_one_is_tried(
        shopper: Agent, stripe_runtime: Runtime, fake_stripe: FakeStripe, backend: str) -> None:
    session = await shopper.ready_session([{"id": "item_3ds_001"}])
    first = await shopper.complete(session["id"], "spt_3ds_retry")
    assert first.json()["status"] == "authentication_required"
    denied = {"outcome": "denied", "outcome_details": {
        "three_ds_cryptogram": "", "electronic_commerce_indicator": "07",
        "transaction_id": "ds-denied", "version": "2.2.0"}}
    second = await shopper.complete(session["id"], "spt_3ds_retry",
                                    authentication_result=denied)
    assert second.status_code == 200, second.text
    assert second.json()["status"] == "ready_for_payment"
    assert [m["code"] for m in second.json()["messages"]] == ["payment_declined"]
    ok = {"outcome": "authenticated", "outcome_details": {
        "three_ds_cryptogram": "AAABBB==", "electronic_commerce_indicator": "05",
        "transaction_id": "ds-second", "version": "2.2.0"}}
    third = await shopper.complete(session["id"], "spt_3ds_retry", authentication_result=ok)
    assert third.status_code == 200, third.text
    assert third.json()["status"] == "completed"
    confirms = fake_stripe.calls("POST", "/v1/payment_intents/pi_1/confirm")
    assert len(confirms) == 2
    assert confirms[0].headers["Idempotency-Key"] != confirms[1].headers["Idempotency-Key"]
    assert len(fake_stripe.created_payment_intents()) == 1
    # The same result again (a retried request) is the same Stripe request: no new call.
    again = await shopper.complete(session["id"], "spt_3ds_retry", authentication_result=ok)
    assert again.status_code == 405
    assert len(fake_stripe.calls("POST", "/v1/payment_intents/pi_1/confirm")) == 2


# ---------------------------------------------------------------- 7. no call under locks


async def test_orphan_charge_is_refunded_with_no_lock_held(
        shopper: Agent, stripe_runtime: Runtime, fake_stripe: FakeStripe, backend: str) -> None:
    """The first complete's answer is lost (Stripe charged pi_1), the buyer completes with
    another token; Stripe's late ``payment_intent.succeeded`` for pi_1 makes it an orphan
    charge: refunded, and while Stripe is called the session row can be written."""
    rt = stripe_runtime
    session = await shopper.ready_session()
    fake_stripe.timeouts["spt_lost_first"] = 3
    assert (await shopper.complete(session["id"], "spt_lost_first")).status_code == 503
    done = await shopper.complete(session["id"], "spt_second")
    assert done.json()["status"] == "completed"
    seen: list[str] = []

    async def probe(request: httpx.Request) -> None:
        if request.url.path != "/v1/refunds":
            return

        async def write() -> None:
            async with rt.sessionmaker() as db, db.begin():
                await db.execute(update(CheckoutSession).where(
                    CheckoutSession.id == session["id"]).values(
                    version=CheckoutSession.version + 0))
                attempt = await db.scalar(select(PaymentAttempt).where(
                    PaymentAttempt.provider_reference == "pi_1"))
                seen.append(attempt.status if attempt else "missing")
        try:
            await asyncio.wait_for(write(), timeout=5)
        except TimeoutError:
            seen.append("locked")

    fake_stripe.on_request = probe
    await deliver(shopper, rt, fake_stripe.event("payment_intent.succeeded",
                                                 fake_stripe.payment_intents["pi_1"]))
    assert seen == ["orphan_refund_pending"]  # committed before the call, not locked
    [orphan_refund] = fake_stripe.refunds.values()
    assert orphan_refund["payment_intent"] == "pi_1"
    assert orphan_refund["amount"] == fake_stripe.payment_intents["pi_1"]["amount"]
    async with rt.read_sessionmaker() as db:
        attempt = await db.scalar(select(PaymentAttempt).where(
            PaymentAttempt.provider_reference == "pi_1"))
        orders = await db.scalar(select(func.count()).select_from(Order))
    assert attempt.status == "refunded_orphan"
    assert orders == 1
    # The event again, and the recovery sweep: refunded once.
    await deliver(shopper, rt, fake_stripe.event("payment_intent.succeeded",
                                                 fake_stripe.payment_intents["pi_1"]))
    await rt.checkout.recover_stale_attempts(rt.sessionmaker)
    assert len(fake_stripe.refunds) == 1


async def test_fee_lookup_holds_no_lock(shopper: Agent, stripe_runtime: Runtime,
                                        fake_stripe: FakeStripe, backend: str) -> None:
    rt = stripe_runtime
    order = await paid_order(shopper)
    seen: list[str] = []

    async def probe(request: httpx.Request) -> None:
        async def write() -> None:
            async with rt.sessionmaker() as db, db.begin():
                await db.execute(update(PaymentAttempt).where(
                    PaymentAttempt.provider_reference == "pi_1").values(
                    updated_at=utc_now()))
            seen.append("free")
        try:
            await asyncio.wait_for(write(), timeout=5)
        except TimeoutError:
            seen.append("locked")

    fake_stripe.on_request = probe
    await deliver(shopper, rt, fake_stripe.charge_event("charge.updated", "pi_1"))
    assert seen == ["free"]
    assert (await order_detail(shopper, order["id"]))["payment"]["fee_amount"] > 0


# ---------------------------------------------------------------- 8. production


def test_production_refuses_the_sandbox_provider(tmp_path: Path) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as caught:
        Settings(_env_file=None, environment="production",
                 database_url="postgresql+asyncpg://u:p@db/reelcart")
    line = settings_error_line(caught.value)
    assert "\n" not in line
    assert "refuses the sandbox payment provider" in line
    # The rest of production's needs (tests/test_production_guards.py) let it through.
    from tests.test_production_guards import production

    Settings(_env_file=None, **production(tmp_path))


def test_production_cli_prints_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from api.cli import app

    monkeypatch.setenv("REELCART_ENVIRONMENT", "production")
    monkeypatch.setenv("REELCART_DATABASE_URL", "postgresql+asyncpg://u:p@db/reelcart")
    monkeypatch.delenv("REELCART_PAYMENTS_PROVIDER", raising=False)
    result = CliRunner().invoke(app, ["migrate"])
    assert result.exit_code == 2
    assert "refuses the sandbox payment provider" in result.output
    assert "Traceback" not in result.output


# ---------------------------------------------------------------- recovery paths


async def test_resume_an_orphaned_attempt_charges_once(
        shopper: Agent, stripe_runtime: Runtime, fake_stripe: FakeStripe, backend: str) -> None:
    """A process committed its recovery point, Stripe charged, and the process died before
    recording it. The agent's retry resumes the attempt with the same key: one payment."""
    rt = stripe_runtime
    session = await shopper.ready_session()
    fake_stripe.timeouts["spt_died"] = 3
    assert (await shopper.complete(session["id"], "spt_died")).status_code == 503
    async with rt.sessionmaker() as db, db.begin():  # the state a dead process leaves
        s = await db.get(CheckoutSession, session["id"])
        attempt = await db.scalar(select(PaymentAttempt))
        assert attempt.status == "unknown"
        attempt.status = "pending"
        attempt.updated_at = utc_now() - timedelta(minutes=1)
        s.status = "in_progress"
        s.reserved_stock = {"item_123": 1}
        await db.execute(update(Variant).where(Variant.id == "item_123").values(
            stock=Variant.stock - 1))
    before = await stock(rt, "item_123")
    resp = await shopper.complete(session["id"], "spt_died")
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "completed"
    assert len(fake_stripe.payment_intents) == 1
    keys = {r.headers["Idempotency-Key"] for r in fake_stripe.created_payment_intents()}
    assert len(keys) == 1
    assert await stock(rt, "item_123") == before  # the reservation became the sale
    # A different token cannot resume someone else's payment.
    other = await shopper.ready_session()
    async with rt.sessionmaker() as db, db.begin():
        s = await db.get(CheckoutSession, other["id"])
        s.status = "in_progress"
        db.add(PaymentAttempt(id="pa_stuck", checkout_session_id=other["id"],
                              provider="stripe", provider_idempotency_key="reelcart:x:y",
                              amount=s.total_amount, currency="usd", status="pending",
                              created_at=utc_now() - timedelta(minutes=1),
                              updated_at=utc_now() - timedelta(minutes=1)))
    assert (await shopper.complete(other["id"], "spt_other")).status_code == 409
    assert len(fake_stripe.payment_intents) == 1


async def test_give_up_on_a_stale_attempt_releases_stock(
        shopper: Agent, stripe_runtime: Runtime, fake_stripe: FakeStripe, backend: str) -> None:
    rt = stripe_runtime
    session = await shopper.ready_session([{"id": "few-left", "quantity": 2}])
    start = await stock(rt, "few-left")
    old = utc_now() - timedelta(minutes=45)
    async with rt.sessionmaker() as db, db.begin():  # died before reaching Stripe
        s = await db.get(CheckoutSession, session["id"])
        s.status = "in_progress"
        s.reserved_stock = {"few-left": 2}
        await db.execute(update(Variant).where(Variant.id == "few-left").values(
            stock=Variant.stock - 2))
        db.add(PaymentAttempt(id="pa_stale", checkout_session_id=session["id"],
                              provider="stripe", provider_idempotency_key="reelcart:s:k",
                              amount=s.total_amount, currency="usd", status="pending",
                              created_at=old, updated_at=old))
    assert await rt.checkout.recover_stale_attempts(rt.sessionmaker) == 1
    searches = fake_stripe.calls("GET", "/v1/payment_intents/search")
    assert session["id"] in searches[0].url.params["query"]
    async with rt.read_sessionmaker() as db:
        attempt = await db.get(PaymentAttempt, "pa_stale")
    assert attempt.status == "abandoned"
    assert await stock(rt, "few-left") == start
    fetched = (await shopper.get(f"/checkout_sessions/{session['id']}")).json()
    assert fetched["status"] == "ready_for_payment"
    assert (await shopper.complete(session["id"], "spt_after")).json()["status"] == "completed"


async def test_complete_on_a_completed_session_never_charges(
        shopper: Agent, stripe_runtime: Runtime, fake_stripe: FakeStripe, backend: str) -> None:
    session = await shopper.ready_session()
    assert (await shopper.complete(session["id"], "spt_once")).json()["status"] == "completed"
    for token in ("spt_once", "spt_another"):
        again = await shopper.complete(session["id"], token)
        assert again.status_code == 405
    assert len(fake_stripe.created_payment_intents()) == 1


# ---------------------------------------------------------------- the fake itself


async def test_fake_follows_stripe_idempotency_and_versions(fake_stripe: FakeStripe,
                                                            backend: str) -> None:
    form = "amount=100&currency=usd&confirm=true&" \
        "payment_method_data[shared_payment_granted_token]=spt_x"
    async with httpx.AsyncClient() as client:
        def post(body: str, key: str, version: str = PINNED_VERSION) -> object:
            return client.post("https://api.stripe.com/v1/payment_intents", content=body,
                               headers={"Idempotency-Key": key, "Stripe-Version": version,
                                        "Content-Type": "application/x-www-form-urlencoded"})
        first = await post(form, "k1")  # type: ignore[misc]
        replay = await post(form, "k1")  # type: ignore[misc]
        changed = await post(form.replace("amount=100", "amount=200"), "k1")  # type: ignore
        old = await post(form + "&payment_method_types[0]=card", "k2",  # type: ignore[misc]
                         "2026-04-22.preview")
        new = await post(form + "&payment_method_types[0]=card", "k3")  # type: ignore[misc]
    assert first.json()["id"] == replay.json()["id"]
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert changed.status_code == 400
    assert changed.json()["error"]["type"] == "idempotency_error"
    assert old.status_code == 200
    assert new.status_code == 400
    assert new.json()["error"]["code"] == "payment_method_types_no_longer_supported"
    assert "k3" not in fake_stripe.stored  # validation failures are not stored
    charge = fake_stripe.charges[first.json()["latest_charge"]]
    assert "refunds" not in fake_stripe.render(charge)
    assert set(SUBSCRIBED_EVENTS) >= {"refund.failed", "charge.refund.updated",
                                      "charge.dispute.funds_withdrawn"}


# ---------------------------------------------------------------- dashboard


async def test_dashboard_ship_captures_and_health_shows_payment_problems(
        buyer: Agent, manual_runtime: Runtime, fake_stripe: FakeStripe, backend: str) -> None:
    import re

    from api.dashboard.auth import create_user

    rt = manual_runtime
    order = await paid_order(buyer)
    lapsed = await paid_order(buyer)
    lapsed_pi = (await order_detail(buyer, lapsed["id"]))["payment"]["reference"]
    fake_stripe.payment_intents[lapsed_pi]["status"] = "canceled"  # lapsed at Stripe
    assert (await ship(buyer, lapsed["id"])).status_code == 201
    async with rt.sessionmaker() as db, db.begin():
        await create_user(db, "ada", "correct horse battery")
    async with app_client(rt, "https://shop.test") as site:
        from tests.test_dashboard import log_in

        await log_in(site)
        page = await site.get(f"/dashboard/orders/{order['id']}")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert csrf is not None
        shipped = await site.post(f"/dashboard/orders/{order['id']}/ship",
                                  data={"csrf_token": csrf.group(1)})
        assert shipped.status_code == 303
        await rt.captures.run()
        health = await site.get("/dashboard/health")
    assert fake_stripe.payment_intents["pi_1"]["status"] == "succeeded"
    assert (await order_detail(buyer, order["id"]))["payment_status"] == "paid"
    assert "Payments needing attention: 1" in health.text
    assert lapsed["id"] in health.text
    assert "capture_failed" in health.text
    assert PINNED_VERSION in health.text
    assert "style=" not in health.text


async def test_shopify_fulfilment_webhook_captures(
        database_url: str, fake_stripe: FakeStripe, httpx_mock: HTTPXMock,
        backend: str) -> None:
    from tests.fake_shopify import ENDPOINT, SHOP, TOKEN, VERSION, FakeShopify, delivery

    shopify = FakeShopify()
    httpx_mock.add_callback(shopify, url=ENDPOINT, method="POST", is_reusable=True,
                            is_optional=True)
    async with sandbox_runtime(database_url, stripe_capture_method="manual",
                               shopify_shop=SHOP, shopify_access_token=TOKEN,
                               shopify_api_version=VERSION,
                               shopify_webhook_secret="shopify-client-secret",
                               **STRIPE) as rt, app_client(rt) as client:
        agent = Agent(client)
        order = await paid_order(agent, items=[{"id": "item_123", "quantity": 2}])
        await run_once(rt)  # forwarded to Shopify
        assert fake_stripe.payment_intents["pi_1"]["status"] == "requires_capture"
        raw, headers = delivery("fulfillments/create", shopify.fulfillment_payload(
            order["id"], skus=[("item_123", 2)]))
        assert (await client.post("/webhooks/shopify", content=raw,
                                  headers=headers)).status_code == 200
        await run_once(rt)
        assert fake_stripe.payment_intents["pi_1"]["status"] == "succeeded"
        assert (await order_detail(agent, order["id"]))["payment_status"] == "paid"


async def test_capture_or_expiry_reported_by_stripe_webhooks(
        buyer: Agent, manual_runtime: Runtime, fake_stripe: FakeStripe, backend: str) -> None:
    """Captured from the Stripe dashboard: paid, and a later shipment captures nothing.
    An authorisation Stripe cancels (lapsed): the order needs attention."""
    rt = manual_runtime
    captured = await paid_order(buyer)
    lapsed = await paid_order(buyer)
    pi_captured = (await order_detail(buyer, captured["id"]))["payment"]["reference"]
    pi_lapsed = (await order_detail(buyer, lapsed["id"]))["payment"]["reference"]
    fake_stripe.capture(PINNED_VERSION, {}, pi_captured)
    fake_stripe.cancel(PINNED_VERSION, {"cancellation_reason": "automatic"}, pi_lapsed)
    await deliver(buyer, rt,
                  fake_stripe.event("payment_intent.succeeded",
                                    fake_stripe.payment_intents[pi_captured]),
                  fake_stripe.event("payment_intent.canceled",
                                    fake_stripe.payment_intents[pi_lapsed]))
    first = await order_detail(buyer, captured["id"])
    assert first["payment_status"] == "paid"
    assert first["payment"]["capture"]["status"] == "captured"
    assert (await ship(buyer, captured["id"])).status_code == 201
    await rt.captures.run()
    assert not fake_stripe.calls("POST", f"/v1/payment_intents/{pi_captured}/capture")
    second = await order_detail(buyer, lapsed["id"])
    assert second["payment_status"] == "needs_attention"
    assert second["payment"]["capture"]["status"] == "needs_attention"
