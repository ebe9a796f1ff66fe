"""Reconciliation from Stripe's ``transfer.*`` events (run by the worker from the inbox).

``transfer.created`` / ``transfer.updated`` finish a payout whose answer we lost (our
metadata names the payout); ``transfer.reversed`` (also partial reversals) makes the
reversed amount payable to the payee again. Forward-only and idempotent: events may come
twice or out of order (``amount_reversed`` is cumulative).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from commissions import repository
from commissions.payouts import record_paid, record_reversal
from models import CommissionPayout
from models.statuses import PayoutStatus
from webhooks.inbox import Handler

Json = dict[str, Any]


async def _payout_for(db: AsyncSession, transfer: Json) -> CommissionPayout | None:
    payout_id = (transfer.get("metadata") or {}).get("reelcart_payout_id")
    if payout_id:
        payout = await db.get(CommissionPayout, str(payout_id), with_for_update=True)
        if payout is not None:
            return payout
    return await repository.payout_by_transfer(db, str(transfer.get("id")))


async def apply_transfer(db: AsyncSession, transfer: Json) -> None:
    payout = await _payout_for(db, transfer)
    if payout is None:
        return  # a transfer made outside ReelCart
    if payout.status == PayoutStatus.pending:
        await record_paid(db, payout, str(transfer["id"]))
    reversed_amount = int(transfer.get("amount_reversed") or 0)
    if reversed_amount:
        await record_reversal(db, payout, reversed_amount, str(transfer["id"]))


async def _handle(sessionmaker: async_sessionmaker[AsyncSession], event: Json) -> None:
    obj = event["data"]["object"]
    async with sessionmaker() as db, db.begin():
        await apply_transfer(db, obj)


def transfer_event_handlers() -> dict[str, Handler]:
    return {f"stripe:{name}": _handle
            for name in ("transfer.created", "transfer.updated", "transfer.reversed")}
