"""Property test over the real ledger: random orders, touches and refunds. Every model's
credits sum exactly to each order's amounts, the per-video report equals the sum of that
video's rows, and refunding an order completely brings it back to zero."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from attribution import ledger, repository
from attribution.ledger import LedgerPolicy
from attribution.rules import MODELS
from models import Agent, AttributionTouch, CheckoutSession, LedgerEntry, Order
from models.base import new_id, utc_now
from models.db import create_engine, create_sessionmaker, transaction
from tests.conftest import reset_database

VIDEOS = ["v1", "v2", "v3", None]
touch = st.tuples(st.sampled_from(VIDEOS), st.integers(0, 40 * 24))  # hours before order
order_spec = st.tuples(st.integers(1, 500_000), st.lists(touch, max_size=5),
                       st.lists(st.integers(1, 300_000), max_size=3))


async def _run(database_url: str, orders: list[tuple[int, list, list[int]]]) -> None:
    await reset_database(database_url)
    engine = create_engine(database_url)
    sessionmaker = create_sessionmaker(engine)
    now = utc_now()
    made: list[tuple[str, int, bool]] = []
    async with transaction(sessionmaker) as db:
        db.add(Agent(id="agt_development", name="development"))
        await db.flush()
        for total, touches, refunds in orders:
            session_id, order_id = new_id("cs"), new_id("ord")
            db.add(CheckoutSession(id=session_id, agent_id="agt_development", status="completed",
                                   currency="usd", requested_items=[], expires_at=now))
            for i, (video, hours) in enumerate(touches):
                db.add(AttributionTouch(id=new_id("tch"), checkout_session_id=session_id,
                                        touchpoint=f"t{i}", channel="web", video_id=video,
                                        video_known=True,
                                        touched_at=now - timedelta(hours=hours)))
            tax = total // 11
            order = Order(id=order_id, order_number=new_id("RC")[:20],
                          checkout_session_id=session_id, agent_id="agt_development",
                          status="confirmed", currency="usd", line_items=[],
                          totals=[{"type": "items_base_amount", "amount": total - tax},
                                  {"type": "tax", "amount": tax},
                                  {"type": "total", "amount": total}],
                          total_amount=total, payment_provider="sandbox", created_at=now,
                          updated_at=now)
            db.add(order)
            await db.flush()
            await ledger.record_sale(db, order, total // 30, LedgerPolicy(window_days=28))
            refunded = 0
            for amount in refunds:
                amount = min(amount, total - refunded)
                if amount <= 0:
                    break
                await ledger.record_reversal(db, order, amount, kind="refund",
                                             reference=new_id("rf"), reason=None)
                refunded += amount
            full = refunded == total
            if not full and refunds:  # refund the rest: the order must net to zero
                await ledger.record_reversal(db, order, total - refunded, kind="refund",
                                             reference=new_id("rf"), reason=None)
                full = True
            made.append((order_id, total, full))
    async with sessionmaker() as db:
        for order_id, total, full in made:
            for model in MODELS:
                sale = await db.scalar(select(func.sum(LedgerEntry.gross)).where(
                    LedgerEntry.order_id == order_id, LedgerEntry.model == model,
                    LedgerEntry.kind == "sale"))
                assert int(sale or 0) == total  # credits sum exactly to the order
                after = await db.scalar(select(func.sum(LedgerEntry.commissionable)).where(
                    LedgerEntry.order_id == order_id, LedgerEntry.model == model))
                if full:
                    assert int(after or 0) == 0  # a full refund reverses everything
        for model in MODELS:
            report = await repository.revenue(db, group_by="video", model=model, start=None,
                                              end=None, view="cash")
            for row in report:
                rows_sum = await db.scalar(select(func.coalesce(func.sum(LedgerEntry.gross), 0))
                                           .where(LedgerEntry.model == model,
                                                  LedgerEntry.video_id.is_(None)
                                                  if row["key"] is None
                                                  else LedgerEntry.video_id == row["key"]))
                assert int(str(row["gross"])) == int(rows_sum or 0)
    await engine.dispose()


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(orders=st.lists(order_spec, min_size=1, max_size=6))
def test_ledger_properties(database_url: str, backend: str,
                           orders: list[tuple[int, list, list[int]]]) -> None:
    asyncio.run(_run(database_url, orders))
