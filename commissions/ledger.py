"""The commission ledger, appended where the attribution ledger is appended.

Registered with the attribution ledger as a listener when this module is imported (the
composition root, ``api.runtime``, imports it, so every API, worker and CLI process has
it). ``on_sale`` runs right after the attribution ledger's sale rows are inserted (same
transaction) and turns them into commission rows under the contracts in force at the
order time, with the terms locked on each row. ``on_reversal`` runs after a refund's or
dispute's rows and claws every commission row of the order back proportionally: rows not
yet paid lose it in the same status (pending stays pending, locked stays locked); rows
already paid (or being paid) get a negative row that is payable at once, so it nets
against the next payout and shows on the next statement.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, cast

from sqlalchemy import Table, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from attribution import ledger as attribution_ledger
from commissions import repository
from commissions.rules import (
    Credit,
    EntryKind,
    EntryStatus,
    Sale,
    Terms,
    clawback,
    compute_sale,
    video_payees,
)
from models import CommissionEntry, Order
from models.base import utc_now

ENTRIES = cast(Table, CommissionEntry.__table__)


async def on_sale(db: AsyncSession, order: Order, ledger_rows: list[dict[str, Any]]) -> None:
    if not any(r["video_id"] for r in ledger_rows):
        # No video is credited: no contract can cover the sale (``contract_amounts`` only
        # pays credited videos), so the unattributed checkout pays no look-up at all.
        return
    contracts = await repository.contracts_in_force(db, order.created_at)
    if not contracts:
        return  # the checkout hot path pays one indexed query when nobody is under contract
    credits = [Credit(r["video_id"], r["model"], int(r["commissionable"]))
               for r in ledger_rows]
    video_ids = {c.video_id for c in credits if c.video_id}
    videos = await repository.video_facts(db, video_ids)
    lines = await repository.order_lines(db, order, any(
        t.scope == "category" for t, _ in contracts))
    sale = Sale(order.created_at, order.currency, credits, lines, videos)
    terms = [t for t, _ in contracts]
    parents = video_payees(terms, order.created_at)
    windows = {t.contract_id: days for t, days in contracts}
    context = {r["video_id"]: r for r in ledger_rows if r["video_id"]}
    now = utc_now()
    rows = []
    for share in compute_sale(sale, terms, parents):
        facts = context.get(share.video_id, {})
        rows.append(dict(
            payee_id=share.payee_id, kind=EntryKind.sale.value,
            status=EntryStatus.pending.value, amount=share.amount, currency=order.currency,
            contract_id=share.contract_id, order_id=order.id, video_id=share.video_id,
            earned_on_video_id=share.earned_on_video_id, model=share.model,
            basis=share.basis.value, rate_bps=share.rate_bps,
            fixed_amount=share.fixed_amount, units=share.units, base_amount=share.base_amount,
            weight=share.weight, sale_entry_id=None, reference=None, reason=None,
            campaign=facts.get("campaign"), creator=facts.get("creator"),
            generator=facts.get("generator"), agent_id=order.agent_id,
            order_at=order.created_at,
            lock_at=order.created_at + timedelta(days=windows[share.contract_id]),
            payout_id=None, created_at=now))
    if rows:
        await db.execute(insert(ENTRIES), rows)


async def on_reversal(db: AsyncSession, order: Order, *, before: int, after: int, kind: str,
                      reference: str, reason: str | None) -> None:
    """The order's reversed total moved from ``before`` to ``after`` (minor units)."""
    if before == after:
        return
    sales = list(await db.scalars(select(CommissionEntry).where(
        CommissionEntry.order_id == order.id, CommissionEntry.kind == EntryKind.sale.value)
        .order_by(CommissionEntry.id)))
    if not sales:
        return
    now = utc_now()
    rows = []
    for sale in sales:
        amount = clawback(sale.amount, before, after, order.total_amount)
        if amount == 0:
            continue
        unpaid = sale.status in (EntryStatus.pending.value, EntryStatus.locked.value)
        rows.append(dict(
            payee_id=sale.payee_id, kind=kind, amount=amount, currency=sale.currency,
            status=sale.status if unpaid else EntryStatus.locked.value,
            contract_id=sale.contract_id, order_id=sale.order_id, video_id=sale.video_id,
            earned_on_video_id=sale.earned_on_video_id, model=sale.model, basis=sale.basis,
            rate_bps=sale.rate_bps, fixed_amount=sale.fixed_amount, units=sale.units,
            base_amount=sale.base_amount, weight=sale.weight, sale_entry_id=sale.id,
            reference=reference, reason=reason, campaign=sale.campaign, creator=sale.creator,
            generator=sale.generator, agent_id=sale.agent_id, order_at=sale.order_at,
            lock_at=sale.lock_at, payout_id=None, created_at=now))
    if rows:
        await db.execute(insert(ENTRIES), rows)


async def lock_due(db: AsyncSession, now: Any = None) -> int:
    """pending → locked for every row whose return window has passed."""
    result = await db.execute(update(CommissionEntry).where(
        CommissionEntry.status == EntryStatus.pending.value,
        CommissionEntry.lock_at <= (now or utc_now())).values(
        status=EntryStatus.locked.value))
    return int(getattr(result, "rowcount", 0) or 0)


attribution_ledger.listen("commissions", on_sale=on_sale, on_reversal=on_reversal)

__all__ = ["Terms", "lock_due", "on_reversal", "on_sale"]
