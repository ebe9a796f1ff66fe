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
                assert operation["security"] == [{"HTTPBearer": []}], (method, path)
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


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
