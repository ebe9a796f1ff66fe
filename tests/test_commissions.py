"""Commission contracts on the real attribution ledger: matching, rate locking, remix and
multi-payee splits, the return window, clawbacks before and after payment."""

from __future__ import annotations

from datetime import timedelta

from api.runtime import Runtime
from commissions import service
from commissions.ledger import lock_due
from commissions.payouts import run_payouts
from models.base import utc_now
from models.db import transaction
from models.money import apply_rate_bps
from payments.sandbox_transfers import SandboxTransfers
from tests.commission_world import base_world, contract, entries, order, payee, reverse


async def test_contract_matching_and_rate_locking(runtime: Runtime) -> None:
    async with transaction(runtime.sessionmaker) as db:
        await base_world(db)
        for name in ("alice", "bob", "erin", "finn"):
            await payee(db, name)
        # v1: creator 3 : cameo owner 1, 10 %
        await contract(db, "c-v1", "video", "v1", [("alice", 3), ("bob", 1)], rate_bps=1000)
        # the spring campaign pays erin 2.5 %; the product pays finn 50 cents per unit
        await contract(db, "c-spring", "campaign", "spring", [("erin", 1)], rate_bps=250)
        await contract(db, "c-boots", "product", "boots", [("finn", 1)],
                       basis="fixed_per_unit", fixed_amount=50, currency="usd")
        # not in force yet, another model, another video: none of them match
        await contract(db, "c-future", "video", "v1", [("alice", 1)], rate_bps=9000,
                       effective_from=utc_now() + timedelta(days=3))
        await contract(db, "c-linear", "video", "v1", [("alice", 1)], rate_bps=9000,
                       model="linear", effective_from=utc_now() - timedelta(days=1),
                       effective_to=utc_now() - timedelta(hours=1))
        await contract(db, "c-v3", "video", "v3", [("bob", 1)], rate_bps=9000)
        sold = await order(db, touches=[("v3", 5), ("v1", 1)], tax=99,
                           lines=[("jacket", 1, 4000), ("boots", 2, 6001)])
    async with runtime.sessionmaker() as db:
        rows = await entries(db, order_id=sold.id)
    got = sorted((r.contract_id, r.payee_id, r.amount, r.rate_bps, r.base_amount)
                 for r in rows)
    # last touch (the finance default) credits v1 with the whole base 10001 (tax excluded)
    assert got == sorted([
        ("c-v1", "alice", 750, 1000, 10001), ("c-v1", "bob", 250, 1000, 10001),
        ("c-spring", "erin", 250, 250, 10001),  # 250.025 rounds half up to 250
        ("c-boots", "finn", 100, 0, 6001),  # 2 units × 50
    ])
    assert all(r.status == "pending" and r.kind == "sale" and r.model == "last_touch"
               for r in rows)

    # New terms from now on: the earlier sale keeps the rate it was computed with.
    now = utc_now()
    async with transaction(runtime.sessionmaker) as db:
        await service.end_contract(db, "c-v1", now)
        await contract(db, "c-v1-2027", "video", "v1", [("alice", 1)], rate_bps=2000,
                       effective_from=now)
        later = await order(db, touches=[("v1", 1)], lines=[("jacket", 1, 5000)],
                            at=now + timedelta(seconds=1))
    async with runtime.sessionmaker() as db:
        first = await entries(db, order_id=sold.id, contract_id="c-v1")
        second = await entries(db, order_id=later.id)
    assert {r.rate_bps for r in first} == {1000}
    assert [(r.contract_id, r.amount, r.rate_bps) for r in second
            if r.payee_id == "alice" and r.contract_id.startswith("c-v1")] == [
        ("c-v1-2027", 1000, 2000)]


async def test_remix_share_and_multi_payee_split_sum_exactly(runtime: Runtime) -> None:
    async with transaction(runtime.sessionmaker) as db:
        await base_world(db)
        for name in ("alice", "bob", "carol", "cameo1", "cameo2"):
            await payee(db, name)
        await contract(db, "c-v1", "video", "v1", [("alice", 2), ("bob", 1)], rate_bps=1000)
        # the remix: creator carol and two cameo owners, 30 % of it flows to v1's payees
        await contract(db, "c-v2", "video", "v2",
                       [("carol", 5), ("cameo1", 1), ("cameo2", 1)], rate_bps=1500,
                       remix_share_bps=3000)
        # v1's author also earns 1 % on every remix of v1 ("its remixes" scope)
        await contract(db, "c-v1-remixes", "remixes", "v1", [("alice", 1)], rate_bps=100)
        sold = await order(db, touches=[("v2", 2)], lines=[("jacket", 1, 9999)])
    async with runtime.sessionmaker() as db:
        rows = await entries(db, order_id=sold.id)
    commission = apply_rate_bps(9999, 1500)  # 1499.85 → 1500
    v2_rows = [r for r in rows if r.contract_id == "c-v2"]
    assert sum(r.amount for r in v2_rows) == commission
    upstream = {r.payee_id: r.amount for r in v2_rows if r.earned_on_video_id == "v1"}
    remix = {r.payee_id: r.amount for r in v2_rows if r.earned_on_video_id == "v2"}
    assert sum(upstream.values()) == apply_rate_bps(commission, 3000) == 450
    assert upstream == {"alice": 300, "bob": 150}  # 2 : 1
    assert remix == {"carol": 750, "cameo1": 150, "cameo2": 150}  # 5 : 1 : 1 of 1050
    assert [(r.payee_id, r.amount) for r in rows if r.contract_id == "c-v1-remixes"] == [
        ("alice", 100)]
    assert not [r for r in rows if r.contract_id == "c-v1"]  # v1 itself was not credited


async def test_commissions_lock_after_the_return_window(runtime: Runtime) -> None:
    now = utc_now()
    async with transaction(runtime.sessionmaker) as db:
        await base_world(db)
        await payee(db, "alice")
        await contract(db, "c-v1", "video", "v1", [("alice", 1)], rate_bps=1000,
                       return_window_days=30)
        old = await order(db, touches=[("v1", 1)], lines=[("jacket", 1, 1000)],
                          at=now - timedelta(days=31))
        recent = await order(db, touches=[("v1", 1)], lines=[("jacket", 1, 2000)],
                             at=now - timedelta(days=29))
    async with transaction(runtime.sessionmaker) as db:
        assert await lock_due(db, now) == 1
    async with runtime.sessionmaker() as db:
        assert [r.status for r in await entries(db, order_id=old.id)] == ["locked"]
        assert [r.status for r in await entries(db, order_id=recent.id)] == ["pending"]
        report = await service.liabilities(db, "payee", now)
    assert [(r["key"], r["pending"], r["locked"], r["owed"]) for r in report["rows"]] == [
        ("alice", 200, 100, 300)]
    async with runtime.sessionmaker() as db:  # two days later the second one locks too
        report = await service.liabilities(db, "payee", now + timedelta(days=2))
    assert [(r["pending"], r["locked"]) for r in report["rows"]] == [(0, 300)]


async def test_clawback_before_payment_reduces_pending_and_locked(runtime: Runtime) -> None:
    now = utc_now()
    async with transaction(runtime.sessionmaker) as db:
        await base_world(db)
        await payee(db, "alice")
        await payee(db, "bob")
        await contract(db, "c-v1", "video", "v1", [("alice", 1), ("bob", 1)], rate_bps=1000)
        locked = await order(db, touches=[("v1", 1)], lines=[("jacket", 1, 3000)], tax=300,
                             at=now - timedelta(days=40))
        pending = await order(db, touches=[("v1", 1)], lines=[("jacket", 1, 1001)])
        await lock_due(db, now)
        await reverse(db, locked, 1100)  # a third of the 3300 paid
        await reverse(db, pending, 1001, kind="dispute")  # the whole order
    async with runtime.sessionmaker() as db:
        first = await entries(db, order_id=locked.id)
        second = await entries(db, order_id=pending.id)
    assert [(r.kind, r.payee_id, r.amount, r.status) for r in first] == [
        ("sale", "alice", 150, "locked"), ("sale", "bob", 150, "locked"),
        ("refund", "alice", -50, "locked"), ("refund", "bob", -50, "locked")]
    assert [r.sale_entry_id for r in first[2:]] == [first[0].id, first[1].id]
    assert sum(r.amount for r in second) == 0
    assert {r.status for r in second} == {"pending"}
    async with transaction(runtime.sessionmaker) as db:  # the rest of the first order
        await reverse(db, locked, 2200)
    async with runtime.sessionmaker() as db:
        assert sum(r.amount for r in await entries(db, order_id=locked.id)) == 0


async def test_clawback_after_payment_is_carried_into_the_next_statement(
        runtime: Runtime) -> None:
    now = utc_now()
    transfers = SandboxTransfers(runtime.sessionmaker)
    async with transaction(runtime.sessionmaker) as db:
        await base_world(db)
        await payee(db, "alice", account="acct_alice")
        await contract(db, "c-v1", "video", "v1", [("alice", 1)], rate_bps=1000)
        sold = await order(db, touches=[("v1", 1)], lines=[("jacket", 1, 20000)],
                           at=now - timedelta(days=40))
    paid = await run_payouts(runtime.sessionmaker, transfers, minimum=100, dry_run=False)
    assert [(i["payee_id"], i["amount"], i["action"]) for i in paid["items"]] == [
        ("alice", 2000, "paid")]
    async with transaction(runtime.sessionmaker) as db:
        await reverse(db, sold, 5000)  # a quarter refunded after alice was paid
    async with runtime.sessionmaker() as db:
        rows = await entries(db, payee_id="alice")
        statement = await service.statement_json(db, "alice", now - timedelta(days=60),
                                                 utc_now() + timedelta(seconds=1))
    assert [(r.kind, r.amount, r.status) for r in rows] == [
        ("sale", 2000, "paid"), ("payout", -2000, "paid"), ("refund", -500, "locked")]
    assert statement["totals"] == [{
        "currency": "usd", "opening_balance": 0, "sales": 2000, "clawbacks": -500,
        "payouts": -2000, "payout_reversals": 0, "closing_balance": -500}]
    # Nothing is paid while the balance is negative; the next sale nets against it.
    again = await run_payouts(runtime.sessionmaker, transfers, minimum=100, dry_run=False)
    assert [(i["amount"], i["reason"]) for i in again["items"]] == [
        (-500, "negative_balance_carried")]
    async with transaction(runtime.sessionmaker) as db:
        await order(db, touches=[("v1", 1)], lines=[("jacket", 1, 30000)],
                    at=now - timedelta(days=35))
    third = await run_payouts(runtime.sessionmaker, transfers, minimum=100, dry_run=False)
    assert [(i["amount"], i["action"]) for i in third["items"]] == [(2500, "paid")]
