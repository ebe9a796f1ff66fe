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
