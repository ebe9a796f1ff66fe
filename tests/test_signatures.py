"""Agent request signatures: off / log / enforce."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from api import signatures
from api.auth import create_agent_key
from api.runtime import build_runtime
from tests.conftest import API_VERSION, app_client, make_settings, reset_database

SECRET = "agent-signing-secret"


@pytest.fixture
async def signed_env(database_url: str, request: pytest.FixtureRequest
                     ) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    await reset_database(database_url)
    rt = build_runtime(make_settings(database_url, request_signature_mode=request.param))
    async with rt.sessionmaker() as db, db.begin():
        _, key = await create_agent_key(db, "signed-agent", signing_secret=SECRET)
    async with app_client(rt, "http://t") as client:
        yield client, key
    await rt.close()


def signed_headers(key: str, body: bytes, *, timestamp: str | None = None,
                   secret: str = SECRET) -> dict[str, str]:
    ts = timestamp or datetime.now(UTC).isoformat()
    return {"Authorization": f"Bearer {key}", "API-Version": API_VERSION,
            "Idempotency-Key": f"sig-{ts}", "Content-Type": "application/json",
            "Timestamp": ts, "Signature": signatures.sign(secret, ts, body)}


BODY = json.dumps({"currency": "usd", "line_items": [{"id": "item_123"}],
                   "capabilities": {}}).encode()


def test_canonical_json_ignores_order_and_whitespace() -> None:
    a = signatures.canonical_json(b'{"b": 1.0, "a": [2, 1]}')
    b = signatures.canonical_json(b'{"a":[2,1],"b":1}')
    assert a == b == b'{"a":[2,1],"b":1}'
    assert signatures.canonical_json(b'{"a":[1,2]}') != a


@pytest.mark.parametrize("signed_env", ["enforce"], indirect=True)
async def test_enforce_accepts_valid_and_rejects_bad_signatures(signed_env, backend) -> None:
    client, key = signed_env
    ok = await client.post("/checkout_sessions", content=BODY, headers=signed_headers(key, BODY))
    assert ok.status_code == 201, ok.text
    # Re-serialised with other whitespace/key order: still valid (canonical JSON).
    pretty = json.dumps(json.loads(BODY), indent=2, sort_keys=False).encode()
    headers = signed_headers(key, BODY)
    resp = await client.post("/checkout_sessions", content=pretty, headers=headers)
    assert resp.status_code == 201
    tampered = BODY.replace(b"item_123", b"few-left")
    cases = {
        "tampered body": (tampered, signed_headers(key, BODY)),
        "wrong secret": (BODY, signed_headers(key, BODY, secret="other")),
        "stale timestamp": (BODY, signed_headers(
            key, BODY, timestamp=(datetime.now(UTC) - timedelta(minutes=10)).isoformat())),
        "garbage timestamp": (BODY, signed_headers(key, BODY, timestamp="yesterday")),
    }
    for name, (body, hdrs) in cases.items():
        resp = await client.post("/checkout_sessions", content=body, headers=hdrs)
        assert resp.status_code == 401, name
        assert resp.json()["code"] == "invalid_signature", name
    unsigned = {k: v for k, v in signed_headers(key, BODY).items()
                if k not in ("Signature", "Timestamp")}
    resp = await client.post("/checkout_sessions", content=BODY, headers=unsigned)
    assert resp.status_code == 401


@pytest.mark.parametrize("signed_env", ["log"], indirect=True)
async def test_log_mode_lets_requests_through_and_logs_without_secrets(
        signed_env, backend, caplog) -> None:
    client, key = signed_env
    hdrs = signed_headers(key, BODY, secret="wrong")
    with caplog.at_level(logging.WARNING, logger="reelcart.auth"):
        resp = await client.post("/checkout_sessions", content=BODY, headers=hdrs)
    assert resp.status_code == 201
    assert any("signature rejected" in r.getMessage() for r in caplog.records)
    logged = " ".join(str(r.__dict__) for r in caplog.records)
    assert hdrs["Signature"] not in logged
    assert key not in logged
