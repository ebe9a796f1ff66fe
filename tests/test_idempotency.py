"""ACP idempotency (RFC §6) and concurrency: replay, conflict, in-flight, no double effects."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import func, select, update

from models import CheckoutSession, IdempotencyRecord, Order, SandboxCharge, Variant
from models.base import utc_now
from tests.acp_schema import assert_valid
from tests.conftest import Agent

CREATE = {"currency": "usd", "line_items": [{"id": "item_123"}], "capabilities": {}}


async def count(runtime, model, *where) -> int:
    async with runtime.read_sessionmaker() as db:
        return int(await db.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def test_replay_returns_the_stored_response(agent: Agent, runtime, backend: str) -> None:
    first = await agent.post("/checkout_sessions", CREATE, key="same-key")
    assert first.status_code == 201
    assert first.headers["idempotency-key"] == "same-key"
    # Key order and whitespace do not make a different request.
    reordered = {"capabilities": {}, "line_items": [{"id": "item_123"}], "currency": "usd"}
    second = await agent.post("/checkout_sessions", reordered, key="same-key")
    assert second.status_code == 201
    assert second.headers["idempotent-replayed"] == "true"
    assert second.json() == first.json()
    assert await count(runtime, CheckoutSession) == 1


async def test_different_body_same_key_is_422_conflict(agent: Agent, backend: str) -> None:
    await agent.post("/checkout_sessions", CREATE, key="k-conflict")
    changed = dict(CREATE, line_items=[{"id": "item_123", "quantity": 2}])
    resp = await agent.post("/checkout_sessions", changed, key="k-conflict")
    assert resp.status_code == 422
    assert_valid(resp.json(), "Error")
    assert resp.json()["code"] == "idempotency_conflict"
    # null is not the same as absent.
    await agent.post("/checkout_sessions", dict(CREATE), key="k-null")
    resp = await agent.post("/checkout_sessions", dict(CREATE, buyer=None), key="k-null")
    assert resp.status_code == 422


async def test_key_scope_is_agent_and_path(agent: Agent, runtime, backend: str) -> None:
    from api.auth import create_agent_key

    session = await agent.ready_session()
    a = await agent.post("/checkout_sessions", CREATE, key="shared")
    b = await agent.post(f"/checkout_sessions/{session['id']}", {"order_notes": "x"},
                         key="shared")
    assert a.status_code == 201
    assert b.status_code == 200  # another path: independent
    async with runtime.sessionmaker() as db, db.begin():
        _, other_key = await create_agent_key(db, "second-agent")
    c = await Agent(agent.http, key=other_key).post("/checkout_sessions", CREATE, key="shared")
    assert c.status_code == 201
    assert "idempotent-replayed" not in c.headers
    assert c.json()["id"] != a.json()["id"]


async def test_in_flight_duplicate_gets_409_with_retry_after(agent: Agent, runtime,
                                                             backend: str) -> None:
    session = await agent.ready_session()
    slow = agent.complete(session["id"], "spt_test_slow", key="in-flight")
    async def duplicate_after_a_moment():
        await asyncio.sleep(0.15)
        return await agent.complete(session["id"], "spt_test_slow", key="in-flight")
    first, second = await asyncio.gather(slow, duplicate_after_a_moment())
    assert first.status_code == 200
    assert first.json()["status"] == "completed"
    assert second.status_code == 409
    assert_valid(second.json(), "Error")
    assert second.json()["code"] == "idempotency_in_flight"
    assert int(second.headers["retry-after"]) >= 1
    # After it finishes the same key replays the completed session.
    third = await agent.complete(session["id"], "spt_test_slow", key="in-flight")
    assert third.headers["idempotent-replayed"] == "true"
    assert third.json() == first.json()
    assert await count(runtime, Order) == 1


async def test_concurrent_duplicate_creates_make_one_session(agent: Agent, runtime,
                                                              backend: str) -> None:
    """Create claims its key inside its own transaction: a duplicate sent while the first
    is running waits for it and replays it (no 409, no second session)."""
    results = await asyncio.gather(*(agent.post("/checkout_sessions", CREATE, key="racing")
                                     for _ in range(6)))
    assert [r.status_code for r in results] == [201] * 6
    assert len({r.json()["id"] for r in results}) == 1
    assert sum(r.headers.get("idempotent-replayed") == "true" for r in results) == 5
    assert await count(runtime, CheckoutSession) == 1
    assert await count(runtime, IdempotencyRecord, IdempotencyRecord.key == "racing") == 1


async def test_update_error_is_stored_without_its_effect(agent: Agent, runtime,
                                                         backend: str) -> None:
    """A 4xx from an atomic write rolls its effect back but keeps the answer for replay."""
    session = await agent.ready_session()
    bad = {"line_items": [{"id": "no-such-item"}], "order_notes": "must not stick"}
    first = await agent.post(f"/checkout_sessions/{session['id']}", bad, key="bad-update")
    assert first.status_code == 400
    again = await agent.post(f"/checkout_sessions/{session['id']}", bad, key="bad-update")
    assert again.status_code == 400
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    fetched = (await agent.get(f"/checkout_sessions/{session['id']}")).json()
    assert fetched["line_items"] == session["line_items"]
    async with runtime.read_sessionmaker() as db:
        notes = await db.scalar(select(CheckoutSession.order_notes).where(
            CheckoutSession.id == session["id"]))
    assert notes != "must not stick"


async def test_5xx_is_not_stored_and_retry_is_processed_fresh(agent: Agent, runtime,
                                                              backend: str) -> None:
    session = await agent.ready_session([{"id": "few-left"}])
    resp = await agent.complete(session["id"], "spt_test_unavailable", key="outage")
    assert resp.status_code == 503
    assert_valid(resp.json(), "Error")
    assert resp.json()["type"] == "service_unavailable"
    assert await count(runtime, IdempotencyRecord, IdempotencyRecord.key == "outage") == 0
    # Session left retryable with stock untouched.
    fetched = (await agent.get(f"/checkout_sessions/{session['id']}")).json()
    assert fetched["status"] == "ready_for_payment"
    async with runtime.read_sessionmaker() as db:
        assert await db.scalar(select(Variant.stock).where(Variant.id == "few-left")) == 5
    retry = await agent.complete(session["id"], "spt_test_unavailable", key="outage")
    assert retry.status_code == 503
    assert "idempotent-replayed" not in retry.headers


async def test_4xx_is_stored_and_replayed(agent: Agent, runtime, backend: str) -> None:
    resp = await agent.create(line_items=[{"id": "no-such-item"}])
    key = resp.request.headers["Idempotency-Key"]
    again = await agent.post("/checkout_sessions", {
        "currency": "usd", "capabilities": {"interventions": {"supported": ["3ds"]}},
        "line_items": [{"id": "no-such-item"}]}, key=key)
    assert again.status_code == 400
    assert again.headers["idempotent-replayed"] == "true"


async def test_keys_are_kept_24h_and_expired_keys_start_fresh(agent: Agent, runtime,
                                                              backend: str) -> None:
    await agent.post("/checkout_sessions", CREATE, key="old-key")
    async with runtime.read_sessionmaker() as db:
        record = await db.scalar(select(IdempotencyRecord).where(
            IdempotencyRecord.key == "old-key"))
    assert record.expires_at - record.created_at >= timedelta(hours=24)
    async with runtime.sessionmaker() as db, db.begin():
        await db.execute(update(IdempotencyRecord).values(
            expires_at=utc_now() - timedelta(seconds=1)))
    resp = await agent.post("/checkout_sessions", dict(CREATE, currency="USD"), key="old-key")
    assert resp.status_code == 201
    assert "idempotent-replayed" not in resp.headers
    assert await count(runtime, CheckoutSession) == 2


async def test_abandoned_in_flight_claim_is_taken_over(agent: Agent, runtime,
                                                       backend: str) -> None:
    """A process that died holding a key does not block the key forever."""
    await agent.post("/checkout_sessions", CREATE, key="orphan")
    async with runtime.sessionmaker() as db, db.begin():
        await db.execute(update(IdempotencyRecord).where(IdempotencyRecord.key == "orphan")
                         .values(state="in_flight", status_code=None, response_body=None,
                                 locked_until=utc_now() - timedelta(seconds=1)))
    resp = await agent.post("/checkout_sessions", CREATE, key="orphan")
    assert resp.status_code == 201
    assert "idempotent-replayed" not in resp.headers


async def test_50_concurrent_completes_make_exactly_one_order(agent: Agent, runtime,
                                                              backend: str) -> None:
    session = await agent.ready_session([{"id": "few-left"}])
    results = await asyncio.gather(*(agent.complete(session["id"]) for _ in range(50)))
    statuses = sorted(r.status_code for r in results)
    assert statuses.count(200) >= 1
    assert set(statuses) <= {200, 405, 409}, statuses
    assert all(r.status_code < 500 for r in results)
    completed = [r for r in results if r.status_code == 200]
    order_ids = {r.json()["order"]["id"] for r in completed}
    assert len(order_ids) == 1
    assert await count(runtime, Order) == 1
    assert await count(runtime, SandboxCharge, SandboxCharge.status == "succeeded") == 1
    async with runtime.read_sessionmaker() as db:
        assert await db.scalar(select(Variant.stock).where(Variant.id == "few-left")) == 4


async def test_last_unit_is_never_oversold(agent: Agent, runtime, backend: str) -> None:
    sessions = [await agent.ready_session([{"id": "last-unit"}]) for _ in range(12)]
    results = await asyncio.gather(*(agent.complete(s["id"]) for s in sessions))
    assert all(r.status_code == 200 for r in results), [r.text for r in results]
    outcomes = [r.json()["status"] for r in results]
    assert outcomes.count("completed") == 1
    losers = [r.json() for r in results if r.json()["status"] != "completed"]
    assert all(any(m["code"] == "out_of_stock" for m in s["messages"]) for s in losers)
    assert await count(runtime, Order) == 1
    assert await count(runtime, SandboxCharge) == 1  # no loser was charged
    async with runtime.read_sessionmaker() as db:
        assert await db.scalar(select(Variant.stock).where(Variant.id == "last-unit")) == 0
