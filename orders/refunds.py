"""Refunds: merchant-initiated (API), and provider-reported ones (webhooks).

A refund is recorded *before* the provider is called (status ``pending``), with an id
derived from the caller's idempotency key; the provider gets ``reelcart:refund:<id>`` as
its idempotency key. A retried request, a crash after the provider answered, or the
provider's webhook arriving first all converge on one provider refund and one row.
``Order.refunded_amount`` is always the sum of succeeded refunds, never incremented
blindly, so applying the same fact twice is harmless.
"""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from attribution import ledger
from models import Order, Refund
from models.base import utc_now
from models.errors import ServiceUnavailable
from models.statuses import LIVE_REFUNDS, RefundStatus
from orders import notify, repository
from orders.errors import OrderNotFound, RefundNotAllowed, amount_text
from payments.provider import (
    PaymentProvider,
    PaymentUnavailable,
    ProviderIntegrationError,
    RefundRejected,
    RefundRequest,
)

Json = dict[str, Any]
REFUNDABLE_STATUSES = frozenset({"paid", "partially_refunded"})


def refund_id_for(order_id: str, request_key: str) -> str:
    return "rf_" + hashlib.sha256(f"{order_id}|{request_key}".encode()).hexdigest()[:24]


async def collected_amount(db: AsyncSession, order: Order) -> int:
    """What the buyer paid: the total, or what was captured of a manual-capture order
    captured in part (the rest of the authorisation was released, never charged)."""
    return (await repository.captured_amounts(db, [order.id])).get(order.id, order.total_amount)


async def recompute_refunded(db: AsyncSession, order: Order) -> None:
    refunds = await repository.refunds_of(db, order.id)
    order.refunded_amount = sum(r.amount for r in refunds if r.status == RefundStatus.succeeded)
    if order.payment_status not in ("paid", "partially_refunded", "refunded"):
        return  # disputed, authorised, needs attention: not ours to change here
    if order.refunded_amount >= await collected_amount(db, order):
        order.payment_status = "refunded"
    elif order.refunded_amount > 0:
        order.payment_status = "partially_refunded"
    else:
        order.payment_status = "paid"
    order.updated_at = utc_now()


async def mark_refund(db: AsyncSession, refund: Refund, status: str, reference: str | None,
                      actor: str) -> None:
    """Forward-only along Stripe's refund lifecycle: pending → succeeded | failed, and
    succeeded → failed (a refund can fail after it was reported succeeded, e.g. a closed
    card account: ``refund.failed`` / ``charge.refund.updated``). Failed is final.
    Re-applying the same status is a no-op."""
    if reference and not refund.provider_reference:
        refund.provider_reference = reference
    if (status == refund.status or status == RefundStatus.pending
            or refund.status == RefundStatus.failed):
        return
    previous = refund.status
    refund.status = status
    refund.provider_reference = reference or refund.provider_reference
    refund.updated_at = utc_now()
    order = await repository.lock_order(db, refund.order_id)
    assert order is not None
    await recompute_refunded(db, order)
    await repository.add_event(db, order.id, f"refund.{status}", actor, {
        "refund_id": refund.id, "amount": refund.amount, "currency": refund.currency,
        "provider_reference": refund.provider_reference})
    if status == RefundStatus.succeeded:
        await ledger.record_reversal(db, order, refund.amount, kind="refund",
                                     reference=refund.id, reason=refund.reason)
    elif previous == RefundStatus.succeeded:  # the money did not go back after all
        await ledger.record_reversal(db, order, -refund.amount, kind="refund_failed",
                                     reference=refund.id, reason="refund failed")
    await notify.order_changed(db, order)


async def refund_order(
    sessionmaker: async_sessionmaker[AsyncSession], db: AsyncSession,
    provider: PaymentProvider, *, order_id: str, amount: int | None, reason: str | None,
    request_key: str, actor: str, source: str = "merchant", external_id: str | None = None,
) -> Refund:
    refund_id = refund_id_for(order_id, request_key)
    async with sessionmaker() as phase_a, phase_a.begin():
        order = await repository.lock_order(phase_a, order_id)
        if order is None:
            raise OrderNotFound(order_id)
        refund = await phase_a.get(Refund, refund_id)
        if refund is None:
            if order.payment_status == "authorized":
                raise RefundNotAllowed(
                    f"Order {order_id} is authorised, not captured: nothing to refund. Cancel "
                    "the order to release the authorisation, or ship it to capture.",
                    code="payment_not_captured")
            if order.payment_provider == "etsy":  # Etsy collected it: refunds happen there
                raise RefundNotAllowed(f"Order {order_id} was paid on Etsy; refund it on Etsy.",
                                       code="refund_on_marketplace")
            if order.payment_status not in REFUNDABLE_STATUSES or not order.payment_reference:
                raise RefundNotAllowed(
                    f"Order {order_id} cannot be refunded (payment is {order.payment_status}).")
            pending = sum(r.amount for r in await repository.refunds_of(phase_a, order_id)
                          if r.status in LIVE_REFUNDS)
            refundable = await collected_amount(phase_a, order) - pending
            wanted = refundable if amount is None else amount
            if wanted <= 0 or wanted > refundable:
                raise RefundNotAllowed(
                    f"Nothing is left to refund on order {order_id}." if refundable <= 0 else
                    f"A refund must be positive; got {amount_text(wanted, order.currency)}."
                    if wanted <= 0 else
                    f"Refund of {amount_text(wanted, order.currency)} exceeds the refundable "
                    f"{amount_text(refundable, order.currency)} on order {order_id}.",
                    code="refund_exceeds_refundable", param="$.amount",
                    extra={"refundable_amount": refundable})
            refund = Refund(id=refund_id, order_id=order_id, amount=wanted,
                            currency=order.currency, status=RefundStatus.pending, reason=reason,
                            source=source, external_id=external_id)
            phase_a.add(refund)
            await repository.add_event(phase_a, order_id, "refund.requested", actor, {
                "refund_id": refund_id, "amount": wanted, "reason": reason})
        if refund.status != RefundStatus.pending:
            return refund
        request = RefundRequest(
            payment_reference=order.payment_reference or "", amount=refund.amount,
            currency=refund.currency, idempotency_key=f"reelcart:refund:{refund_id}",
            reason=reason, metadata={"reelcart_refund_id": refund_id, "order_id": order_id})
    try:
        result = await provider.refund(request)
    except PaymentUnavailable as exc:
        if isinstance(exc, ProviderIntegrationError):  # ours to fix: show it to the merchant
            from orders.capture import record_incident

            async with sessionmaker() as note, note.begin():
                await record_incident(note, provider=provider.name, kind="integration_error",
                                      code=exc.code, message=str(exc), reference=order_id,
                                      request_id=exc.request_id)
        raise ServiceUnavailable(
            "The payment provider is unavailable; the refund is pending. Retry the request "
            "with the same Idempotency-Key.", code="payment_provider_unavailable",
            headers={"Retry-After": "5"}) from exc
    except RefundRejected as exc:
        async with sessionmaker() as undo, undo.begin():
            row = await undo.get(Refund, refund_id)
            assert row is not None
            await mark_refund(undo, row, RefundStatus.failed, None, actor)
        raise RefundNotAllowed(f"The payment provider refused the refund: {exc}",
                               code="refund_rejected") from exc
    row = await db.get(Refund, refund_id)
    assert row is not None
    await mark_refund(db, row, result.status, result.reference, actor)
    await db.flush()
    return row
