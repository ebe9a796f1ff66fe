"""Headers, auth, versioning and malformed input: always the ACP flat error, never a 500."""

from __future__ import annotations

import copy

import pytest

from tests.acp_schema import assert_valid, examples
from tests.conftest import API_VERSION, Agent


async def test_missing_and_bad_bearer_key_is_401(agent: Agent, backend: str) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"}):
        resp = await agent.http.post("/checkout_sessions", json={}, headers={
            "API-Version": API_VERSION, "Idempotency-Key": "k", **headers})
        assert resp.status_code == 401
        assert_valid(resp.json(), "Error")
        assert resp.json()["type"] == "invalid_request"
        assert resp.headers["www-authenticate"] == "Bearer"
    resp = await agent.http.get("/checkout_sessions/cs_x")
    assert resp.status_code == 401


@pytest.mark.parametrize(("version", "code"), [(None, "missing_api_version"),
                                               ("2025-09-11", "unsupported_api_version"),
                                               ("garbage", "unsupported_api_version")])
async def test_api_version_is_required_and_validated(agent: Agent, backend: str,
                                                     version: str | None, code: str) -> None:
    headers = agent.headers("k1")
    headers.pop("API-Version")
    if version:
        headers["API-Version"] = version
    resp = await agent.http.post("/checkout_sessions", json={"currency": "usd"}, headers=headers)
    assert resp.status_code == 400
    body = resp.json()
    assert_valid(body, "Error")
    assert body["code"] == code
    assert body["supported_versions"] == ["2026-04-17", "2026-01-30", "2026-01-16",
                                          "2025-12-12", "2025-09-29", "2025-09-12"]


async def test_idempotency_key_required_on_every_post(agent: Agent, backend: str) -> None:
    session = await agent.ready_session()
    for path in ("/checkout_sessions", f"/checkout_sessions/{session['id']}",
                 f"/checkout_sessions/{session['id']}/complete",
                 f"/checkout_sessions/{session['id']}/cancel"):
        resp = await agent.http.post(path, json={}, headers=agent.headers())
        assert resp.status_code == 400, path
        assert_valid(resp.json(), "Error")
        assert resp.json()["code"] == "idempotency_key_required"
    resp = await agent.http.post("/checkout_sessions", json={}, headers=agent.headers("x" * 256))
    assert resp.json()["code"] == "invalid_idempotency_key"


async def test_request_id_is_echoed_or_generated(agent: Agent, backend: str) -> None:
    resp = await agent.http.get("/healthz", headers={"Request-Id": "req-abc-123"})
    assert resp.headers["request-id"] == "req-abc-123"
    resp = await agent.http.get("/healthz")
    assert resp.headers["request-id"].startswith("req_")


async def test_unknown_session_is_404(agent: Agent, backend: str) -> None:
    resp = await agent.get("/checkout_sessions/cs_does_not_exist")
    assert resp.status_code == 404
    assert_valid(resp.json(), "Error")
    assert resp.json()["code"] == "checkout_session_not_found"
    resp = await agent.post("/checkout_sessions/cs_does_not_exist/complete",
                            {"payment_data": {"handler_id": "card_tokenized", "instrument": {
                                "type": "card", "credential": {"type": "spt", "token": "t"}}}})
    assert resp.status_code == 404


async def test_invalid_item_and_currency(agent: Agent, backend: str) -> None:
    resp = await agent.create(line_items=[{"id": "item_123"}, {"id": "no-such-item"}])
    assert resp.status_code == 400
    assert_valid(resp.json(), "Error")
    assert resp.json()["code"] == "invalid_item_id"
    assert resp.json()["param"] == "$.line_items[1].id"
    resp = await agent.create(line_items=[{"id": "item_123"}], currency="jpy")
    assert resp.json()["code"] == "unsupported_currency"
    resp = await agent.create(line_items=[{"id": "eur-item"}])
    assert resp.json()["code"] == "invalid_item_id"


@pytest.mark.parametrize(("body", "code", "param"), [
    ({"currency": "usd", "capabilities": {}}, "missing_required_field", "$.line_items"),
    ({"currency": "usd", "line_items": []}, "invalid_value", "$.line_items"),
    ({"currency": "usd", "line_items": "item_123"}, "invalid_type", "$.line_items"),
    ({"currency": 5, "line_items": [{"id": "item_123"}]}, "invalid_type", "$.currency"),
    ({"currency": "usd", "line_items": [{"id": "item_123", "quantity": 0}]}, "invalid_value",
     "$.line_items[0].quantity"),
    ({"currency": "usd", "line_items": [{"id": "item_123"}], "buyer": {"email": "nope"}},
     "invalid_value", "$.buyer.email"),
    ([1, 2, 3], "invalid_type", "$"),
])
async def test_schema_invalid_bodies_are_400_with_param(agent: Agent, backend: str, body,
                                                        code: str, param: str | None) -> None:
    resp = await agent.post("/checkout_sessions", body)
    assert resp.status_code == 400, resp.text
    error = resp.json()
    assert_valid(error, "Error")
    assert error["code"] == code
    assert error["param"] == param
    assert error["message"].startswith(
        "The request body ($):" if param == "$" else f"{param}:")


async def test_messages_name_every_missing_field(agent: Agent, backend: str) -> None:
    resp = await agent.post("/checkout_sessions", {})
    assert resp.status_code == 400
    error = resp.json()
    assert error["code"] == "missing_required_field"
    assert error["param"] == "$.line_items"
    assert "$.line_items: Field required" in error["message"]
    assert "$.currency: Field required" in error["message"]
    assert "more problem" not in error["message"]


@pytest.mark.parametrize(("version", "field"), [
    ("2025-09-29", "$.items[0].quantity"), ("2025-12-12", "$.items[0].quantity"),
    ("2026-01-16", "$.items[0].quantity"), ("2026-01-30", "$.line_items[0].quantity"),
    ("2026-04-17", "$.line_items[0].quantity")])
async def test_messages_name_the_clients_own_field(agent: Agent, backend: str, version: str,
                                                   field: str) -> None:
    items = field.split("[")[0][2:]
    resp = await agent.http.post("/checkout_sessions", json={
        "currency": "usd", items: [{"id": "lut-pack-personal", "quantity": 1000000}]},
        headers=agent.headers(f"big-{version}", **{"API-Version": version}))
    assert resp.status_code == 400
    error = resp.json()
    assert error["param"] == field
    assert error["message"].startswith(f"{field}: ")
    other = "$.line_items" if items == "items" else "$.items"
    assert other not in error["message"]


async def test_bad_json_and_huge_bodies(agent: Agent, backend: str) -> None:
    headers = {**agent.headers("bad-json"), "Content-Type": "application/json"}
    resp = await agent.http.post("/checkout_sessions", content=b"{not json", headers=headers)
    assert resp.status_code == 400
    assert_valid(resp.json(), "Error")
    assert resp.json()["code"] == "invalid_json"
    huge = b'{"currency":"usd","line_items":[{"id":"' + b"x" * 2_000_000 + b'"}]}'
    resp = await agent.http.post("/checkout_sessions", content=huge,
                                 headers={**headers, "Idempotency-Key": "huge"})
    assert resp.status_code == 413
    assert_valid(resp.json(), "Error")
    assert resp.json()["code"] == "request_too_large"


async def test_unknown_fields_are_ignored(agent: Agent, backend: str) -> None:
    resp = await agent.create(line_items=[{"id": "item_123", "future_field": True}],
                              some_extension={"a": 1})
    assert resp.status_code == 201


async def test_purchase_orders_and_unknown_handlers_are_refused(agent: Agent,
                                                                backend: str) -> None:
    session = await agent.ready_session()
    resp = await agent.post(f"/checkout_sessions/{session['id']}/complete",
                            {"payment_data": {"purchase_order_number": "PO-1"}})
    assert resp.status_code == 400
    assert resp.json()["code"] == "invalid_payment_data"
    resp = await agent.post(f"/checkout_sessions/{session['id']}/complete", {"payment_data": {
        "handler_id": "nope", "instrument": {"type": "card",
                                             "credential": {"type": "spt", "token": "t"}}}})
    assert resp.json()["param"] == "$.payment_data.handler_id"


async def test_discovery_document(agent: Agent, backend: str) -> None:
    resp = await agent.http.get("/.well-known/acp.json")  # no auth
    assert resp.status_code == 200
    assert resp.headers["cache-control"] == "public, max-age=3600"
    doc = resp.json()
    assert_valid(doc, "DiscoveryResponse")
    assert doc["protocol"]["supported_versions"][-1] == doc["protocol"]["version"]
    assert "acct_" not in resp.text  # no merchant ids in discovery


async def test_spec_example_requests_are_accepted(agent: Agent, backend: str) -> None:
    """The official 2026-04-17 example requests drive a whole session lifecycle."""
    ex = examples()
    for name in ("create_checkout_session_request",
                 "create_checkout_session_request_with_first_touch_attribution"):
        assert_valid(ex[name], "CheckoutSessionCreateRequest")
        resp = await agent.post("/checkout_sessions", ex[name])
        assert resp.status_code == 201, (name, resp.text)
        assert_valid(resp.json(), "CheckoutSession")
        assert "affiliate_attribution" not in resp.text  # write-only
    session_id = resp.json()["id"]
    resp = await agent.post(f"/checkout_sessions/{session_id}",
                            {"fulfillment_details": ex["create_checkout_session_request"][
                                "fulfillment_details"]})
    resp = await agent.post(f"/checkout_sessions/{session_id}",
                            ex["update_checkout_session_request"])
    assert resp.status_code == 200
    assert_valid(resp.json(), "CheckoutSession")
    # The example picks an option id of another shop: we say so, recoverably.
    assert any(m.get("param") == "$.selected_fulfillment_options[0].option_id"
               for m in resp.json()["messages"])
    await agent.post(f"/checkout_sessions/{session_id}", {"selected_fulfillment_options": []})
    for name in ("complete_checkout_session_request",
                 "complete_checkout_session_request_with_last_touch_attribution"):
        assert_valid(ex[name], "CheckoutSessionCompleteRequest")
        fresh = await agent.post("/checkout_sessions", ex["create_checkout_session_request"])
        resp = await agent.post(f"/checkout_sessions/{fresh.json()['id']}/complete", ex[name])
        assert resp.status_code == 200, (name, resp.text)
        assert_valid(resp.json(), "CheckoutSessionWithOrder")
    for name in ("cancel_checkout_session_request",
                 "cancel_checkout_session_request_timing_deferred"):
        fresh = await agent.post("/checkout_sessions", ex["create_checkout_session_request"])
        resp = await agent.post(f"/checkout_sessions/{fresh.json()['id']}/cancel", ex[name])
        assert resp.status_code == 200, (name, resp.text)
        assert_valid(resp.json(), "CheckoutSession")
    # 3DS: the example's authenticated completion request.
    create = copy.deepcopy(ex["create_checkout_session_request"])
    create["line_items"] = [{"id": "item_3ds_001"}]
    fresh = (await agent.post("/checkout_sessions", create)).json()
    req = copy.deepcopy(ex["complete_session_with_authentication_result_request"])
    assert_valid(req, "CheckoutSessionCompleteRequest")
    req["payment_data"]["instrument"]["credential"]["token"] = "spt_test_3ds"
    first = dict(req)
    first.pop("authentication_result")
    resp = await agent.post(f"/checkout_sessions/{fresh['id']}/complete", first)
    assert resp.json()["status"] == "authentication_required"
    resp = await agent.post(f"/checkout_sessions/{fresh['id']}/complete", req)
    assert resp.json()["status"] == "completed"


async def test_a_key_of_the_other_kind_is_named(seller: Agent, merchant_runtime,
                                               backend: str) -> None:
    """A live key on the wrong API says which kind it is (same 401 and code); an
    unknown key reveals nothing."""
    from api.auth import create_agent_key, create_merchant_key

    async with merchant_runtime.sessionmaker() as db, db.begin():
        _, db_agent_key = await create_agent_key(db, "kinds-agent")
        db_merchant_key = await create_merchant_key(db, "kinds-merchant")
    acp = {"API-Version": API_VERSION}
    for key in ("merchant-key", db_merchant_key):
        resp = await seller.http.get("/checkout_sessions/cs_x",
                                     headers={**acp, "Authorization": f"Bearer {key}"})
        assert resp.status_code == 401
        assert resp.json()["code"] == "unauthorized"
        assert resp.json()["message"] == (
            "This is a merchant API key; agent routes need an agent key.")
    for key in (seller.key, db_agent_key):
        resp = await seller.http.get("/orders/ord_x", headers={"Authorization": f"Bearer {key}"})
        assert resp.status_code == 401
        assert resp.json()["code"] == "unauthorized"
        assert resp.json()["message"] == (
            "This is an agent API key; merchant routes need a merchant API key.")
    for path, headers in (("/checkout_sessions/cs_x", acp), ("/orders/ord_x", {})):
        resp = await seller.http.get(path, headers={**headers, "Authorization": "Bearer nope"})
        assert resp.status_code == 401
        assert "not valid or has been revoked" in resp.json()["message"]
