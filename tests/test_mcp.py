"""The MCP server driven by the official MCP client against the real ASGI app."""

from __future__ import annotations

import json
from typing import Any

import httpx2
import orjson
import pytest
from jsonschema import Draft202012Validator
from sqlalchemy import select

from api.auth import create_agent_key
from api.runtime import Runtime
from idempotency import repository as idempotency_store
from idempotency.canonical import request_hash
from models import AttributionTouch, Video, VideoProduct
from models.base import utc_now
from models.db import transaction
from tests.acp_schema import assert_valid, require_spec
from tests.conftest import AGENT_KEY, US_ADDRESS
from tests.mcp_client import call, call_error, mcp_session, meta, rest_agent, serving

CHECKOUT_TOOLS = {"create_checkout_session", "get_checkout_session", "update_checkout_session",
                  "complete_checkout_session", "cancel_checkout_session"}
CATALOG_TOOLS = {"search_products", "get_product", "list_shoppable_videos", "get_order"}
UCP_TOOLS = {"create_checkout", "get_checkout", "update_checkout", "complete_checkout",
             "cancel_checkout"}
WRITES = CHECKOUT_TOOLS - {"get_checkout_session"}
PAY = {"handler_id": "card_tokenized", "instrument": {
    "type": "card", "credential": {"type": "spt", "token": "spt_test_success"}}}
MERCHANT = {"Authorization": "Bearer merchant-key"}


def _spec(name: str) -> dict[str, Any]:
    root = require_spec() / "spec" / "2026-04-17"
    data: dict[str, Any] = json.loads((root / name).read_text())
    return data


# ---------------------------------------------------------------- tools and schemas


async def test_tools_are_listed_with_the_openrpc_schemas_bundled(runtime: Runtime) -> None:
    openrpc = _spec("openrpc/openrpc.agentic_checkout.json")
    bundle = _spec("json-schema/schema.agentic_checkout.json")
    async with serving(runtime) as app, mcp_session(app) as session:
        listed = {t.name: t for t in (await session.list_tools()).tools}
    assert set(listed) == CHECKOUT_TOOLS | CATALOG_TOOLS | UCP_TOOLS  # UCP: test_ucp_mcp
    for method in openrpc["methods"]:
        tool = listed[method["name"]]
        schema = tool.input_schema
        assert tool.description is not None
        assert "Example" in tool.description
        Draft202012Validator.check_schema(schema)
        assert set(schema["properties"]) == {p["name"] for p in method["params"]}
        assert set(schema["required"]) == {p["name"] for p in method["params"]
                                           if p.get("required")}
        for param in method["params"]:
            served = schema["properties"][param["name"]]
            ref = param["schema"]["$ref"] if "$ref" in param["schema"] else None
            if ref == "#/components/schemas/meta":
                expected = openrpc["components"]["schemas"]["meta"]
                assert served["properties"].keys() == expected["properties"].keys()
                assert served["additionalProperties"] is True
                required = {"api_version"} | ({"idempotency_key"}
                                              if method["name"] in WRITES else set())
                assert set(served["required"]) == required
                for field, definition in expected["properties"].items():
                    assert served["properties"][field]["type"] == definition["type"]
            elif ref is not None:  # a payload: the bundle's definition, made local
                name = ref.rsplit("/", 1)[1]
                assert served["$ref"] == f"#/$defs/{name}"
            else:
                assert served["type"] == param["schema"]["type"]
        # Every bundled definition is the spec's, unchanged, and nothing points outside.
        for name, definition in schema.get("$defs", {}).items():
            assert definition == bundle["$defs"][name], name
        refs = {r for r in _refs(schema) if not r.startswith("#/$defs/")}
        assert refs == set()
        assert {r.removeprefix("#/$defs/") for r in _refs(schema)} <= set(schema.get("$defs", {}))


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        return found.union(*(_refs(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node))
    return set()


async def test_spec_examples_validate_against_the_served_schemas_where_the_spec_is_valid(
        runtime: Runtime) -> None:
    """The binding's own examples: create validates; update uses the nested
    selected_fulfillment_options the schema rejects (the schemas win)."""
    examples = json.loads((require_spec() / "examples" / "2026-04-17" /
                           "examples.mcp.agentic_checkout.json").read_text())
    async with serving(runtime) as app, mcp_session(app) as session:
        listed = {t.name: t.input_schema for t in (await session.list_tools()).tools}
        create = examples["create_checkout_session_request"]["params"]["arguments"]
        assert list(Draft202012Validator(listed["create_checkout_session"])
                    .iter_errors(create)) == []
        update = examples["update_checkout_session_request"]["params"]["arguments"]
        assert list(Draft202012Validator(listed["update_checkout_session"])
                    .iter_errors(update)) != []


# ---------------------------------------------------------------- authentication


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-key", "Basic abc"])
async def test_no_valid_key_is_refused_before_any_json_rpc(runtime: Runtime,
                                                           authorization: str | None) -> None:
    async with serving(runtime) as app:
        headers = {"Accept": "application/json, text/event-stream"}
        if authorization:
            headers["Authorization"] = authorization
        async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app),
                                      base_url="http://test") as http:
            response = await http.post("/mcp", headers=headers, json={
                "jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}})
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["code"] == "unauthorized"
        with pytest.raises(Exception):  # noqa: B017 - the client cannot even initialize
            async with mcp_session(app, key=None):
                pass


async def test_discovery_advertises_mcp(runtime: Runtime) -> None:
    async with serving(runtime) as app:
        document = (await rest_agent(app).http.get("/.well-known/acp.json")).json()
    assert document["transports"] == ["rest", "mcp"]
    assert_valid(document, "DiscoveryResponse")


# ---------------------------------------------------------------- the full flow


async def _feature_in_video(rt: Runtime, product_id: str) -> str:
    video_id = f"vid_{product_id}_rain"  # no long digit runs: they read as phone numbers
    async with transaction(rt.sessionmaker) as db:
        db.add(Video(id=video_id, title="Denim in the rain", generator="sora-2",
                     published_url="https://video.example/denim", platform="tiktok",
                     campaign="fall", published_at=utc_now()))
        await db.flush()
        db.add(VideoProduct(video_id=video_id, product_id=product_id))
    return video_id


async def test_search_create_update_complete_then_follow_the_order(
        merchant_runtime: Runtime) -> None:
    video_id = await _feature_in_video(merchant_runtime, "denim-jacket")
    async with serving(merchant_runtime) as app, mcp_session(app) as session:
        found, _ = await call(session, "search_products", {
            "query": "denim jacket", "max_price": 20000, "currency": "usd",
            "available_only": True})
        by_id = {p["id"]: p for p in found["products"]}
        assert set(by_id) == {"denim-jacket", "spec-items"}  # both sell a denim jacket
        product = by_id["denim-jacket"]
        assert product["videos"][0]["creative_id"] == video_id
        variant = next(v for v in product["variants"] if v["availability"]["available"])
        assert variant["price"]["currency"] == "usd"
        assert variant["image_url"]

        videos, _ = await call(session, "list_shoppable_videos", {"product_id": "denim-jacket"})
        assert videos["videos"][0]["products"][0]["product_id"] == "denim-jacket"
        attribution = videos["videos"][0]["affiliate_attribution"]
        assert attribution["creative_id"] == video_id

        created, created_meta = await call(session, "create_checkout_session", {
            "meta": meta(user_agent="TestAssistant/1.0"),
            "payload": {"currency": "usd", "capabilities": {},
                        "line_items": [{"id": variant["id"]}, {"id": variant["id"]}],
                        "fulfillment_details": {"address": US_ADDRESS},
                        "affiliate_attribution": attribution}})
        assert_valid(created, "CheckoutSession")
        assert created["line_items"][0]["quantity"] == 2
        assert "idempotent_replayed" not in created_meta
        express = max((o for o in created["fulfillment_options"] if o["type"] == "shipping"),
                      key=lambda o: o["totals"][-1]["amount"])
        updated, _ = await call(session, "update_checkout_session", {
            "meta": meta(), "id": created["id"],
            "payload": {"selected_fulfillment_options": [
                {"type": "shipping", "option_id": express["id"],
                 "item_ids": [variant["id"]]}]}})
        assert_valid(updated, "CheckoutSession")
        assert updated["selected_fulfillment_options"][0]["option_id"] == express["id"]
        assert updated["status"] == "ready_for_payment"

        completed, _ = await call(session, "complete_checkout_session", {
            "meta": meta(), "id": created["id"],
            "payload": {"buyer": {"email": "ada@example.com"}, "payment_data": PAY}})
        assert_valid(completed, "CheckoutSessionWithOrder")
        assert completed["status"] == "completed"
        order_id = completed["order"]["id"]

        # The same session over REST.
        rest = rest_agent(app)
        over_rest = (await rest.get(f"/checkout_sessions/{created['id']}")).json()
        assert over_rest["status"] == "completed"
        assert over_rest["order"]["id"] == order_id
        got, _ = await call(session, "get_checkout_session",
                            {"meta": meta(None), "id": created["id"]})
        assert_valid(got, "CheckoutSessionWithOrder")
        assert got["totals"] == over_rest["totals"]

        # The merchant ships and refunds; the agent reads the order's current state.
        shipped = await rest.http.post(f"/orders/{order_id}/fulfillments", json={
            "carrier": "UPS", "tracking_number": "1Z999", "tracking_url": "https://ups.test/1Z"},
            headers={**MERCHANT, "Idempotency-Key": "ship-1"})
        assert shipped.status_code == 201, shipped.text
        refunded = await rest.http.post(f"/orders/{order_id}/refunds", json={"amount": 100},
                                        headers={**MERCHANT, "Idempotency-Key": "refund-1"})
        assert refunded.status_code in (200, 201), refunded.text
        order, _ = await call(session, "get_order", {"order_id": order_id})
    assert_valid(order, "Order")
    assert order["status"] == "shipped"
    assert order["fulfillments"][0]["tracking_number"] == "1Z999"
    assert order["fulfillments"][0]["carrier"] == "UPS"
    assert [(a["type"], a["amount"]) for a in order["adjustments"]] == [("refund", 100)]
    async with merchant_runtime.sessionmaker() as db:
        touch = await db.scalar(select(AttributionTouch).where(
            AttributionTouch.checkout_session_id == created["id"]))
    assert touch is not None
    assert touch.video_id == video_id
    assert touch.video_known


async def test_a_session_started_over_rest_continues_over_mcp(runtime: Runtime) -> None:
    async with serving(runtime) as app, mcp_session(app) as session:
        session_rest = await rest_agent(app).ready_session()
        done, _ = await call(session, "complete_checkout_session", {
            "meta": meta(), "id": session_rest["id"], "payload": {"payment_data": PAY}})
        assert done["status"] == "completed"
        canceled = await call_error(session, "cancel_checkout_session",
                                    {"meta": meta(), "id": session_rest["id"]})
    assert canceled["code"] == "checkout_session_completed"
    assert_valid(canceled, "Error")


async def test_cancel_without_payload(runtime: Runtime) -> None:
    async with serving(runtime) as app, mcp_session(app) as session:
        created, _ = await call(session, "create_checkout_session", {
            "meta": meta(), "payload": {"currency": "usd", "capabilities": {},
                                        "line_items": [{"id": "item_123"}]}})
        canceled, _ = await call(session, "cancel_checkout_session",
                                 {"meta": meta(), "id": created["id"]})
    assert canceled["status"] == "canceled"
    assert_valid(canceled, "CheckoutSession")


# ---------------------------------------------------------------- idempotency


async def test_replay_and_conflict_through_meta_idempotency_key(runtime: Runtime) -> None:
    payload = {"currency": "usd", "capabilities": {}, "line_items": [{"id": "item_123"}]}
    async with serving(runtime) as app, mcp_session(app) as session:
        first, _ = await call(session, "create_checkout_session",
                              {"meta": meta("same-key"), "payload": payload})
        again, again_meta = await call(session, "create_checkout_session", {
            "meta": meta("same-key", request_id="retry-1"), "payload": payload})
        assert again == first
        assert again_meta["idempotent_replayed"] is True
        assert again_meta["request_id"] == "retry-1"
        conflict = await call_error(session, "create_checkout_session", {
            "meta": meta("same-key"),
            "payload": {**payload, "line_items": [{"id": "item_3ds_001"}]}})
        assert conflict["code"] == "idempotency_conflict"
        assert conflict["param"] == "$.meta.idempotency_key"
        assert_valid(conflict, "Error")
        # One store with REST: the same key and body over REST replays the MCP create.
        rest = await rest_agent(app).post("/checkout_sessions", payload, key="same-key")
    assert rest.status_code == 201
    assert rest.headers["idempotent-replayed"] == "true"
    assert rest.json()["id"] == first["id"]


async def test_a_key_still_in_flight_is_refused(runtime: Runtime) -> None:
    from api.runtime import DEV_AGENT_ID

    payload = {"currency": "usd", "capabilities": {}, "line_items": [{"id": "item_123"}]}
    now = utc_now()
    async with transaction(runtime.sessionmaker) as db:  # another process holds the key
        from datetime import timedelta

        assert await idempotency_store.try_insert(
            db, record_id="idk_held", principal=DEV_AGENT_ID, path="/checkout_sessions",
            key="busy-key", request_hash=request_hash(orjson.dumps(payload)), now=now,
            locked_until=now + timedelta(minutes=5), expires_at=now + timedelta(hours=24),
            response=None)
    async with serving(runtime) as app, mcp_session(app) as session:
        busy = await call_error(session, "create_checkout_session",
                                {"meta": meta("busy-key"), "payload": payload})
    assert busy["code"] == "idempotency_in_flight"
    assert_valid(busy, "Error")


# ---------------------------------------------------------------- errors


async def test_errors_carry_the_acp_code_and_param(runtime: Runtime) -> None:
    async with serving(runtime) as app, mcp_session(app) as session:
        cases: list[tuple[str, dict[str, Any], str, str]] = [
            ("get_checkout_session", {"meta": meta(None), "id": "cs_unknown"},
             "checkout_session_not_found", "$.id"),
            ("update_checkout_session", {"meta": meta(), "id": "cs_unknown", "payload": {}},
             "checkout_session_not_found", "$.id"),
            ("create_checkout_session", {"meta": meta(), "payload": {
                "capabilities": {}, "line_items": [{"id": "item_123"}]}},
             "missing_required_field", "$.payload.currency"),
            ("create_checkout_session", {"meta": meta(), "payload": {
                "currency": "usd", "capabilities": {}, "line_items": [{"id": 42}]}},
             "invalid_type", "$.payload.line_items[0].id"),
            ("create_checkout_session", {"meta": meta(), "payload": {
                "currency": "usd", "capabilities": {}, "line_items": [{"id": "no-such"}]}},
             "invalid_item_id", "$.payload.line_items[0].id"),
            ("create_checkout_session", {"meta": meta(None), "payload": {
                "currency": "usd", "capabilities": {}, "line_items": [{"id": "item_123"}]}},
             "missing_required_field", "$.meta.idempotency_key"),
            ("create_checkout_session", {"meta": meta(api_version="2026-01-30"), "payload": {
                "currency": "usd", "capabilities": {}, "line_items": [{"id": "item_123"}]}},
             "unsupported_api_version", "$.meta.api_version"),
            ("complete_checkout_session", {"meta": meta(), "id": "x"},
             "missing_required_field", "$.payload"),
            ("search_products", {"query": "mug", "cursor": "!!!"}, "invalid_cursor",
             "$.cursor"),
            ("search_products", {"min_price": 100}, "invalid_value", "$.currency"),
            ("get_product", {"product_id": "nope"}, "product_not_found", "$.product_id"),
            ("get_order", {"order_id": "ord_nope"}, "order_not_found", "$.order_id"),
        ]
        for tool, arguments, code, param in cases:
            data = await call_error(session, tool, arguments)
            assert (data["code"], data.get("param")) == (code, param), (tool, data)
            assert data["type"] == "invalid_request"
            assert_valid(data, "Error")
        version = await call_error(session, "get_checkout_session",
                                   {"meta": meta(None, api_version="1999-01-01"), "id": "x"})
    assert version["supported_versions"] == ["2026-04-17"]
    assert version["code"] == "unsupported_api_version"


async def test_agents_cannot_see_each_others_sessions_or_orders(runtime: Runtime) -> None:
    async with transaction(runtime.sessionmaker) as db:
        _, other_key = await create_agent_key(db, "agent-b")
    async with serving(runtime) as app, mcp_session(app) as a, \
            mcp_session(app, key=other_key) as b:
        created, _ = await call(a, "create_checkout_session", {
            "meta": meta(), "payload": {"currency": "usd", "capabilities": {},
                                        "line_items": [{"id": "item_123"}],
                                        "fulfillment_details": {"address": US_ADDRESS}}})
        attempts: list[tuple[str, dict[str, Any]]] = [
            ("get_checkout_session", {}),
            ("update_checkout_session", {"payload": {}}),
            ("complete_checkout_session", {"payload": {"payment_data": PAY}}),
            ("cancel_checkout_session", {})]
        for tool, extra in attempts:
            data = await call_error(b, tool, {
                "meta": meta(None if tool == "get_checkout_session" else "new"),
                "id": created["id"], **extra})
            assert data["code"] == "checkout_session_not_found", tool
        done, _ = await call(a, "complete_checkout_session", {
            "meta": meta(), "id": created["id"], "payload": {"payment_data": PAY}})
        order_id = done["order"]["id"]
        hidden = await call_error(b, "get_order", {"order_id": order_id})
        assert hidden["code"] == "order_not_found"
        mine, _ = await call(a, "get_order", {"order_id": order_id})
    assert mine["id"] == order_id


async def test_signatures_in_meta_are_enforced_like_headers(database_url: str) -> None:
    from api import signatures
    from tests.conftest import sandbox_runtime

    async with sandbox_runtime(database_url, request_signature_mode="enforce") as rt:
        async with transaction(rt.sessionmaker) as db:
            _, key = await create_agent_key(db, "signer", signing_secret="s3cret")
        payload = {"currency": "usd", "capabilities": {}, "line_items": [{"id": "item_123"}]}
        timestamp = utc_now().isoformat()
        good = signatures.sign("s3cret", timestamp, orjson.dumps(payload))
        async with serving(rt) as app, mcp_session(app, key=key) as session:
            unsigned = await call_error(session, "create_checkout_session",
                                        {"meta": meta(), "payload": payload})
            assert unsigned["code"] == "invalid_signature"
            forged = await call_error(session, "create_checkout_session", {
                "meta": meta(signature=good, timestamp=timestamp),
                "payload": {**payload, "currency": "eur"}})
            assert forged["code"] == "invalid_signature"
            signed, _ = await call(session, "create_checkout_session", {
                "meta": meta(signature=good, timestamp=timestamp), "payload": payload})
    assert signed["status"] in ("not_ready_for_payment", "ready_for_payment")


async def test_the_same_key_needs_the_same_agent(runtime: Runtime) -> None:
    """Idempotency is scoped by agent: another agent's identical key is a new request."""
    async with transaction(runtime.sessionmaker) as db:
        _, other_key = await create_agent_key(db, "agent-c")
    payload = {"currency": "usd", "capabilities": {}, "line_items": [{"id": "item_123"}]}
    async with serving(runtime) as app, mcp_session(app) as a, \
            mcp_session(app, key=other_key) as c:
        first, _ = await call(a, "create_checkout_session",
                              {"meta": meta("shared"), "payload": payload})
        second, second_meta = await call(c, "create_checkout_session",
                                         {"meta": meta("shared"), "payload": payload})
    assert second["id"] != first["id"]
    assert "idempotent_replayed" not in second_meta
    assert AGENT_KEY != other_key
