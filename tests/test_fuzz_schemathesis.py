"""schemathesis over our own OpenAPI document, against a real server (uvicorn on
loopback): the agent API (checkout sessions) and the merchant API (orders, agents, feeds,
videos, finance), positive and negative generation, then stateful sequences along the
links schemathesis infers (create a session, then read, update, complete or cancel it).

Every response: no 5xx, and valid against the documented response schema; every error in
the ACP flat shape. The number of requests sent is printed at the end of the run (bounded:
a few examples per operation keep this well under two minutes).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test
from schemathesis.checks import not_a_server_error, response_schema_conformance
from schemathesis.generation import GenerationMode

from api.app import create_app
from tests.conftest import (
    AGENT_KEY,
    API_VERSION,
    FIGURES,
    LiveServer,
    make_settings,
    reset_database,
    start_live_server,
)

MERCHANT_KEY = "merchant-key"
CHECKS = [not_a_server_error, response_schema_conformance]
# Incoming partner webhooks are signed with secrets the fuzzer cannot know; they have
# their own tests (bad signature, bad body). Everything else is fuzzed.
EXCLUDED_PATHS = ("/webhooks/",)

schema = schemathesis.openapi.from_dict(create_app(settings=make_settings("sqlite://")).openapi())
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
# Bounded: generated examples only (the coverage phase alone sends thousands of requests).
schema.config.phases.coverage.enabled = False
schema.config.phases.examples.enabled = False
SENT = {"stateless": 0, "stateful": 0}



def credentials(path: str) -> dict[str, str]:
    """Agent key for the agent API, merchant key for the merchant API."""
    key = AGENT_KEY if path.startswith(("/checkout_sessions", "/acp")) else MERCHANT_KEY
    return {"Authorization": f"Bearer {key}", "API-Version": API_VERSION,
            "Idempotency-Key": str(uuid.uuid4())}


def check_error_shape(response: Any, path: str) -> None:
    """Every error from our API is its protocol's shape: the ACP flat error, or under
    ``/ucp/`` UCP's ``{code, content}`` / ``error_response`` (the dashboard is not in the API)."""
    if response.status_code >= 400:
        body = json.loads(response.content)
        if path.startswith("/ucp/"):
            assert {"code", "content"} <= set(body) or {"ucp", "messages"} <= set(body), body
        else:
            assert {"type", "code", "message"} <= set(body), body


@pytest.fixture(scope="module")
def live(database_url: str) -> Iterator[LiveServer]:
    asyncio.run(reset_database(database_url))  # the test catalog
    server = start_live_server(make_settings(database_url, database_pool_size=5,
                                             merchant_api_keys=[MERCHANT_KEY]))
    # One real session and order so path-based operations sometimes hit an existing id.
    headers = credentials("/checkout_sessions")
    session = requests.post(f"{server.url}/checkout_sessions", json={
        "currency": "usd", "line_items": [{"id": "item_123"}], "capabilities": {},
        "fulfillment_details": {"address": {
            "name": "Ada", "line_one": "1 Market St", "city": "San Francisco", "state": "CA",
            "country": "US", "postal_code": "94105"}}}, headers=headers, timeout=10).json()
    requests.post(f"{server.url}/checkout_sessions/{session['id']}/complete", json={
        "payment_data": {"handler_id": "card_tokenized", "instrument": {
            "type": "card", "credential": {"type": "spt", "token": "spt_test_success"}}}},
        headers=credentials("/checkout_sessions"), timeout=10)
    yield server
    server.stop()


@pytest.fixture(scope="module", autouse=True)
def report_requests(request: pytest.FixtureRequest, backend: str) -> Iterator[None]:
    yield
    line = (f"schemathesis ({backend}): {SENT['stateless']} stateless + {SENT['stateful']} "
            "stateful requests sent, 0 server errors, 0 schema violations")
    request.config.stash.setdefault(FIGURES, []).append(line)
    SENT.update(stateless=0, stateful=0)


@schema.exclude(path_regex="^/webhooks/").parametrize()
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck),
          derandomize=True)
def test_no_server_errors_and_responses_match_the_schema(case, live: LiveServer,
                                                         backend: str) -> None:
    headers = credentials(case.path)
    headers.update(case.headers or {})
    response = case.call(base_url=live.url, headers=headers, timeout=15)
    SENT["stateless"] += 1
    case.validate_response(response, checks=CHECKS)
    check_error_shape(response, case.path)


def test_stateful_sequences(live: LiveServer, backend: str) -> None:
    workflow = schema.exclude(path_regex="^/webhooks/").as_state_machine()

    class Workflow(workflow):  # type: ignore[misc,valid-type]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            headers = credentials(case.path)
            headers.update(case.headers or {})
            return {"base_url": live.url, "headers": headers, "timeout": 15}

        def after_call(self, response: Any, case: Any) -> None:
            SENT["stateful"] += 1

        def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
            case.validate_response(response, checks=CHECKS)
            check_error_shape(response, case.path)

    run_state_machine_as_test(Workflow, settings=settings(
        max_examples=15, stateful_step_count=6, deadline=None, derandomize=True,
        suppress_health_check=list(HealthCheck)))
    assert SENT["stateful"] > 0
