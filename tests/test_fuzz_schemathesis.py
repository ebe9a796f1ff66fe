"""No request, however malformed, gets a 500: schemathesis over our own OpenAPI document,
against a real server (uvicorn on loopback), positive and negative generation."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode

from api.app import create_app
from tests.conftest import AGENT_KEY, API_VERSION, LiveServer, make_settings, start_live_server

schema = schemathesis.openapi.from_dict(create_app(settings=make_settings("sqlite://")).openapi())
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])


@pytest.fixture(scope="module")
def live(database_url: str) -> Iterator[LiveServer]:
    server = start_live_server(make_settings(database_url, database_pool_size=5))
    # One real session so path-based operations sometimes hit an existing id.
    requests.post(f"{server.url}/checkout_sessions", json={
        "currency": "usd", "line_items": [{"id": "item_123"}], "capabilities": {}},
        headers={"Authorization": f"Bearer {AGENT_KEY}", "API-Version": API_VERSION,
                 "Idempotency-Key": "seed"}, timeout=10)
    yield server
    server.stop()


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck),
          derandomize=True)
def test_no_server_errors(case, live: LiveServer, backend: str) -> None:
    headers = {"Authorization": f"Bearer {AGENT_KEY}", "API-Version": API_VERSION,
               "Idempotency-Key": str(uuid.uuid4())}
    headers.update(case.headers or {})
    response = case.call(base_url=live.url, headers=headers, timeout=15)
    case.validate_response(response, checks=[not_a_server_error])
    if response.status_code >= 400:  # every error is its protocol's shape
        body = json.loads(response.content)
        if case.path.startswith("/ucp/"):  # UCP: {code, content} or an error_response
            assert {"code", "content"} <= set(body) or {"ucp", "messages"} <= set(body), body
        else:
            assert {"type", "code", "message"} <= set(body), body
