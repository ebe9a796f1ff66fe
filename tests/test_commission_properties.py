"""Properties over random orders, refunds and disputes, through the real attribution
ledger and commission hook: every contract's amount on a credited video is exactly the
rate applied to that video's commissionable base (read back from the attribution
ledger), split among payees and the remix's parent with nothing created or lost; clawbacks
never exceed what they reverse; an order reversed completely nets to zero for every
payee."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from commissions.rules import EntryKind
from models import CommissionEntry, LedgerEntry
from models.base import utc_now
from models.db import create_engine, create_sessionmaker, transaction
from models.money import apply_rate_bps
from tests.commission_world import base_world, contract, order, payee, reverse
from tests.conftest import reset_database

VIDEOS = ["v1", "v2", "v3", None]
touch = st.tuples(st.sampled_from(VIDEOS), st.integers(0, 30 * 24))
line = st.tuples(st.sampled_from(["jacket", "boots"]), st.integers(1, 4),
                 st.integers(1, 200_000))
event = st.tuples(st.sampled_from(["refund", "dispute", "dispute_won"]),
                  st.integers(1, 300_000))
order_spec = st.tuples(st.lists(touch, min_size=1, max_size=4),
                       st.lists(line, min_size=1, max_size=3), st.integers(0, 5000),
                       st.lists(event, max_size=4), st.booleans())
weights = st.lists(st.integers(1, 97), min_size=3, max_size=3)
terms = st.tuples(weights, st.integers(1, 10_000), st.integers(0, 10_000),
                  st.integers(1, 10_000))


async def _run(database_url: str, orders: list, spec: tuple) -> None:
    (w1, w2, w3), rate_v1, remix_share, rate_v3 = spec
    await reset_database(database_url)
    engine = create_engine(database_url)
    sessionmaker = create_sessionmaker(engine)
    made = []
    async with transaction(sessionmaker) as db:
        await base_world(db)
        for name in ("p1", "p2", "p3"):
            await payee(db, name)
        await contract(db, "c-v1", "video", "v1", [("p1", w1), ("p2", w2)], rate_bps=rate_v1)
        await contract(db, "c-v2", "video", "v2", [("p2", w2), ("p3", w3)], rate_bps=rate_v1,
                       remix_share_bps=remix_share)
        await contract(db, "c-v3", "video", "v3", [("p1", w1), ("p2", w2), ("p3", w3)],
                       rate_bps=rate_v3, model="linear")
        for touches, lines, tax, events, complete in orders:
            row = await order(db, touches=touches, lines=lines, tax=tax,
                              at=utc_now() - timedelta(minutes=1))
            reversed_total = 0
            disputed: list[int] = []
            for kind, amount in events:
                if kind == "dispute_won":
                    if disputed:
                        won = disputed.pop()
                        await reverse(db, row, -won, kind="dispute_won")
                        reversed_total -= won
                    continue
                amount = min(amount, row.total_amount - reversed_total)
                if amount <= 0:
                    continue
                await reverse(db, row, amount, kind=kind)
                reversed_total += amount
                if kind == "dispute":
                    disputed.append(amount)
            made.append((row.id, row.total_amount, complete))
            if complete:  # refund whatever is left: everything must net to zero
                left = await _left(db, row.id, row.total_amount)
                if left > 0:
                    await reverse(db, row, left)
    async with sessionmaker() as db:
        for order_id, _total, complete in made:
            sales = list(await db.scalars(select(LedgerEntry).where(
                LedgerEntry.order_id == order_id, LedgerEntry.kind == "sale")))
            rows = list(await db.scalars(select(CommissionEntry).where(
                CommissionEntry.order_id == order_id).order_by(CommissionEntry.id)))
            base = {(s.model, s.video_id): s.commissionable for s in sales}
            per_contract: dict[tuple[str, str], int] = defaultdict(int)
            for r in rows:
                if r.kind == EntryKind.sale:
                    assert r.amount > 0
                    per_contract[(str(r.contract_id), str(r.video_id))] += r.amount
            expected = {}
            for (model, video), commissionable in base.items():
                if video == "v1" and model == "last_touch":
                    expected[("c-v1", "v1")] = apply_rate_bps(commissionable, rate_v1)
                if video == "v2" and model == "last_touch":
                    expected[("c-v2", "v2")] = apply_rate_bps(commissionable, rate_v1)
                if video == "v3" and model == "linear":
                    expected[("c-v3", "v3")] = apply_rate_bps(commissionable, rate_v3)
            assert dict(per_contract) == {k: v for k, v in expected.items() if v}
            # clawbacks of each sale row stay between zero and minus the row
            by_sale: dict[int, int] = defaultdict(int)
            for r in rows:
                if r.sale_entry_id is not None:
                    by_sale[r.sale_entry_id] += r.amount
            for r in rows:
                if r.kind == EntryKind.sale:
                    assert -r.amount <= by_sale[r.id] <= 0
                    if complete:
                        assert by_sale[r.id] == -r.amount  # reversed exactly
            if complete:
                assert sum(r.amount for r in rows) == 0
    await engine.dispose()


async def _left(db, order_id: str, total: int) -> int:
    reversed_gross = sum(r.gross for r in await db.scalars(select(LedgerEntry).where(
        LedgerEntry.order_id == order_id, LedgerEntry.model == "last_touch",
        LedgerEntry.kind.in_(("refund", "dispute", "dispute_won")))))
    return total + reversed_gross


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(orders=st.lists(order_spec, min_size=1, max_size=4), spec=terms)
def test_commission_properties(database_url: str, backend: str, orders: list,
                               spec: tuple) -> None:
    asyncio.run(_run(database_url, orders, spec))
