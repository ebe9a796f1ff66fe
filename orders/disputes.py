"""Chargebacks and inquiries, whichever provider reports them, along Stripe's statuses.

- Inquiries (``warning_needs_response``, ``warning_under_review``, ``warning_closed``) and
  ``prevented`` move no money: they are recorded and shown, nothing is reversed.
- Money moves only when the provider says so: funds withdrawn (``charge.dispute.
  funds_withdrawn``, or a ``lost`` outcome) reverses the disputed amount in the ledger
  once; funds reinstated (``funds_reinstated``, or ``won`` after a withdrawal) gives it back
  once.
- Closed (``won``, ``lost``, ``warning_closed``, ``prevented``) is final: a late
  (out-of-order) update cannot reopen it; fund movements still apply exactly once.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncSession

from attribution import ledger
from models import Dispute, Order
from models.base import utc_now
from orders import notify, repository
from orders.refunds import recompute_refunded


class DisputeStatus(StrEnum):
    warning_needs_response = "warning_needs_response"
    warning_under_review = "warning_under_review"
    warning_closed = "warning_closed"
    needs_response = "needs_response"
    under_review = "under_review"
    appeal_needs_response = "appeal_needs_response"
    appeal_under_review = "appeal_under_review"
    won = "won"
    lost = "lost"
    prevented = "prevented"


class Funds(StrEnum):
    withdrawn = "withdrawn"
    reinstated = "reinstated"


CLOSED = frozenset({DisputeStatus.won, DisputeStatus.lost, DisputeStatus.warning_closed,
                    DisputeStatus.prevented})
NO_MONEY = frozenset({DisputeStatus.warning_needs_response, DisputeStatus.warning_under_review,
                      DisputeStatus.warning_closed, DisputeStatus.prevented})


def moves_money(dispute: Dispute) -> bool:
    return dispute.funds_withdrawn or dispute.status not in NO_MONEY


async def apply_dispute(db: AsyncSession, order: Order, *, dispute_id: str, amount: int,
                        currency: str, status: str, reason: str | None, actor: str,
                        funds: Funds | None = None,
                        evidence_due_by: datetime | None = None) -> None:
    dispute = await db.get(Dispute, dispute_id)
    if dispute is None:
        dispute = Dispute(id=dispute_id, order_id=order.id, amount=amount,
                          currency=currency.lower(), status=status, reason=reason,
                          funds_withdrawn=False, funds_reinstated=False,
                          evidence_due_by=evidence_due_by)
        db.add(dispute)
        await db.flush()
    elif dispute.status not in CLOSED:
        dispute.status = status
        if evidence_due_by is not None:
            dispute.evidence_due_by = evidence_due_by  # an appeal brings a new due date
    elif funds is None:
        return  # closed: later (out-of-order) updates cannot reopen it
    dispute.updated_at = utc_now()
    if (funds == Funds.withdrawn or dispute.status == DisputeStatus.lost) \
            and not dispute.funds_withdrawn:
        dispute.funds_withdrawn = True
        await ledger.record_reversal(db, order, dispute.amount, kind="dispute",
                                     reference=dispute_id, reason=reason)
    if (funds == Funds.reinstated or dispute.status == DisputeStatus.won) \
            and dispute.funds_withdrawn and not dispute.funds_reinstated:
        dispute.funds_reinstated = True
        await ledger.record_reversal(db, order, -dispute.amount, kind="dispute_won",
                                     reference=dispute_id, reason="funds reinstated")
    if dispute.status == DisputeStatus.lost:
        order.payment_status = "dispute_lost"
    elif dispute.status in CLOSED or dispute.status in NO_MONEY:
        if order.payment_status in ("disputed", "dispute_lost"):
            order.payment_status = "paid"
            await recompute_refunded(db, order)
    else:
        order.payment_status = "disputed"
    order.updated_at = utc_now()
    await repository.add_event(db, order.id, f"dispute.{funds or dispute.status}", actor,
                               {"dispute_id": dispute_id, "amount": dispute.amount,
                                "status": dispute.status, "reason": reason})
    await notify.order_changed(db, order)
