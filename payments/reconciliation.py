"""Payout reconciliation: what the provider settled vs what our orders say it should.

For each payout, every balance transaction is matched to our records (charge → order,
refund → refund, dispute → dispute) and compared; anything on one side only is listed.
``payout_status`` is the provider's (``pending``/``in_transit`` until it arrives, then
``paid``); ``status`` says whether what it carries so far ties out.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Dispute, Order, PaymentAuthorization, Refund
from payments.provider import PaymentProvider

Json = dict[str, Any]


async def reconcile(db: AsyncSession, provider: PaymentProvider, start: datetime,
                    end: datetime) -> Json:
    payouts, txns = await provider.settlement(start, end)
    refs = {t.payment_reference for t in txns if t.payment_reference}
    sources = {t.source_id for t in txns if t.source_id}
    orders = {o.payment_reference: o for o in await db.scalars(
        select(Order).where(Order.payment_reference.in_(refs)))} if refs else {}
    refunds = {r.provider_reference: r for r in await db.scalars(
        select(Refund).where(Refund.provider_reference.in_(sources)))} if sources else {}
    disputes = {d.id: d for d in await db.scalars(
        select(Dispute).where(Dispute.id.in_(sources)))} if sources else {}
    # A manual-capture order captured in part settles what was captured, not its total.
    captured = dict((await db.execute(select(
        PaymentAuthorization.order_id, PaymentAuthorization.amount_captured).where(
        PaymentAuthorization.order_id.in_([o.id for o in orders.values()]),
        PaymentAuthorization.status == "captured"))).tuples().all()) if orders else {}
    report: list[Json] = []
    seen_orders: set[str] = set()
    for payout in sorted(payouts, key=lambda p: (p.arrival, p.id)):
        items = [t for t in txns if t.payout_id == payout.id]
        rows: list[Json] = []
        sums = {"charges": 0, "refunds": 0, "disputes": 0, "fees": 0, "expected_net": 0}
        for t in items:
            expected: int | None = None
            ours: str | None = None
            if t.category == "charge" and t.payment_reference in orders:
                order = orders[t.payment_reference]
                expected, ours = captured.get(order.id, order.total_amount), order.id
                seen_orders.add(order.id)
            elif t.category == "refund" and t.source_id in refunds:
                expected, ours = -refunds[t.source_id].amount, refunds[t.source_id].id
            elif t.category in ("dispute", "dispute_reversal") and t.source_id in disputes:
                dispute = disputes[t.source_id]
                expected = -dispute.amount if t.category == "dispute" else dispute.amount
                ours = dispute.id
            status = "unmatched_provider" if expected is None else (
                "matched" if expected == t.amount else "amount_mismatch")
            bucket = {"charge": "charges", "refund": "refunds"}.get(t.category, "disputes")
            sums[bucket] += t.amount
            sums["fees"] += t.fee
            sums["expected_net"] += (expected if expected is not None else 0) - t.fee
            rows.append({"balance_transaction": t.id, "category": t.category,
                         "amount": t.amount, "fee": t.fee, "net": t.net,
                         "expected": expected, "ours": ours, "status": status})
        difference = payout.amount - sums["expected_net"]
        report.append({
            "payout_id": payout.id, "arrival": payout.arrival.isoformat(),
            "payout_status": payout.status.value,
            "currency": payout.currency, "settled": payout.amount, **sums,
            "difference": difference,
            "status": "matched" if difference == 0 and all(
                r["status"] == "matched" for r in rows) else "needs_review",
            "items": rows})
    # Paid orders that should have settled in the period but are in no payout: payouts
    # arrive at midnight, so the first one in the window is at start rounded up to midnight
    # and carries the day before (a window starting mid-day must not flag that day's
    # earlier orders, which were paid out before it).
    first_payout = datetime.combine((start - timedelta(microseconds=1)).date()
                                    + timedelta(days=1), time(0), start.tzinfo)
    missing = list(await db.scalars(select(Order).where(
        Order.created_at >= first_payout - timedelta(days=1),
        Order.created_at < end - timedelta(days=1),
        Order.payment_reference.is_not(None), Order.payment_provider == provider.name)))
    unmatched_ours = [{"order_id": o.id, "payment_reference": o.payment_reference,
                       "amount": o.total_amount} for o in missing if o.id not in seen_orders]
    return {"from": start.isoformat(), "to": end.isoformat(), "payouts": report,
            "unmatched_ours": unmatched_ours,
            "totals": {"settled": sum(p["settled"] for p in report),
                       "expected_net": sum(p["expected_net"] for p in report),
                       "fees": sum(p["fees"] for p in report)}}
