"""Refunds through the merchant API, and Stripe webhooks: verified, stored once,
processed by the worker, tolerant of duplicates and out-of-order delivery."""

from __future__ import annotations

import json
import time

from sqlalchemy import func, select

from api.runtime import Runtime
from api.worker import run_once
from models import InboxEvent, Order, PaymentAttempt
from tests.conftest import Agent, app_client, sandbox_runtime
from tests.fake_stripe import PINNED_VERSION, FakeStripe, sign

MERCHANT = {"Authorization": "Bearer merchant-key"}


async def paid_order(shopper: Agent, token: str = "spt_ok_order") -> dict:
    session = await shopper.ready_session([{"id": "item_123", "quantity": 3}])
    resp = await shopper.complete(session["id"], token)
    assert resp.status_code == 200, resp.text
    return resp.json()["order"]


async def refund(shopper: Agent, order_id: str, body: dict, key: str) -> dict:
    resp = await shopper.http.post(f"/orders/{order_id}/refunds", json=body,
                                   headers={**MERCHANT, "Idempotency-Key": key})
    return {"status": resp.status_code, "body": resp.json(), "headers": resp.headers}


async def test_partial_refund_then_over_refund_is_refused(
        shopper: Agent, stripe_runtime: Runtime, fake_stripe: FakeStripe, backend: str) -> None:
    order = await paid_order(shopper)
    detail = (await shopper.http.get(f"/orders/{order['id']}", headers=MERCHANT)).json()
    total = detail["total_amount"]
    first = await refund(shopper, order["id"], {"amount": 500, "reason":
                                                "requested_by_customer"}, "r-1")
    assert first["status"] == 201, first["body"]
    assert first["body"]["payment_status"] == "partially_refunded"
    assert first["body"]["refunded_amount"] == 500
    assert first["body"]["refundable_amount"] == total - 500
    [stripe_refund] = fake_stripe.refunds.values()
    assert stripe_refund["amount"] == 500
    refund_request = [r for r in fake_stripe.requests if r.url.path == "/v1/refunds"][0]
    assert refund_request.headers["Idempotency-Key"].startswith("reelcart:refund:rf_")
    # The ACP order shows the refund as an adjustment and amount_refunded.
    acp = first["body"]["acp_order"]
    assert acp["adjustments"][0]["type"] == "refund"
    assert {t["type"]: t["amount"] for t in acp["totals"]}["amount_refunded"] == 500
    from tests.acp_schema import assert_valid
    assert_valid(acp, "Order")
    # Same key again: replayed, Stripe not called twice.
    again = await refund(shopper, order["id"], {"amount": 500, "reason":
                                                "requested_by_customer"}, "r-1")
    assert again["headers"]["idempotent-replayed"] == "true"
    assert len(fake_stripe.refunds) == 1
    # More than what is left: clear 4xx, nothing sent to Stripe.
    over = await refund(shopper, order["id"], {"amount": total}, "r-2")
    assert over["status"] == 400
    assert over["body"]["code"] == "refund_exceeds_refundable"
    assert over["body"]["refundable_amount"] == total - 500
    left = total - 500  # minor units, shown as dollars and cents
    assert (f"Refund of {total // 100:,}.{total % 100:02d} USD exceeds the refundable "
            f"{left // 100:,}.{left % 100:02d} USD") in over["body"]["message"]
    huge = await refund(shopper, order["id"], {"amount": 99999999}, "r-2b")
    assert huge["status"] == 400
    assert huge["body"]["message"].startswith("Refund of 999,999.99 USD exceeds")
    assert len(fake_stripe.refunds) == 1
    # The rest (no amount): fully refunded.
    rest = await refund(shopper, order["id"], {}, "r-3")
    assert rest["body"]["payment_status"] == "refunded"
    assert rest["body"]["refunded_amount"] == total


async def test_merchant_api_needs_a_merchant_key(shopper: Agent, stripe_runtime: Runtime,
                                                 fake_stripe: FakeStripe, backend: str) -> None:
    order = await paid_order(shopper)
    agent_key = {"Authorization": "Bearer test-agent-key", "Idempotency-Key": "x"}
    resp = await shopper.http.post(f"/orders/{order['id']}/refunds", json={}, headers=agent_key)
    assert resp.status_code == 401
    resp = await shopper.http.get("/orders/ord_nope", headers=MERCHANT)
    assert resp.status_code == 404
    listing = (await shopper.http.get("/orders?limit=10", headers=MERCHANT)).json()
    assert listing["total"] == 1
    assert listing["data"][0]["id"] == order["id"]


async def post_event(shopper: Agent, payload: bytes, signature: str | None = None):
    headers = {"Stripe-Signature": signature if signature is not None else sign(payload)}
    return await shopper.http.post("/webhooks/stripe", content=payload, headers=headers)


async def inbox_count(rt: Runtime) -> int:
    async with rt.read_sessionmaker() as db:
        return int(await db.scalar(select(func.count()).select_from(InboxEvent)) or 0)


async def test_webhook_signature_checks(shopper: Agent, stripe_runtime: Runtime,
                                        fake_stripe: FakeStripe, backend: str) -> None:
    payload = fake_stripe.event("payment_intent.succeeded", {"id": "pi_x", "amount": 1})
    assert (await post_event(shopper, payload)).status_code == 200
    bad = [
        sign(payload, secret="whsec_wrong"),
        sign(payload, timestamp=int(time.time()) - 3600),          # stale
        "",                                                          # missing
    ]
    for signature in bad:
        other = fake_stripe.event("payment_intent.succeeded", {"id": "pi_y", "amount": 1})
        resp = await post_event(shopper, other, signature)
        assert resp.status_code == 400
        assert resp.json()["code"] == "invalid_signature"
    altered = payload.replace(b"pi_x", b"pi_z")
    resp = await post_event(shopper, altered, sign(payload))
    assert resp.status_code == 400
    assert await inbox_count(stripe_runtime) == 1


async def test_same_event_twice_is_processed_once(shopper: Agent, stripe_runtime: Runtime,
                                                  fake_stripe: FakeStripe, backend: str) -> None:
    order = await paid_order(shopper)
    async with stripe_runtime.read_sessionmaker() as db:
        pi_id = str((await db.get(Order, order["id"])).payment_reference)
    # Refunded from the Stripe dashboard: Stripe has the Refund, we learn of it by event.
    fake_stripe.create_refund(PINNED_VERSION, {"payment_intent": pi_id, "amount": "300"})
    payload = fake_stripe.charge_event("charge.refunded", pi_id)
    first = await post_event(shopper, payload)
    second = await post_event(shopper, payload)
    assert first.json() == {"received": True, "duplicate": False}
    assert second.json() == {"received": True, "duplicate": True}
    assert await run_once(stripe_runtime) == 1
    assert await run_once(stripe_runtime) == 0
    detail = (await shopper.http.get(f"/orders/{order['id']}", headers=MERCHANT)).json()
    assert detail["refunded_amount"] == 300
    assert detail["payment_status"] == "partially_refunded"
    assert [r["source"] for r in detail["refunds"]] == ["provider"]


async def test_refund_before_payment_succeeded_ends_in_the_right_state(
        shopper: Agent, stripe_runtime: Runtime, fake_stripe: FakeStripe, backend: str) -> None:
    """Our complete request timed out after Stripe charged; Stripe's webhooks then arrive
    out of order: the refund first, the success second."""
    session = await shopper.ready_session([{"id": "item_123"}])
    fake_stripe.timeouts["spt_wh"] = 3
    assert (await shopper.complete(session["id"], "spt_wh")).status_code == 503
    pi = fake_stripe.payment_intents["pi_1"]
    fake_stripe.create_refund(PINNED_VERSION, {"payment_intent": "pi_1", "amount": "100"})
    refunded = fake_stripe.charge_event("charge.refunded", "pi_1")
    succeeded = fake_stripe.event("payment_intent.succeeded", pi)
    assert (await post_event(shopper, refunded)).status_code == 200
    assert await run_once(stripe_runtime) == 1  # no order yet: deferred
    async with stripe_runtime.sessionmaker() as db, db.begin():
        event = await db.scalar(select(InboxEvent).where(InboxEvent.type == "charge.refunded"))
        assert event.processed_at is None
        assert "no order" in (event.last_error or "")
    assert (await post_event(shopper, succeeded)).status_code == 200
    await run_once(stripe_runtime)
    async with stripe_runtime.sessionmaker() as db, db.begin():  # make the deferred one due
        event = await db.scalar(select(InboxEvent).where(InboxEvent.type == "charge.refunded"))
        event.next_attempt_at = event.received_at
    await run_once(stripe_runtime)
    fetched = (await shopper.get(f"/checkout_sessions/{session['id']}")).json()
    assert fetched["status"] == "completed"
    order_id = fetched["order"]["id"]
    detail = (await shopper.http.get(f"/orders/{order_id}", headers=MERCHANT)).json()
    assert detail["payment"]["reference"] == "pi_1"
    assert detail["refunded_amount"] == 100
    assert detail["payment_status"] == "partially_refunded"
    async with stripe_runtime.read_sessionmaker() as db:
        assert await db.scalar(select(func.count()).select_from(Order)) == 1


async def test_payment_webhook_after_a_successful_complete_changes_nothing(
        shopper: Agent, stripe_runtime: Runtime, fake_stripe: FakeStripe, backend: str) -> None:
    order = await paid_order(shopper)
    pi = fake_stripe.payment_intents["pi_1"]
    await post_event(shopper, fake_stripe.event("payment_intent.succeeded", pi))
    await post_event(shopper, fake_stripe.event("payment_intent.payment_failed",
                                                dict(pi, status="requires_payment_method")))
    await run_once(stripe_runtime)
    detail = (await shopper.http.get(f"/orders/{order['id']}", headers=MERCHANT)).json()
    assert detail["payment_status"] == "paid"


async def test_disputes_and_fees(shopper: Agent, stripe_runtime: Runtime,
                                 fake_stripe: FakeStripe, backend: str) -> None:
    order = await paid_order(shopper)
    dispute, opened = fake_stripe.open_dispute("pi_1")
    late_update = fake_stripe.event("charge.dispute.updated", dict(dispute,
                                                                   status="under_review"))
    for payload in [*opened, *fake_stripe.update_dispute(dispute["id"], "lost")]:
        await post_event(shopper, payload)
    # A late "updated" (out of order) cannot reopen a closed dispute.
    await post_event(shopper, late_update)
    await post_event(shopper, fake_stripe.charge_event("charge.updated", "pi_1"))
    await run_once(stripe_runtime)
    detail = (await shopper.http.get(f"/orders/{order['id']}", headers=MERCHANT)).json()
    assert detail["payment_status"] == "dispute_lost"
    assert detail["disputes"][0]["status"] == "lost"
    async with stripe_runtime.read_sessionmaker() as db:
        attempt = await db.scalar(select(PaymentAttempt).where(
            PaymentAttempt.provider_reference == "pi_1"))
    charge = fake_stripe.charges[fake_stripe.payment_intents["pi_1"]["latest_charge"]]
    txn = fake_stripe.balance_transactions[charge["balance_transaction"]]
    assert (attempt.fee_amount, attempt.net_amount) == (txn["fee"], txn["net"])
    assert txn["fee"] > 0
    assert attempt.balance_transaction_id == txn["id"]


async def test_webhooks_are_404_when_not_configured(agent: Agent, backend: str) -> None:
    payload = json.dumps({"id": "evt_1", "type": "x"}).encode()
    resp = await agent.http.post("/webhooks/stripe", content=payload,
                                 headers={"Stripe-Signature": sign(payload)})
    assert resp.status_code == 404


async def test_sandbox_provider_refunds_too(database_url: str, backend: str) -> None:
    async with sandbox_runtime(database_url, merchant_api_keys=["merchant-key"]) as rt, \
            app_client(rt, "http://t") as client:
        agent = Agent(client)
        order = await paid_order(agent, "spt_test_success")
        partial = await refund(agent, order["id"], {"amount": 250}, "s-1")
        too_much = await refund(agent, order["id"], {"amount": 10**9}, "s-2")
    assert partial["status"] == 201
    assert partial["body"]["payment_status"] == "partially_refunded"
    assert partial["body"]["refunds"][0]["status"] == "succeeded"
    assert too_much["status"] == 400


async def test_stripe_payout_reconciliation(shopper: Agent, stripe_runtime: Runtime,
                                            fake_stripe: FakeStripe, httpx_mock,
                                            backend: str) -> None:
    import re
    from datetime import UTC, datetime, timedelta

    order = await paid_order(shopper)
    info = (await shopper.http.get(f"/orders/{order['id']}", headers=MERCHANT)).json()
    total = info["total_amount"]
    arrival = int((datetime.now(UTC) + timedelta(hours=12)).timestamp())
    httpx_mock.add_response(
        method="GET", url=re.compile(r"https://api\.stripe\.com/v1/payouts\?.*"),
        json={"object": "list", "url": "/v1/payouts", "has_more": False, "data": [
            {"id": "po_1", "object": "payout", "amount": total - 59 - 1234,
             "currency": "usd", "arrival_date": arrival, "status": "in_transit"}]})
    httpx_mock.add_response(
        method="GET", url=re.compile(r"https://api\.stripe\.com/v1/balance_transactions\?.*"),
        json={"object": "list", "url": "/v1/balance_transactions", "has_more": False,
              "data": [
                  {"id": "txn_c", "object": "balance_transaction", "amount": total, "fee": 59,
                   "net": total - 59, "currency": "usd", "created": arrival - 86400,
                   "reporting_category": "charge",
                   "source": {"id": "ch_1", "object": "charge", "payment_intent": "pi_1"}},
                  {"id": "txn_x", "object": "balance_transaction", "amount": -1234, "fee": 0,
                   "net": -1234, "currency": "usd", "created": arrival - 86400,
                   "reporting_category": "other_adjustment", "source": "adj_1"},
                  {"id": "txn_p", "object": "balance_transaction", "amount": -1,
                   "fee": 0, "net": -1, "currency": "usd", "created": arrival,
                   "reporting_category": "payout", "source": "po_1"}]})
    now = datetime.now(UTC)
    recon = (await shopper.http.get("/finance/reconciliation", params={
        "from": (now - timedelta(days=1)).isoformat(),
        "to": (now + timedelta(days=2)).isoformat()}, headers=MERCHANT)).json()
    [payout] = recon["payouts"]
    items = {i["balance_transaction"]: i for i in payout["items"]}
    assert items["txn_c"]["status"] == "matched"
    assert items["txn_c"]["ours"] == order["id"]
    assert items["txn_x"]["status"] == "unmatched_provider"  # shown, not hidden
    assert "txn_p" not in items  # the payout's own transfer is not an item
    assert payout["status"] == "needs_review"
    assert payout["payout_status"] == "in_transit"  # arrives in 12 hours: Stripe's word
    assert payout["fees"] == 59
    assert recon["unmatched_ours"] == []


async def test_dispute_simulations_are_refused_with_stripe(shopper: Agent) -> None:
    """Opening and closing a simulated dispute drive the sandbox provider's own ledger:
    with Stripe configured both are refused before anything is looked up or written."""
    paths = ["/orders/ord_any/sandbox-dispute",
             "/orders/ord_any/sandbox-dispute/dp_any/close"]
    bodies: list[dict[str, str]] = [{}, {"outcome": "won"}]
    for index, (path, body) in enumerate(zip(paths, bodies, strict=True)):
        resp = await shopper.http.post(path, json=body, headers={
            **MERCHANT, "Idempotency-Key": f"sandbox-only-{index}"})
        assert resp.status_code == 400, resp.text
        assert resp.json()["code"] == "sandbox_only"
        assert resp.json()["type"] == "invalid_request"


def test_amounts_in_messages_use_the_currencys_minor_unit() -> None:
    from orders.errors import amount_text

    assert amount_text(99999999, "usd") == "999,999.99 USD"
    assert amount_text(20363, "usd") == "203.63 USD"
    assert amount_text(5, "eur") == "0.05 EUR"
    assert amount_text(1234567, "jpy") == "1,234,567 JPY"
    assert amount_text(1500, "kwd") == "1.500 KWD"
    assert amount_text(-150, "usd") == "-1.50 USD"
