"""CommissionPayout runs over Stripe Connect transfers, faked at the HTTP layer: exactly once across
retries, lost answers, crashes and duplicate runs; reconciliation from transfer events."""

from __future__ import annotations

import asyncio
import json
import re
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta

import pytest
from pytest_httpx import HTTPXMock
from sqlalchemy import select

from api import worker
from api.runtime import Runtime
from commissions import service
from commissions.events import apply_transfer
from commissions.payouts import prepare_payout, run_payouts, transfer_request
from models import CommissionPayout, PayoutRun
from models.base import utc_now
from models.db import transaction
from payments.provider import PaymentUnavailable
from payments.transfers import TransferRequest
from tests.commission_world import base_world, contract, entries, order, payee
from tests.conftest import STRIPE_KEY, app_client, sandbox_runtime
from tests.fake_stripe import FakeStripe
from tests.fake_stripe_connect import FakeStripeConnect, sign
from webhooks import inbox


@pytest.fixture
def connect(httpx_mock: HTTPXMock) -> FakeStripeConnect:
    fake = FakeStripeConnect(connected_accounts={"acct_1AliceConnect", "acct_1BobConnect"},
                             fallback=FakeStripe().handle)
    httpx_mock.add_callback(fake.handle, url=re.compile(r"https://api\.stripe\.com/.*"),
                            is_reusable=True, is_optional=True)
    return fake


@pytest.fixture
async def rt(database_url: str, connect: FakeStripeConnect) -> AsyncIterator[Runtime]:
    # No SDK retries: a lost answer reaches our code (the SDK would otherwise replay the
    # same key itself, which is also safe).
    async with sandbox_runtime(
            database_url, payments_provider="stripe", stripe_api_key=STRIPE_KEY,
            stripe_webhook_secret="whsec_test_secret", stripe_max_network_retries=0,
            merchant_api_keys=["merchant-key"]) as runtime:
        yield runtime


async def _earn(runtime: Runtime, *, days_ago: int = 40) -> None:
    """alice earns 1500 and bob 500 on a locked sale; carol (no Connect account) 300."""
    async with transaction(runtime.sessionmaker) as db:
        await base_world(db)
        await payee(db, "alice", account="acct_1AliceConnect")
        await payee(db, "bob", account="acct_1BobConnect", kind="likeness")
        await payee(db, "carol")
        await contract(db, "c-v1", "video", "v1", [("alice", 3), ("bob", 1)], rate_bps=1000)
        await contract(db, "c-v2", "video", "v2", [("carol", 1)], rate_bps=1000)
        await order(db, touches=[("v1", 1)], lines=[("jacket", 1, 20000)],
                    at=utc_now() - timedelta(days=days_ago))
        await order(db, touches=[("v2", 1)], lines=[("jacket", 1, 3000)],
                    at=utc_now() - timedelta(days=days_ago))


def _posts(fake: FakeStripeConnect) -> list:
    return [r for r in fake.requests if r.method == "POST" and r.url.path == "/v1/transfers"]


async def _run(runtime: Runtime, **kw: object) -> dict:
    kw.setdefault("minimum", 100)
    kw.setdefault("dry_run", False)
    return await run_payouts(runtime.sessionmaker, runtime.transfers, **kw)  # type: ignore


async def test_payout_run_pays_each_locked_balance_once(rt: Runtime,
                                                        connect: FakeStripeConnect) -> None:
    await _earn(rt)
    dry = await _run(rt, dry_run=True)
    assert [(i["payee_id"], i["amount"], i["action"], i["reason"]) for i in dry["items"]] == [
        ("alice", 1500, "pay", None), ("bob", 500, "pay", None),
        ("carol", 300, "skip", "no_connect_account")]
    assert dry["totals"] == {"usd": 2000}
    assert connect.requests == []  # a dry run calls nobody

    done = await _run(rt, run_id="run-2026-11")
    assert done["summary"]["paid"] == 2
    posts = _posts(connect)
    assert len(posts) == 2
    form = dict(urllib.parse.parse_qsl(posts[0].content.decode()))
    async with rt.sessionmaker() as db:
        alice_payout = list(await db.scalars(select(CommissionPayout.id).where(
            CommissionPayout.payee_id == "alice")))
    assert form["amount"] == "1500"
    assert form["currency"] == "usd"
    assert form["destination"] == "acct_1AliceConnect"
    assert form["transfer_group"] == "run-2026-11"
    assert posts[0].headers["Idempotency-Key"] == "reelcart:payout:run-2026-11:alice"
    assert form["metadata[reelcart_payout_id]"] == alice_payout[0]
    statement_id = form["metadata[reelcart_statement_id]"]
    async with rt.sessionmaker() as db:
        statement = await service.get_statement(db, statement_id)
        alice = await entries(db, payee_id="alice")
    assert statement["status"] == "paid"
    assert statement["payee"]["id"] == "alice"
    assert [(p["amount"], p["transfer_id"]) for p in statement["payouts"]] == [
        (1500, connect.created()[0]["id"])]
    assert [(e.kind, e.amount, e.status) for e in alice] == [
        ("sale", 1500, "paid"), ("payout", -1500, "paid")]

    # Duplicate runs: a new run id and the same run id again. Nothing is paid twice.
    again = await _run(rt)
    same = await _run(rt, run_id="run-2026-11")
    assert again["summary"]["paid"] == same["summary"]["paid"] == 0
    assert len(_posts(connect)) == 2
    assert len(connect.created()) == 2
    assert [i["reason"] for i in again["items"]] == ["no_connect_account"]


async def test_lost_answer_is_finished_by_the_retry_paying_once(
        rt: Runtime, connect: FakeStripeConnect) -> None:
    await _earn(rt)
    connect.lose_answers = 1  # Stripe makes alice's transfer; its answer never arrives
    first = await _run(rt, run_id="run-a")
    assert [(i["payee_id"], i["action"]) for i in first["items"][:2]] == [
        ("alice", "pending"), ("bob", "paid")]
    assert len(connect.created()) == 2
    async with rt.sessionmaker() as db:
        assert [e.status for e in await entries(db, payee_id="alice")] == ["in_payout"]
        run = await db.get(PayoutRun, "run-a")
        assert run is not None
        assert run.status == "running"

    retry = await _run(rt, run_id="run-a")
    assert [(p["payee_id"], p["status"]) for p in retry["resumed"]] == [("alice", "paid")]
    assert len(connect.created()) == 2  # found by transfer_group, not sent again
    assert len(_posts(connect)) == 2
    async with rt.sessionmaker() as db:
        alice = await entries(db, payee_id="alice")
        payout = list(await db.scalars(select(CommissionPayout).where(
            CommissionPayout.payee_id == "alice")))
    assert [(e.kind, e.amount, e.status) for e in alice] == [
        ("sale", 1500, "paid"), ("payout", -1500, "paid")]
    assert len(payout) == 1


async def test_crash_between_stripes_answer_and_our_commit_pays_once(
        rt: Runtime, connect: FakeStripeConnect) -> None:
    """The state a crash leaves: the recovery point committed, Stripe made the transfer
    and answered, our record of it never committed. A later, different run pays once."""
    await _earn(rt)
    async with transaction(rt.sessionmaker) as db:
        run = PayoutRun(id="run-crashed", status="running", as_of=utc_now(),
                        minimum_amount=100)
        db.add(run)
        await db.flush()
        payout = await prepare_payout(db, run, "alice", "usd")
        assert payout is not None
        request = transfer_request(payout)
    answered = await rt.transfers.create(request)  # the call the crashed process made
    assert answered.amount == 1500

    later = await _run(rt, run_id="run-next")
    assert [(p["payee_id"], p["status"], p["transfer_id"]) for p in later["resumed"]] == [
        ("alice", "paid", answered.id)]
    assert len(connect.created()) == 2  # alice once (the crashed run's), bob once
    assert sorted(t["destination"] for t in connect.created()) == [
        "acct_1AliceConnect", "acct_1BobConnect"]
    async with rt.sessionmaker() as db:
        assert sum(e.amount for e in await entries(db, payee_id="alice")) == 0


async def test_transfer_created_event_finishes_a_payout_whose_answer_was_lost(
        rt: Runtime, connect: FakeStripeConnect) -> None:
    await _earn(rt)
    connect.lose_answers = 1
    await _run(rt, run_id="run-b")
    transfer = connect.created()[0]
    payload = connect.event("transfer.created", transfer["id"])
    async with app_client(rt) as http:
        for _ in range(2):  # delivered twice: stored once
            resp = await http.post("/webhooks/stripe", content=payload,
                                   headers={"Stripe-Signature": sign(payload)})
            assert resp.status_code == 200, resp.text
    await inbox.process_due(rt.sessionmaker, rt.inbox_handlers)
    async with rt.sessionmaker() as db:
        alice = await entries(db, payee_id="alice")
    assert [(e.kind, e.status) for e in alice] == [("sale", "paid"), ("payout", "paid")]
    retry = await _run(rt, run_id="run-b")
    assert retry["resumed"] == []
    assert len(connect.created()) == 2


async def test_transfer_reversal_makes_the_amount_payable_again(
        rt: Runtime, connect: FakeStripeConnect) -> None:
    await _earn(rt)
    await _run(rt, run_id="run-c")
    alice_transfer = next(t for t in connect.created()
                          if t["destination"] == "acct_1AliceConnect")
    connect.reverse(alice_transfer["id"], 600)
    payload = connect.event("transfer.reversed", alice_transfer["id"])
    async with app_client(rt) as http:
        resp = await http.post("/webhooks/stripe", content=payload,
                               headers={"Stripe-Signature": sign(payload)})
        assert resp.status_code == 200
    await inbox.process_due(rt.sessionmaker, rt.inbox_handlers)
    async with rt.sessionmaker() as db:
        alice = await entries(db, payee_id="alice")
        report = await service.liabilities(db, "payee")
    assert [(e.kind, e.amount, e.status) for e in alice][-1] == (
        "payout_reversal", 600, "locked")
    row = next(r for r in report["rows"] if r["key"] == "alice")
    assert (row["locked"], row["paid"], row["owed"]) == (600, 900, 600)
    # a replayed event changes nothing (amount_reversed is cumulative)
    await run_replayed(rt, payload)
    async with rt.sessionmaker() as db:
        assert len(await entries(db, payee_id="alice")) == len(alice)
    nxt = await _run(rt, run_id="run-d")
    assert [(i["payee_id"], i["amount"], i["action"]) for i in nxt["items"]
            if i["payee_id"] == "alice"] == [("alice", 600, "paid")]


async def run_replayed(rt: Runtime, payload: bytes) -> None:
    async with transaction(rt.sessionmaker) as db:
        await apply_transfer(db, json.loads(payload)["data"]["object"])


async def test_same_idempotency_key_with_other_parameters_is_refused(
        rt: Runtime, connect: FakeStripeConnect) -> None:
    first = TransferRequest(amount=700, currency="usd", destination="acct_1AliceConnect",
                            transfer_group="g", idempotency_key="k-1",
                            metadata={"reelcart_payout_id": "p"})
    made = await rt.transfers.create(first)
    assert (await rt.transfers.create(first)).id == made.id  # same key, same params
    changed = replace(first, amount=701)
    with pytest.raises(PaymentUnavailable, match="(?i)idempotency"):
        await rt.transfers.create(changed)
    assert len(connect.created()) == 1
    bodies = [r for r in connect.requests if r.headers.get("Idempotency-Key") == "k-1"]
    assert len(bodies) == 3


async def test_duplicate_concurrent_runs_pay_once(rt: Runtime,
                                                  connect: FakeStripeConnect) -> None:
    await _earn(rt)
    results = await asyncio.gather(_run(rt, run_id="dup-1"), _run(rt, run_id="dup-2"))
    paid = sum(r["summary"]["paid"] for r in results)
    assert paid == 2
    assert len(connect.created()) == 2
    assert sorted(t["amount"] for t in connect.created()) == [500, 1500]


async def test_threshold_currency_and_refused_transfers(rt: Runtime,
                                                        connect: FakeStripeConnect) -> None:
    async with transaction(rt.sessionmaker) as db:
        await base_world(db)
        await payee(db, "alice", account="acct_1AliceConnect")
        await payee(db, "erin", account="acct_1ErinNotConnected")
        await payee(db, "euro", account="acct_1BobConnect", currency="eur")
        await contract(db, "c-v1", "video", "v1", [("alice", 1)], rate_bps=10)
        await contract(db, "c-v3", "video", "v3", [("erin", 1), ("euro", 1)], rate_bps=1000)
        await order(db, touches=[("v1", 1)], lines=[("jacket", 1, 20000)],
                    at=utc_now() - timedelta(days=40))
        await order(db, touches=[("v3", 1)], lines=[("boots", 1, 40000)],
                    at=utc_now() - timedelta(days=40))
    result = await _run(rt, minimum=1000)
    got = {i["payee_id"]: (i["amount"], i["action"], i["reason"]) for i in result["items"]}
    assert got["alice"] == (20, "skip", "below_minimum")
    assert got["euro"] == (2000, "skip", "currency_mismatch")
    assert got["erin"][:2] == (2000, "failed")
    assert "No such destination" in result["items"][1]["payout"]["failure"]
    async with rt.sessionmaker() as db:  # refused: erin's rows are payable again
        assert [(e.status, e.payout_id) for e in await entries(db, payee_id="erin")] == [
            ("locked", None)]
    connect.connected_accounts.add("acct_1ErinNotConnected")
    retry = await _run(rt, minimum=1000)
    assert [(i["payee_id"], i["action"]) for i in retry["items"]
            if i["payee_id"] == "erin"] == [("erin", "paid")]
    assert [t["destination"] for t in connect.created()] == ["acct_1ErinNotConnected"]


async def test_worker_sweep_finishes_a_crashed_payout(rt: Runtime,
                                                      connect: FakeStripeConnect) -> None:
    """No later run needed: the worker's recovery sweep finds the pending payout (older
    than the grace period), finds its transfer at Stripe and records it, once."""
    await _earn(rt)
    async with transaction(rt.sessionmaker) as db:
        run = PayoutRun(id="run-w", status="running", as_of=utc_now(), minimum_amount=100)
        db.add(run)
        await db.flush()
        payout = await prepare_payout(db, run, "bob", "usd")
        assert payout is not None
        payout.updated_at = utc_now() - timedelta(minutes=5)  # the process died back then
        request = transfer_request(payout)
    await rt.transfers.create(request)
    await worker.run_once(rt)
    async with rt.sessionmaker() as db:
        bob = await entries(db, payee_id="bob")
    assert [(e.kind, e.status) for e in bob] == [("sale", "paid"), ("payout", "paid")]
    assert len(connect.created()) == 1
