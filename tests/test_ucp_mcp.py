"""UCP 2026-04-08 checkout over MCP (checkout-mcp.md) on ``/mcp``, driven with the official
MCP client: tools and their input schemas, the lifecycle validated against the official
JSON Schemas, one session across REST and MCP, idempotency, errors, authentication."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from jsonschema import Draft202012Validator
from mcp.client.session import ClientSession
from mcp.shared.exceptions import MCPError

from api.runtime import Runtime
from tests import ucp_schema
from tests.conftest import Agent, free_port, sandbox_runtime
from tests.mcp_client import mcp_session, serving
from tests.test_ucp import create_body, merchant_config, payment, shipping
from tests.ucp_platform import Platform, platform_profile

UCP_TOOLS = ("create_checkout", "get_checkout", "update_checkout", "complete_checkout",
             "cancel_checkout")


@pytest.fixture
async def shop(database_url: str, tmp_path: Path) -> AsyncIterator[Runtime]:
    async with sandbox_runtime(database_url, merchant_config=merchant_config(tmp_path)) as rt:
        yield rt


def openrpc() -> dict[str, Any]:
    path = ucp_schema.require_spec() / "source" / "services" / "shopping" / "mcp.openrpc.json"
    data: dict[str, Any] = json.loads(path.read_text())
    return data


@asynccontextmanager
async def world(rt: Runtime) -> AsyncIterator[tuple[Platform, ClientSession, httpx.AsyncClient]]:
    """A platform serving its profile, an MCP session and a REST client on one app."""
    port = free_port()
    platform = Platform(port, platform_profile(port))
    platform.start()
    try:
        async with serving(rt) as app, mcp_session(app) as session, httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="https://shop.test") as rest:
            yield platform, session, rest
    finally:
        platform.stop()


def meta(platform: Platform, key: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"ucp-agent": {"profile": platform.profile_url}}
    if key is not None:
        out["idempotency-key"] = key
    return out


async def tool(session: ClientSession, name: str, arguments: dict[str, Any]
               ) -> tuple[dict[str, Any], bool, dict[str, Any]]:
    """(structuredContent, isError, _meta); the text content is the same JSON."""
    result = await session.call_tool(name, arguments)
    assert result.structured_content is not None, result
    text = result.content[0]
    assert text.type == "text"
    assert json.loads(text.text) == result.structured_content
    return result.structured_content, bool(result.is_error), dict(result.meta or {})


async def checkout(session: ClientSession, name: str, arguments: dict[str, Any]
                   ) -> dict[str, Any]:
    body, is_error, _ = await tool(session, name, arguments)
    assert not is_error, body
    ucp_schema.checkout(body)
    return body


async def test_tools_listed_with_the_binding_schemas(shop: Runtime, backend: str) -> None:
    spec = openrpc()
    methods = {m["name"]: m for m in spec["methods"]}
    async with serving(shop) as app, mcp_session(app) as session:
        listed = {t.name: t for t in (await session.list_tools()).tools}
    assert set(UCP_TOOLS) <= set(listed)
    assert "create_checkout_session" in listed  # the ACP tools stay
    for name in UCP_TOOLS:
        schema = listed[name].input_schema
        Draft202012Validator.check_schema(schema)
        params = methods[name]["params"]
        assert set(schema["properties"]) == {p["name"] for p in params}
        assert set(schema["required"]) == {p["name"] for p in params if p.get("required")}
        served_meta = schema["properties"]["meta"]
        assert "ucp-agent" in served_meta["required"]
        assert served_meta["properties"]["ucp-agent"] == \
            spec["components"]["schemas"]["meta"]["properties"]["ucp-agent"]
        needs_key = name in ("complete_checkout", "cancel_checkout")
        assert ("idempotency-key" in served_meta["required"]) is needs_key
        assert schema["properties"]["id" if name != "create_checkout" else "meta"]
        # Every embedded document is one of the spec's (same $id), nothing points outside.
        for embedded in schema.get("$defs", {}).values():
            assert embedded["$id"].startswith("https://ucp.dev/schemas/")
    validator = Draft202012Validator(listed["create_checkout"].input_schema)
    good = {"meta": {"ucp-agent": {"profile": "https://p.example/profile.json"}},
            "checkout": create_body()}
    assert not list(validator.iter_errors(good))
    # Request resolution: id/status/totals are omitted on create, line_items required.
    assert list(validator.iter_errors({**good, "checkout": {}}))
    bad = {**good, "checkout": create_body(quantity="two")}  # type: ignore[arg-type]
    assert list(validator.iter_errors(bad))
    complete = Draft202012Validator(listed["complete_checkout"].input_schema)
    assert list(complete.iter_errors({"meta": good["meta"], "id": "x", "checkout": {}}))


async def test_discovery_advertises_mcp_after_rest(shop: Runtime, backend: str) -> None:
    async with serving(shop) as app, httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="https://shop.test") as rest:
        body = (await rest.get("/.well-known/ucp")).json()
    ucp_schema.business_profile(body)
    services = body["ucp"]["services"]["dev.ucp.shopping"]
    assert [s["transport"] for s in services] == ["rest", "mcp"]
    assert services[1]["endpoint"] == "https://shop.test/mcp"
    assert services[1]["schema"].endswith("/services/shopping/mcp.openrpc.json")


async def test_create_update_complete_over_mcp(shop: Runtime, backend: str) -> None:
    async with world(shop) as (platform, session, _):
        created = await checkout(session, "create_checkout", {
            "meta": meta(platform, str(uuid.uuid4())),
            "checkout": create_body(quantity=2, buyer={"email": "ada@example.com"})})
        assert created["status"] == "incomplete"
        assert {t["type"]: t["amount"] for t in created["totals"]} == {"subtotal": 600,
                                                                      "total": 600}
        line_id = created["line_items"][0]["id"]
        fulfillment = shipping("ship_express")
        fulfillment["methods"][0]["line_item_ids"] = [line_id]
        updated = await checkout(session, "update_checkout", {
            "meta": meta(platform), "id": created["id"],
            "checkout": {"line_items": [{"id": line_id, "item": {"id": "item_123"},
                                         "quantity": 2}],
                         "fulfillment": fulfillment, "discounts": {"codes": ["10OFF"]}}})
        assert updated["id"] == created["id"]
        assert updated["status"] == "ready_for_complete", updated.get("messages")
        assert {t["type"]: t["amount"] for t in updated["totals"]}["discount"] == -60
        done = await checkout(session, "complete_checkout", {
            "meta": meta(platform, str(uuid.uuid4())), "id": created["id"],
            "checkout": payment()})
        assert done["status"] == "completed"
        assert done["order"]["id"]
        got = await checkout(session, "get_checkout", {"meta": meta(platform),
                                                       "id": created["id"]})
        assert got["status"] == "completed"
        assert got["order"] == done["order"]


async def test_one_session_across_rest_and_mcp(shop: Runtime, backend: str) -> None:
    async with world(shop) as (platform, session, rest):
        resp = await rest.post("/ucp/checkout-sessions", headers=platform.headers(),
                               json=create_body(fulfillment=shipping()))
        assert resp.status_code == 201, resp.text
        made = resp.json()
        got = await checkout(session, "get_checkout", {"meta": meta(platform),
                                                       "id": made["id"]})
        assert got["id"] == made["id"]
        assert got["totals"] == made["totals"]
        assert got["status"] == "ready_for_complete"
        done = await checkout(session, "complete_checkout", {
            "meta": meta(platform, str(uuid.uuid4())), "id": made["id"],
            "checkout": payment()})
        assert done["status"] == "completed"
        again = await rest.get(f"/ucp/checkout-sessions/{made['id']}",
                               headers=platform.headers())
        assert again.json()["status"] == "completed"
        assert again.json()["order"] == done["order"]


async def test_idempotency_replay_and_conflict(shop: Runtime, backend: str) -> None:
    async with world(shop) as (platform, session, rest):
        key = str(uuid.uuid4())
        args = {"meta": meta(platform, key), "checkout": create_body(quantity=1)}
        first, _, first_meta = await tool(session, "create_checkout", args)
        second, is_error, second_meta = await tool(session, "create_checkout", args)
        assert not is_error
        assert second == first
        assert second_meta.get("idempotent_replayed") is True
        assert not first_meta.get("idempotent_replayed")
        # The same key on REST with the same body is the same call.
        resp = await rest.post("/ucp/checkout-sessions", headers=platform.headers(key),
                               json=create_body(quantity=1))
        assert resp.json()["id"] == first["id"]
        with pytest.raises(MCPError) as caught:
            await session.call_tool("create_checkout", {
                "meta": meta(platform, key), "checkout": create_body(quantity=3)})
        assert caught.value.error.code == -32000
        assert caught.value.error.data["code"] == "idempotency_conflict"
        # complete: retried with the same key never charges twice.
        ready = await checkout(session, "create_checkout", {
            "meta": meta(platform), "checkout": create_body(fulfillment=shipping())})
        pay = {"meta": meta(platform, str(uuid.uuid4())), "id": ready["id"],
               "checkout": payment()}
        one = await checkout(session, "complete_checkout", pay)
        two, _, two_meta = await tool(session, "complete_checkout", pay)
        assert two == one
        assert two_meta.get("idempotent_replayed") is True


async def test_errors(shop: Runtime, backend: str) -> None:
    async with world(shop) as (platform, session, _):
        # Business outcome: an unknown product → error_response as a result (isError).
        body, is_error, _ = await tool(session, "create_checkout", {
            "meta": meta(platform), "checkout": create_body(item="no_such_item")})
        assert is_error
        ucp_schema.error_response(body)
        assert body["messages"][0]["code"] == "item_unavailable"
        # Input that the binding's schema refuses → error_response with the path.
        body, is_error, _ = await tool(session, "create_checkout", {
            "meta": meta(platform),
            "checkout": create_body(quantity="two")})  # type: ignore[arg-type]
        assert is_error
        ucp_schema.error_response(body)
        assert body["messages"][0]["path"].startswith("$.line_items[0]")
        # Unknown session.
        body, is_error, _ = await tool(session, "get_checkout", {"meta": meta(platform),
                                                                 "id": "nope"})
        assert is_error
        assert body["messages"][0]["code"] == "not_found"
        # complete without an idempotency key: refused by the binding's schema.
        body, is_error, _ = await tool(session, "complete_checkout", {
            "meta": meta(platform), "id": "nope", "checkout": payment()})
        assert is_error
        assert "idempotency-key" in body["messages"][0]["path"]
        # A declined payment: error_response (402 on REST), the session stays open.
        ready = await checkout(session, "create_checkout", {
            "meta": meta(platform), "checkout": create_body(fulfillment=shipping())})
        body, is_error, _ = await tool(session, "complete_checkout", {
            "meta": meta(platform, str(uuid.uuid4())), "id": ready["id"],
            "checkout": payment("fail_token")})
        assert is_error
        ucp_schema.error_response(body)
        assert body["messages"][0]["code"] == "payment_declined"
        still = await checkout(session, "get_checkout", {"meta": meta(platform),
                                                         "id": ready["id"]})
        assert still["status"] == "ready_for_complete"
        # Discovery errors are JSON-RPC -32001 with {code, content}.
        with pytest.raises(MCPError) as caught:
            await session.call_tool("get_checkout", {"meta": {}, "id": "x"})
        assert caught.value.error.code == -32001
        assert caught.value.error.data["code"] == "invalid_profile_url"
        with pytest.raises(MCPError) as caught:
            await session.call_tool("get_checkout", {"meta": {"ucp-agent": {
                "profile": platform.profile_url, "version": "2099-01-01"}}, "id": "x"})
        assert caught.value.error.code == -32001
        assert caught.value.error.data["code"] == "version_unsupported"


async def test_get_order_over_mcp(shop: Runtime, backend: str) -> None:
    """order-mcp.md: ``get_order`` with ``{meta, id}`` answers the UCP order (valid against
    order.json, the same as REST ``GET /ucp/orders/{id}``); not found and another agent's
    order are ``error_response`` results; the ACP form ``{order_id}`` of the same tool
    still answers the ACP ``Order``."""
    methods = {m["name"]: m for m in openrpc()["methods"]}
    async with world(shop) as (platform, session, rest):
        listed = {t.name: t for t in (await session.list_tools()).tools}
        schema = listed["get_order"].input_schema
        Draft202012Validator.check_schema(schema)
        assert {p["name"] for p in methods["get_order"]["params"]} <= set(schema["properties"])
        assert schema["properties"]["meta"]["properties"]["ucp-agent"] == \
            openrpc()["components"]["schemas"]["meta"]["properties"]["ucp-agent"]
        served = Draft202012Validator(schema)
        assert not list(served.iter_errors({"meta": meta(platform), "id": "order_abc123"}))
        assert not list(served.iter_errors({"order_id": "ord_1"}))
        ready = await checkout(session, "create_checkout", {
            "meta": meta(platform), "checkout": create_body(fulfillment=shipping())})
        done = await checkout(session, "complete_checkout", {
            "meta": meta(platform, str(uuid.uuid4())), "id": ready["id"],
            "checkout": payment()})
        order_id = done["order"]["id"]
        body, is_error, _ = await tool(session, "get_order", {"meta": meta(platform),
                                                              "id": order_id})
        assert not is_error, body
        ucp_schema.order(body)
        assert (body["id"], body["checkout_id"]) == (order_id, ready["id"])
        assert "dev.ucp.shopping.order" in body["ucp"]["capabilities"]
        by_rest = await rest.get(f"/ucp/orders/{order_id}", headers=platform.headers())
        assert by_rest.status_code == 200
        assert body == by_rest.json()
        # Not found, and an order placed by another agent (ACP): the same error_response.
        acp = Agent(rest)
        acp_session = await acp.ready_session()
        acp_order = (await acp.complete(acp_session["id"])).json()["order"]["id"]
        for other in ("ord_nope", acp_order):
            body, is_error, _ = await tool(session, "get_order", {"meta": meta(platform),
                                                                  "id": other})
            assert is_error
            ucp_schema.error_response(body)
            assert body["messages"][0]["code"] == "not_found"
        # Input the binding's schema refuses, and discovery errors, as the checkout tools.
        body, is_error, _ = await tool(session, "get_order", {"meta": meta(platform),
                                                              "id": 7})
        assert is_error
        assert body["messages"][0]["path"] == "$.id"
        with pytest.raises(MCPError) as caught:
            await session.call_tool("get_order", {"meta": {}, "id": order_id})
        assert caught.value.error.code == -32001
        assert caught.value.error.data["code"] == "invalid_profile_url"
        # The ACP form: this agent's own order as an ACP Order.
        acp_form, is_error, _ = await tool(session, "get_order", {"order_id": acp_order})
        assert not is_error
        assert (acp_form["type"], acp_form["id"]) == ("order", acp_order)


async def test_no_key_is_refused(shop: Runtime, backend: str) -> None:
    async with serving(shop) as app, httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=app), base_url="http://test") as http:
        resp = await http.post("/mcp", json={
            "jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "create_checkout", "arguments": {"checkout": {}}}},
            headers={"Accept": "application/json, text/event-stream"})
        assert resp.status_code == 401
        wrong = await http.post("/mcp", json={
            "jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            headers={"Accept": "application/json, text/event-stream",
                     "Authorization": "Bearer wrong-key"})
        assert wrong.status_code == 401
