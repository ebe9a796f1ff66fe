"""Stripe payments: the shared payment token becomes exactly one PaymentIntent.

Stripe is faked at the HTTP layer (pytest-httpx) by ``tests.fake_stripe``; every request
body and header we send is asserted.
"""

from __future__ import annotations

import logging
import re

import pytest
from sqlalchemy import func, select

from api.runtime import Runtime
from models import Order, PaymentAttempt
from tests.acp_schema import assert_valid
from tests.conftest import STRIPE_KEY, Agent, app_client, sandbox_runtime
from tests.fake_stripe import FakeStripe, parse_form


async def orders_count(rt: Runtime) -> int:
    async with rt.read_sessionmaker() as db:
        return int(await db.scalar(select(func.count()).select_from(Order)) or 0)


async def test_handlers_advertise_stripe(shopper: Agent, backend: str) -> None:
    session = await shopper.ready_session()
    handler = session["capabilities"]["payment"]["handlers"][0]
    assert handler["psp"] == "stripe"
    assert handler["config"]["merchant_id"] == "acct_test_1"
    assert handler["config"]["supports_3ds"] is True
    assert handler["config"]["accepted_brands"]


async def test_success_sends_one_payment_intent_with_the_right_fields(
        shopper: Agent, stripe_runtime: Runtime, fake_stripe: FakeStripe, backend: str) -> None:
    session = await shopper.ready_session([{"id": "item_123", "quantity": 2}])
    total = {t["type"]: t["amount"] for t in session["totals"]}["total"]
    resp = await shopper.complete(session["id"], "spt_ok_1")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert_valid(body, "CheckoutSessionWithOrder")
    [request] = fake_stripe.created_payment_intents()
    form = parse_form(request.content)
    assert form["amount"] == str(total)
    assert form["currency"] == "usd"
    assert form["confirm"] == "true"
    assert form["payment_method_data[shared_payment_granted_token]"] == "spt_ok_1"
    assert form["metadata[checkout_session_id]"] == session["id"]
    assert form["metadata[order_id]"] == body["order"]["id"]
    assert request.headers["Idempotency-Key"].startswith(f"reelcart:{session['id']}:")
    assert request.headers["Stripe-Version"] == "2026-04-22.preview"
    assert request.headers["Authorization"] == f"Bearer {STRIPE_KEY}"
    async with stripe_runtime.read_sessionmaker() as db:
        order = await db.get(Order, body["order"]["id"])
    assert order.payment_reference == "pi_1"
    assert order.payment_status == "paid"


async def test_decline_402_keeps_the_session_open(shopper: Agent, stripe_runtime: Runtime,
                                                  fake_stripe: FakeStripe, backend: str) -> None:
    session = await shopper.ready_session([{"id": "few-left"}])
    resp = await shopper.complete(session["id"], "spt_decline_1")
    body = resp.json()
    assert resp.status_code == 200
    assert_valid(body, "CheckoutSession")
    assert body["status"] == "ready_for_payment"
    declined = [m for m in body["messages"] if m["code"] == "payment_declined"]
    assert "insufficient funds" in declined[0]["content"]
    assert await orders_count(stripe_runtime) == 0
    async with stripe_runtime.read_sessionmaker() as db:
        attempt = await db.scalar(select(PaymentAttempt))
        from models import Variant
        stock = await db.scalar(select(Variant.stock).where(Variant.id == "few-left"))
    assert attempt.failure_code == "insufficient_funds"
    assert stock == 5
    # An expired/foreign token is a decline too, not a 500.
    resp = await shopper.complete(session["id"], "spt_bad_1")
    assert resp.json()["status"] == "ready_for_payment"


async def test_requires_action_then_authenticated_completion(
        shopper: Agent, stripe_runtime: Runtime, fake_stripe: FakeStripe, backend: str) -> None:
    session = await shopper.ready_session([{"id": "item_3ds_001"}])
    first = await shopper.complete(session["id"], "spt_3ds_1")
    body = first.json()
    assert_valid(body, "CheckoutSession")
    assert body["status"] == "authentication_required"
    assert body["authentication_metadata"]["acquirer_details"]["merchant_name"]
    result = {"outcome": "authenticated", "outcome_details": {
        "three_ds_cryptogram": "AAABBB==", "electronic_commerce_indicator": "05",
        "transaction_id": "ds-123", "version": "2.2.0"}}
    second = await shopper.complete(session["id"], "spt_3ds_1", authentication_result=result)
    assert second.status_code == 200, second.text
    assert_valid(second.json(), "CheckoutSessionWithOrder")
    assert len(fake_stripe.created_payment_intents()) == 1  # the same PI was confirmed
    confirm = [r for r in fake_stripe.requests if r.url.path.endswith("/confirm")]
    assert confirm[0].url.path == "/v1/payment_intents/pi_1/confirm"
    form = parse_form(confirm[0].content)
    assert form["payment_method_options[card][three_d_secure][cryptogram]"] == "AAABBB=="
    assert form["payment_method_options[card][three_d_secure][electronic_commerce_indicator]"] \
        == "05"


async def test_stripe_500_is_retried_with_the_same_key(shopper: Agent, stripe_runtime: Runtime,
                                                        fake_stripe: FakeStripe,
                                                        backend: str) -> None:
    session = await shopper.ready_session()
    fake_stripe.server_errors["spt_flaky"] = 1
    resp = await shopper.complete(session["id"], "spt_flaky")
    assert resp.status_code == 200
    attempts = fake_stripe.created_payment_intents()
    assert len(attempts) == 2
    assert attempts[0].headers["Idempotency-Key"] == attempts[1].headers["Idempotency-Key"]
    assert len(fake_stripe.payment_intents) == 1
    assert await orders_count(stripe_runtime) == 1


async def test_outage_returns_503_and_a_retry_never_double_charges(
        shopper: Agent, stripe_runtime: Runtime, fake_stripe: FakeStripe, backend: str) -> None:
    session = await shopper.ready_session()
    fake_stripe.server_errors["spt_down"] = 3  # first try + 2 SDK retries
    resp = await shopper.complete(session["id"], "spt_down")
    assert resp.status_code == 503
    assert_valid(resp.json(), "Error")
    assert resp.json()["type"] == "service_unavailable"
    fetched = (await shopper.get(f"/checkout_sessions/{session['id']}")).json()
    assert fetched["status"] == "ready_for_payment"
    resp = await shopper.complete(session["id"], "spt_down")
    assert resp.json()["status"] == "completed"
    keys = {r.headers["Idempotency-Key"] for r in fake_stripe.created_payment_intents()}
    assert len(keys) == 1
    assert len(fake_stripe.payment_intents) == 1


async def test_timeout_after_stripe_succeeded_recovers_the_same_payment_intent(
        shopper: Agent, stripe_runtime: Runtime, fake_stripe: FakeStripe, backend: str) -> None:
    session = await shopper.ready_session()
    fake_stripe.timeouts["spt_lost"] = 3  # Stripe charges, but every answer is lost
    resp = await shopper.complete(session["id"], "spt_lost")
    assert resp.status_code == 503
    assert len(fake_stripe.payment_intents) == 1
    # The agent retries (even with a new ACP Idempotency-Key): same Stripe key, same PI.
    resp = await shopper.complete(session["id"], "spt_lost")
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "completed"
    assert len(fake_stripe.payment_intents) == 1
    assert len({r.headers["Idempotency-Key"] for r in fake_stripe.created_payment_intents()}) == 1
    async with stripe_runtime.read_sessionmaker() as db:
        order = await db.scalar(select(Order))
    assert order.payment_reference == "pi_1"
    assert await orders_count(stripe_runtime) == 1


async def test_manual_capture_authorizes(database_url: str, fake_stripe: FakeStripe,
                                         backend: str) -> None:
    async with sandbox_runtime(database_url, payments_provider="stripe",
                               stripe_api_key=STRIPE_KEY, stripe_capture_method="manual"
                               ) as rt, app_client(rt) as client:
        agent = Agent(client)
        session = await agent.ready_session()
        resp = await agent.complete(session["id"], "spt_ok_manual")
    assert resp.json()["status"] == "completed"
    assert parse_form(fake_stripe.created_payment_intents()[0].content)["capture_method"] == \
        "manual"


async def test_nothing_logs_tokens_keys_or_signatures(shopper: Agent, stripe_runtime: Runtime,
                                                      fake_stripe: FakeStripe, backend: str,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    from api.logs import JsonFormatter

    caplog.set_level(logging.DEBUG)
    session = await shopper.ready_session()
    fake_stripe.server_errors["spt_secret_token_value"] = 3
    await shopper.complete(session["id"], "spt_secret_token_value")
    await shopper.complete(session["id"], "spt_secret_token_value")
    payload = fake_stripe.event("payment_intent.succeeded", {"id": "pi_1", "amount": 1,
                                                             "metadata": {}})
    from tests.fake_stripe import sign
    signature = sign(payload)
    await shopper.http.post("/webhooks/stripe", content=payload,
                            headers={"Stripe-Signature": signature})
    text = "\n".join(JsonFormatter().format(r) for r in caplog.records)
    assert text
    for secret in ("spt_secret_token_value", STRIPE_KEY, signature.split("v1=")[1],
                   "whsec_test_secret", "test-agent-key"):
        assert secret not in text


async def test_worker_recovers_a_payment_whose_answer_was_lost(
        shopper: Agent, stripe_runtime: Runtime, fake_stripe: FakeStripe, httpx_mock,
        backend: str) -> None:
    """The complete request timed out after Stripe charged and the agent never retried:
    the worker's recovery sweep finds the PaymentIntent by our metadata and books it."""
    from datetime import timedelta

    from models.base import utc_now

    session = await shopper.ready_session()
    fake_stripe.timeouts["spt_gone"] = 3
    assert (await shopper.complete(session["id"], "spt_gone")).status_code == 503
    pi = fake_stripe.payment_intents["pi_1"]
    httpx_mock.add_response(
        method="GET", url=re.compile(r"https://api\.stripe\.com/v1/payment_intents/search.*"),
        json={"object": "search_result", "data": [pi], "has_more": False, "url": "/v1/x"})
    async with stripe_runtime.sessionmaker() as db, db.begin():
        attempt = await db.scalar(select(PaymentAttempt))
        assert attempt.status == "unknown"
        attempt.updated_at = utc_now() - timedelta(minutes=5)
    handled = await stripe_runtime.checkout.recover_stale_attempts(stripe_runtime.sessionmaker)
    assert handled == 1
    fetched = (await shopper.get(f"/checkout_sessions/{session['id']}")).json()
    assert fetched["status"] == "completed"
    assert fetched["order"]["id"]
    assert await orders_count(stripe_runtime) == 1
    search = [r for r in httpx_mock.get_requests() if "search" in r.url.path]
    assert session["id"] in search[0].url.params["query"]
