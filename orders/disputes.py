"""Chargebacks, whichever provider reports them. Forward-only: a closed dispute stays
closed; the ledger loses the disputed amount when it opens and regains it if won."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from attribution import ledger
from models import Dispute, Order
from models.base import utc_now
from orders import notify, repository
from orders.refunds import recompute_refunded


async def apply_dispute(db: AsyncSession, order: Order, *, dispute_id: str, amount: int,
                        currency: str, status: str, reason: str | None, actor: str) -> None:
    dispute = await db.get(Dispute, dispute_id)
    if dispute is None:
        dispute = Dispute(id=dispute_id, order_id=order.id, amount=amount,
                          currency=currency.lower(), status=status, reason=reason)
        db.add(dispute)
        await db.flush()
        await ledger.record_reversal(db, order, amount, kind="dispute", reference=dispute_id,
                                     reason=reason)
    elif dispute.status in ("won", "lost"):
        return  # closed: later (out-of-order) updates cannot reopen it
    dispute.status = status
    dispute.updated_at = utc_now()
    if status == "lost":
        order.payment_status = "dispute_lost"
    elif status == "won":
        order.payment_status = "paid"
        await recompute_refunded(db, order)
        await ledger.record_reversal(db, order, -dispute.amount, kind="dispute_won",
                                     reference=dispute_id, reason="dispute won")
    else:
        order.payment_status = "disputed"
    await repository.add_event(db, order.id, f"dispute.{status}", actor,
                               {"dispute_id": dispute_id, "amount": amount, "reason": reason})
    await notify.order_changed(db, order)
