"""Checkout session behaviour end to end over HTTP, every response checked against the
official ACP 2026-04-17 JSON Schema."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from models import Order, SandboxCharge, Variant
from tests.acp_schema import assert_valid
from tests.conftest import US_ADDRESS, Agent


def totals(session: dict) -> dict[str, int]:
    return {t["type"]: t["amount"] for t in session["totals"]}


async def stock_of(runtime, variant_id: str) -> int | None:
    async with runtime.read_sessionmaker() as db:
        return await db.scalar(select(Variant.stock).where(Variant.id == variant_id))


async def test_create_without_address_is_not_ready(agent: Agent, backend: str) -> None:
    resp = await agent.create(line_items=[{"id": "denim-jacket-m"}])
    assert resp.status_code == 201
    session = resp.json()
    assert_valid(session, "CheckoutSession")
    assert session["status"] == "not_ready_for_payment"
    assert session["fulfillment_options"] == []
    missing = [m for m in session["messages"] if m["type"] == "error"]
    assert missing[0]["code"] == "missing"
    assert missing[0]["param"] == "$.fulfillment_details.address"
    assert missing[0]["resolution"] == "requires_buyer_input"
    assert {link["type"] for link in session["links"]} >= {"terms_of_use", "privacy_policy",
                                                           "return_policy"}
    assert session["capabilities"]["payment"]["handlers"][0]["name"] == "dev.acp.tokenized.card"


async def test_full_flow_prices_taxes_ships_and_completes(agent: Agent, runtime,
                                                          backend: str) -> None:
    created = (await agent.create(line_items=[{"id": "ceramic-mug-sand", "quantity": 2}])).json()
    before = await stock_of(runtime, "ceramic-mug-sand")
    assert before is not None
    resp = await agent.post(f"/checkout_sessions/{created['id']}",
                            {"fulfillment_details": {"name": "Ada", "email": "ada@example.com",
                                                     "address": US_ADDRESS}})
    assert resp.status_code == 200
    session = resp.json()
    assert_valid(session, "CheckoutSession")
    assert session["status"] == "ready_for_payment"
    # 2 × $24.00 = $48.00; Standard shipping $5.99 (under the $75 free threshold);
    # California 7.25% on items only: 48.00 × 0.0725 = 3.48.
    t = totals(session)
    assert t["items_base_amount"] == 4800
    assert t["subtotal"] == 4800
    assert t["fulfillment"] == 599
    assert t["tax"] == 348
    assert t["total"] == 4800 + 599 + 348
    line = session["line_items"][0]
    assert line["quantity"] == 2
    assert {x["type"]: x["amount"] for x in line["totals"]}["total"] == 4800 + 348
    shipping = [o for o in session["fulfillment_options"] if o["type"] == "shipping"]
    assert {o["id"] for o in shipping} == {"ship_standard", "ship_express"}
    assert session["selected_fulfillment_options"][0]["option_id"] == "ship_standard"

    # Choosing express reprices.
    resp = await agent.post(f"/checkout_sessions/{created['id']}", {
        "selected_fulfillment_options": [{"type": "shipping", "option_id": "ship_express",
                                          "item_ids": ["ceramic-mug-sand"]}]})
    assert totals(resp.json())["fulfillment"] == 1499

    resp = await agent.complete(created["id"], buyer={"email": "ada@example.com",
                                                      "first_name": "Ada"})
    assert resp.status_code == 200, resp.text
    done = resp.json()
    assert_valid(done, "CheckoutSessionWithOrder")
    assert done["status"] == "completed"
    order = done["order"]
    assert order["checkout_session_id"] == created["id"]
    assert order["permalink_url"] == f"https://shop.test/order-status/{order['id']}"
    # The buyer sees the order with their email, and only with it.
    page = await agent.http.get(f"/order-status/{order['id']}")
    assert page.status_code == 200
    assert "Enter the email" in page.text
    assert "Ceramic" not in page.text
    page = await agent.http.get(f"/order-status/{order['id']}?email=eve@example.com")
    assert "does not match" in page.text
    page = await agent.http.get(f"/order-status/{order['id']}?email=ADA@example.com")
    assert "Hand-thrown Ceramic Mug" in page.text
    assert "no-store" in page.headers["cache-control"]
    assert await stock_of(runtime, "ceramic-mug-sand") == before - 2
    # GET shows the order too.
    fetched = (await agent.get(f"/checkout_sessions/{created['id']}")).json()
    assert_valid(fetched, "CheckoutSessionWithOrder")
    assert fetched["order"]["id"] == order["id"]


async def test_free_shipping_over_threshold_and_digital_needs_no_address(agent: Agent,
                                                                         backend: str) -> None:
    session = await agent.ready_session([{"id": "headphones-black"}])
    assert totals(session)["fulfillment"] == 0  # $179 ≥ $75 threshold
    digital = (await agent.create(line_items=[{"id": "lut-pack-personal"}])).json()
    assert_valid(digital, "CheckoutSession")
    assert digital["status"] == "ready_for_payment"
    assert digital["fulfillment_options"][0]["type"] == "digital"
    assert totals(digital)["total"] == 2900


async def test_repeated_item_ids_aggregate_into_one_line(agent: Agent, backend: str) -> None:
    resp = await agent.create(line_items=[{"id": "item_123"}, {"id": "few-left", "quantity": 2},
                                          {"id": "item_123", "quantity": 3}])
    session = resp.json()
    assert_valid(session, "CheckoutSession")
    assert [(li["item"]["id"], li["quantity"]) for li in session["line_items"]] == [
        ("item_123", 4), ("few-left", 2)]


async def test_repeated_item_ids_cannot_add_up_past_the_line_cap(agent: Agent,
                                                                 backend: str) -> None:
    """One line of 1,000,000 is refused; so are lines that only together exceed the
    100,000 cap: 400 at the later line's quantity, on create and on update, nothing
    stored."""
    resp = await agent.create(line_items=[{"id": "item_123", "quantity": 99999},
                                          {"id": "few-left"},
                                          {"id": "item_123", "quantity": 99999}])
    assert resp.status_code == 400
    body = resp.json()
    assert_valid(body, "Error")
    assert body["code"] == "invalid_value"
    assert body["param"] == "$.line_items[2].quantity"
    assert "199,998" in body["message"]
    assert "100,000" in body["message"]
    # Exactly the cap is fine.
    ok = await agent.create(line_items=[{"id": "item_123", "quantity": 99999},
                                        {"id": "item_123", "quantity": 1}])
    assert ok.status_code == 201
    assert ok.json()["line_items"][0]["quantity"] == 100_000
    updated = await agent.post(f"/checkout_sessions/{ok.json()['id']}", {
        "line_items": [{"id": "item_123", "quantity": 50000},
                       {"id": "item_123", "quantity": 50001}]})
    assert updated.status_code == 400
    assert updated.json()["param"] == "$.line_items[1].quantity"
    kept = (await agent.get(f"/checkout_sessions/{ok.json()['id']}")).json()
    assert kept["line_items"][0]["quantity"] == 100_000
    # The 2025-09-29 request names the field ``items``; so does the error.
    old = await agent.http.post("/checkout_sessions", json={
        "items": [{"id": "item_123", "quantity": 99999}, {"id": "item_123", "quantity": 2}]},
        headers=agent.headers("idem-old-cap", **{"API-Version": "2025-09-29"}))
    assert old.status_code == 400
    assert old.json()["param"] == "$.items[1].quantity"


async def test_merged_line_has_the_per_order_limit_of_a_single_line(agent: Agent,
                                                                   backend: str) -> None:
    """Under the hard cap, a merged line is judged like one line of the same quantity:
    the merchant's per-order limit is a recoverable message on that line."""
    single = (await agent.create(line_items=[
        {"id": "lut-pack-personal", "quantity": 1200}])).json()  # digital: no stock count
    merged = (await agent.create(line_items=[
        {"id": "lut-pack-personal", "quantity": 600},
        {"id": "lut-pack-personal", "quantity": 600}])).json()
    for session in (single, merged):
        assert_valid(session, "CheckoutSession")
        codes = {(m["code"], m.get("param")) for m in session["messages"]}
        assert ("quantity_exceeded", "$.line_items[0].quantity") in codes
        assert session["status"] == "not_ready_for_payment"


async def test_stock_and_price_messages(agent: Agent, backend: str) -> None:
    resp = await agent.create(line_items=[{"id": "few-left", "quantity": 9},
                                          {"id": "item_123", "unit_amount": 250}],
                              fulfillment_details={"address": US_ADDRESS})
    session = resp.json()
    assert_valid(session, "CheckoutSession")
    codes = {(m["type"], m["code"], m.get("param")) for m in session["messages"]}
    assert ("error", "quantity_exceeded", "$.line_items[0].quantity") in codes
    assert ("warning", "price_change", "$.line_items[1].unit_amount") in codes
    assert session["status"] == "not_ready_for_payment"
    sold_out = (await agent.create(line_items=[{"id": "denim-jacket-s"}])).json()  # stock 0
    assert_valid(sold_out, "CheckoutSession")
    assert any(m["code"] == "out_of_stock" for m in sold_out["messages"])
    assert sold_out["line_items"][0]["availability_status"] == "out_of_stock"


async def test_region_restriction_and_tax_free_region(agent: Agent, backend: str) -> None:
    uk = dict(US_ADDRESS, country="GB", state="London")
    session = (await agent.create(line_items=[{"id": "item_123"}],
                                  fulfillment_details={"address": uk})).json()
    assert_valid(session, "CheckoutSession")
    assert any(m["code"] == "region_restricted" for m in session["messages"])
    oregon = dict(US_ADDRESS, state="OR")
    session = (await agent.create(line_items=[{"id": "item_123"}],
                                  fulfillment_details={"address": oregon})).json()
    assert totals(session)["tax"] == 0
    assert session["status"] == "ready_for_payment"


async def test_decline_keeps_session_open_without_order_or_stock_change(
        agent: Agent, runtime, backend: str) -> None:
    session = await agent.ready_session([{"id": "few-left", "quantity": 2}])
    resp = await agent.complete(session["id"], "spt_test_declined")
    assert resp.status_code == 200
    body = resp.json()
    assert_valid(body, "CheckoutSession")
    assert body["status"] == "ready_for_payment"
    assert [m["code"] for m in body["messages"] if m["type"] == "error"] == ["payment_declined"]
    assert await stock_of(runtime, "few-left") == 5
    async with runtime.read_sessionmaker() as db:
        assert await db.scalar(select(func.count()).select_from(Order)) == 0
    # The buyer retries with another card and succeeds.
    resp = await agent.complete(session["id"], "spt_test_success")
    assert resp.json()["status"] == "completed"
    assert await stock_of(runtime, "few-left") == 3


async def test_three_d_secure_flow(agent: Agent, runtime, backend: str) -> None:
    session = await agent.ready_session([{"id": "item_3ds_001"}])
    resp = await agent.complete(session["id"], "spt_test_3ds")
    body = resp.json()
    assert_valid(body, "CheckoutSession")
    assert body["status"] == "authentication_required"
    assert body["authentication_metadata"]["directory_server"] == "visa"
    # Completing again without the result is refused with requires_3ds.
    resp = await agent.complete(session["id"], "spt_test_3ds")
    assert resp.status_code == 400
    assert_valid(resp.json(), "Error")
    assert resp.json()["code"] == "requires_3ds"
    assert resp.json()["param"] == "$.authentication_result"
    result = {"outcome": "authenticated", "outcome_details": {
        "three_ds_cryptogram": "AAAB", "electronic_commerce_indicator": "05",
        "transaction_id": "ds-1", "version": "2.2.0"}}
    resp = await agent.complete(session["id"], "spt_test_3ds", authentication_result=result)
    assert resp.status_code == 200, resp.text
    assert_valid(resp.json(), "CheckoutSessionWithOrder")
    assert resp.json()["status"] == "completed"


async def test_three_d_secure_denied_returns_to_ready(agent: Agent, backend: str) -> None:
    session = await agent.ready_session([{"id": "item_3ds_001"}])
    await agent.complete(session["id"], "spt_test_3ds")
    resp = await agent.complete(session["id"], "spt_test_3ds",
                                authentication_result={"outcome": "denied"})
    body = resp.json()
    assert body["status"] == "ready_for_payment"
    assert any(m["code"] == "payment_declined" for m in body["messages"])


async def test_cancel_with_and_without_body_then_405(agent: Agent, backend: str) -> None:
    a = await agent.ready_session()
    resp = await agent.post(f"/checkout_sessions/{a['id']}/cancel")
    assert resp.status_code == 200
    assert_valid(resp.json(), "CheckoutSession")
    assert resp.json()["status"] == "canceled"
    b = await agent.ready_session()
    resp = await agent.post(f"/checkout_sessions/{b['id']}/cancel",
                            {"intent_trace": {"reason_code": "price_sensitivity"}})
    assert resp.json()["status"] == "canceled"
    assert "intent_trace" not in resp.text  # write-only
    for path, body in ((f"/checkout_sessions/{a['id']}/cancel", None),
                       (f"/checkout_sessions/{a['id']}", {"order_notes": "x"})):
        resp = await agent.post(path, body)
        assert resp.status_code == 405
        assert_valid(resp.json(), "Error")
        assert resp.json()["code"] == "checkout_session_canceled"
    resp = await agent.complete(a["id"])
    assert resp.status_code == 405
    done = await agent.ready_session()
    await agent.complete(done["id"])
    resp = await agent.post(f"/checkout_sessions/{done['id']}/cancel")
    assert resp.status_code == 405
    assert resp.json()["code"] == "checkout_session_completed"


async def test_sessions_expire_after_ttl(agent: Agent, runtime, backend: str) -> None:
    session = await agent.ready_session()
    real_clock = runtime.checkout.clock
    runtime.checkout.clock = lambda: real_clock() + runtime.checkout.session_ttl + timedelta(
        seconds=1)
    try:
        fetched = (await agent.get(f"/checkout_sessions/{session['id']}")).json()
        assert_valid(fetched, "CheckoutSession")
        assert fetched["status"] == "expired"
        resp = await agent.complete(session["id"])
        assert resp.status_code == 405
        assert resp.json()["code"] == "checkout_session_expired"
    finally:
        runtime.checkout.clock = real_clock


async def test_update_null_clears_and_absent_keeps(agent: Agent, backend: str) -> None:
    session = await agent.ready_session()
    resp = await agent.post(f"/checkout_sessions/{session['id']}", {"order_notes": "ring twice"})
    assert resp.json()["status"] == "ready_for_payment"  # address kept
    resp = await agent.post(f"/checkout_sessions/{session['id']}", {"fulfillment_details": None})
    body = resp.json()
    assert_valid(body, "CheckoutSession")
    assert "fulfillment_details" not in body
    assert body["status"] == "not_ready_for_payment"


async def test_complete_never_charges_a_total_the_buyer_was_not_shown(
        agent: Agent, runtime, backend: str) -> None:
    session = await agent.ready_session([{"id": "item_123"}])
    async with runtime.sessionmaker() as db, db.begin():
        variant = await db.get(Variant, "item_123")
        variant.price_amount = 350
    resp = await agent.complete(session["id"])
    body = resp.json()
    assert body["status"] == "ready_for_payment"
    assert any(m["code"] == "price_change" for m in body["messages"])
    async with runtime.read_sessionmaker() as db:
        assert await db.scalar(select(func.count()).select_from(SandboxCharge)) == 0
    # Confirming (complete again) charges the new, shown total.
    resp = await agent.complete(session["id"])
    assert resp.json()["status"] == "completed"
    assert totals(resp.json())["total"] == totals(body)["total"]


async def test_sessions_are_private_to_their_agent(agent: Agent, runtime, backend: str) -> None:
    from api.auth import create_agent_key

    async with runtime.sessionmaker() as db, db.begin():
        _, other_key = await create_agent_key(db, "other-agent")
    session = await agent.ready_session()
    other = Agent(agent.http, key=other_key)
    resp = await other.get(f"/checkout_sessions/{session['id']}")
    assert resp.status_code == 404
    assert_valid(resp.json(), "Error")


async def test_acp_prefix_serves_the_same_api(agent: Agent, backend: str) -> None:
    resp = await agent.post("/acp/checkout_sessions", {
        "currency": "usd", "line_items": [{"id": "ebook-pdf"}], "capabilities": {}})
    assert resp.status_code == 201
    resp = await agent.get(f"/acp/checkout_sessions/{resp.json()['id']}")
    assert resp.status_code == 200


async def test_discount_codes_are_answered_not_ignored(agent: Agent, backend: str) -> None:
    resp = await agent.create(line_items=[{"id": "item_123"}],
                              fulfillment_details={"address": US_ADDRESS},
                              discounts={"codes": ["SAVE10"]})
    session = resp.json()
    assert_valid(session, "CheckoutSession")
    warning = next(m for m in session["messages"] if m["code"] == "discount_code_invalid")
    assert warning["param"] == "$.discounts.codes[0]"
    assert session["status"] == "ready_for_payment"  # a warning never blocks payment
    cleared = (await agent.post(f"/checkout_sessions/{session['id']}",
                                {"discounts": {"codes": []}})).json()
    assert not any(m["code"] == "discount_code_invalid" for m in cleared["messages"])
