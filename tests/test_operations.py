"""Operability: health, readiness, metrics, docs, structured logs with request ids."""

from __future__ import annotations

import json
import logging

from api.logs import JsonFormatter
from api.runtime import build_runtime
from tests.conftest import Agent, app_client, make_settings


async def test_health_ready_metrics_docs(agent: Agent, backend: str) -> None:
    assert (await agent.http.get("/healthz")).json() == {"status": "ok"}
    ready = await agent.http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["database"] == "ok"
    await agent.ready_session()
    metrics = (await agent.http.get("/metrics")).text
    assert 'reelcart_http_requests_total{method="POST",route="/checkout_sessions",status="201"}' \
        in metrics
    assert "reelcart_http_request_duration_seconds_bucket" in metrics
    assert (await agent.http.get("/docs")).status_code == 200
    spec = (await agent.http.get("/openapi.json")).json()
    assert "/checkout_sessions/{checkout_session_id}/complete" in spec["paths"]
    # The agent headers are read by hand (cheaper) but still documented on every operation.
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            if path.startswith("/checkout_sessions"):
                headers = {p["name"]: p for p in operation["parameters"] if p["in"] == "header"}
                required = {"API-Version", "Idempotency-Key"} if method == "post" \
                    else {"API-Version"}
                assert required <= set(headers), (method, path)
                assert all(headers[name]["required"] for name in required), (method, path)
                assert operation["security"] == [{"AgentBearer": []}], (method, path)
    assert spec["components"]["securitySchemes"]["AgentBearer"]["scheme"] == "bearer"


async def test_openapi_documents_the_errors_and_keys_the_service_uses(seller: Agent,
                                                                      backend: str) -> None:
    """Validation answers 400 in the protocol's error shape (never FastAPI's 422
    HTTPValidationError); agent and merchant routes name their own key schemes."""
    spec = (await seller.http.get("/openapi.json")).json()
    assert "HTTPValidationError" not in str(spec)
    schemes = spec["components"]["securitySchemes"]
    assert schemes["AgentBearer"]["description"] == "Agent API key"
    assert schemes["MerchantBearer"]["description"] == "Merchant API key"
    assert set(schemes) == {"AgentBearer", "MerchantBearer"}
    error = {"$ref": "#/components/schemas/Error"}

    def schema_of(path: str, method: str, status: str) -> dict[str, object]:
        response = spec["paths"][path][method]["responses"][status]
        return response["content"]["application/json"]["schema"]

    assert schema_of("/orders", "get", "400") == error
    assert schema_of("/orders", "get", "401") == error
    assert spec["paths"]["/orders"]["get"]["security"] == [{"MerchantBearer": []}]
    assert schema_of("/checkout_sessions", "post", "422") == error  # idempotency conflict
    assert schema_of("/ucp/checkout-sessions/{checkout_id}", "put", "400") == {
        "$ref": "#/components/schemas/UcpError"}
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            if path.startswith(("/orders", "/videos", "/payees", "/experiments")):
                assert operation["security"] == [{"MerchantBearer": []}], (method, path)
    # What the document says is what the service does.
    resp = await seller.http.get("/orders?limit=abc",
                                 headers={"Authorization": "Bearer merchant-key"})
    assert resp.status_code == 400
    assert {"type", "code", "message", "param"} <= set(resp.json())
    assert resp.json()["param"] == "$.query.limit"
    wrong = await seller.http.get("/orders", headers={"Authorization": f"Bearer {seller.key}"})
    assert wrong.status_code == 401


async def test_readyz_reports_an_unreachable_database(tmp_path) -> None:
    rt = build_runtime(make_settings("postgresql+asyncpg://nobody@127.0.0.1:1/none"))
    async with app_client(rt, "http://t") as client:
        resp = await client.get("/readyz")
    await rt.close()
    assert resp.status_code == 503
    assert resp.json()["status"] == "unavailable"


async def test_logs_are_json_with_request_id_and_no_secrets(agent: Agent, backend: str,
                                                            caplog) -> None:
    with caplog.at_level(logging.INFO):
        session = await agent.ready_session()
        await agent.complete(session["id"], "spt_test_success")
        await agent.http.get("/healthz", headers={"Request-Id": "req-log-1"})
        await agent.ready_session()
    formatter = JsonFormatter()
    lines = [formatter.format(r) for r in caplog.records]
    access = [json.loads(line) for line in lines if '"msg": "request"' in line]
    assert access, lines
    assert all(entry["request_id"] for entry in access)
    everything = "\n".join(lines)
    assert "spt_test_success" not in everything
    assert "test-agent-key" not in everything


async def test_metrics_label_mcp_and_requests_refused_before_routing(runtime,
                                                                     backend: str) -> None:
    """MCP calls are labelled with their mount path; a body refused before any route ran
    (bad JSON, too large) with the route it was sent to; an unknown path stays
    ``unmatched`` (never the raw path: bounded label values)."""
    import httpx2

    from tests.mcp_client import serving

    samples = {
        "mcp": ("POST", "/mcp", "401"),
        "json": ("POST", "/checkout_sessions/{checkout_session_id}", "400"),
        "large": ("POST", "/checkout_sessions", "413"),
        "unknown": ("GET", "unmatched", "404"),
    }

    def counts() -> dict[str, float]:  # the counter is process-wide: compare before/after
        from api.middleware import HTTP_REQUESTS

        return {name: HTTP_REQUESTS.labels(*labels)._value.get()
                for name, labels in samples.items()}

    before = counts()
    async with serving(runtime) as app:
        async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app),
                                      base_url="http://test") as http:
            for _ in range(2):
                refused = await http.post("/mcp", json={
                    "jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}},
                    headers={"Accept": "application/json, text/event-stream"})
                assert refused.status_code == 401
            agent = {"Authorization": "Bearer test-agent-key", "API-Version": "2026-04-17",
                     "Idempotency-Key": "m-1", "Content-Type": "application/json"}
            bad = await http.post("/checkout_sessions/cs_metrics", content=b'{"a": [[[',
                                  headers=agent)
            assert bad.status_code == 400
            huge = await http.post("/checkout_sessions", content=b"x" * 3_000_000,
                                   headers={**agent, "Idempotency-Key": "m-2"})
            assert huge.status_code == 413
            assert (await http.get("/no/such/path-7f3a")).status_code == 404
            metrics = (await http.get("/metrics")).text
    after = counts()
    assert {name: after[name] - before[name] for name in samples} == {
        "mcp": 2, "json": 1, "large": 1, "unknown": 1}
    assert 'route="/mcp"' in metrics
    assert "path-7f3a" not in metrics
