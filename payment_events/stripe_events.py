"""Stripe webhook handlers, run by the worker from the inbox.

Each handler treats the event as a fact about a Stripe object and moves our state
forward only; events may arrive twice or out of order. When the thing an event refers to
does not exist yet (e.g. ``charge.refunded`` before the order was recorded) the handler
raises ``RetryLater`` and the inbox tries again with backoff.

Handlers that need Stripe (listing a charge's refunds, a balance transaction, refunding an
orphan payment) call it *before* or *after* their database transaction, never inside one.

Refunds are reconciled one Refund object at a time (``refund.*``, ``charge.refund.updated``,
or the charge's refund list fetched on ``charge.refunded``): a Charge carries no ``refunds``
since API version 2022-11-15, and ``amount_refunded`` is never turned into refunds.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from attribution import ledger
from checkout.service import CheckoutService
from models import Order, PaymentAttempt, Refund
from models.base import utc_now
from models.statuses import OrderPaymentStatus, RefundStatus
from orders import capture
from orders import repository as orders
from orders.disputes import Funds, apply_dispute
from orders.refunds import mark_refund
from payments.stripe_client import StripeGateway
from payments.stripe_provider import refund_status
from webhooks.inbox import Handler, RetryLater

Json = dict[str, Any]
ACTOR = "stripe"

# What the merchant subscribes the Stripe webhook endpoint to (README, and the tests).
SUBSCRIBED_EVENTS = (
    "payment_intent.succeeded",
    "payment_intent.amount_capturable_updated",
    "payment_intent.payment_failed",
    "payment_intent.canceled",
    "charge.updated",
    "charge.refunded",
    "charge.refund.updated",
    "refund.created",
    "refund.updated",
    "refund.failed",
    "charge.dispute.created",
    "charge.dispute.updated",
    "charge.dispute.closed",
    "charge.dispute.funds_withdrawn",
    "charge.dispute.funds_reinstated",
)


def in_transaction(body: Callable[[AsyncSession, Json], Awaitable[None]]) -> Handler:
    """These handlers only touch our database: run each in one transaction."""
    async def handler(sessionmaker: async_sessionmaker[AsyncSession], event: Json) -> None:
        async with sessionmaker() as db, db.begin():
            await body(db, event)
    return handler


def _due_by(dispute: Json) -> datetime | None:
    """``evidence_details.due_by`` (Unix seconds) as an aware datetime, or None."""
    due = (dispute.get("evidence_details") or {}).get("due_by")
    if isinstance(due, int) and not isinstance(due, bool) and 0 < due < 2**37:
        return datetime.fromtimestamp(due, tz=UTC)
    return None


def _id(value: Any) -> str | None:
    if isinstance(value, dict):
        return value.get("id")
    return value if isinstance(value, str) else None


@dataclass
class StripeEventHandlers:
    checkout: CheckoutService
    gateway: StripeGateway | None

    def registry(self) -> dict[str, Handler]:
        in_db = {
            "payment_intent.amount_capturable_updated": self.payment_authorized,
            "payment_intent.payment_failed": self.payment_failed,
            "payment_intent.canceled": self.payment_canceled,
            "charge.refund.updated": self.refund_event,
            "refund.created": self.refund_event,
            "refund.updated": self.refund_event,
            "refund.failed": self.refund_event,
            "charge.dispute.created": self.dispute,
            "charge.dispute.updated": self.dispute,
            "charge.dispute.closed": self.dispute,
            "charge.dispute.funds_withdrawn": self.dispute_funds_withdrawn,
            "charge.dispute.funds_reinstated": self.dispute_funds_reinstated,
        }
        two_phase: dict[str, Handler] = {
            "payment_intent.succeeded": self.payment_succeeded,
            "charge.refunded": self.charge_refunded,
            "charge.updated": self.charge_updated,
        }
        registry = {f"stripe:{key}": in_transaction(h) for key, h in in_db.items()}
        registry.update({f"stripe:{key}": h for key, h in two_phase.items()})
        assert set(SUBSCRIBED_EVENTS) == {k.removeprefix("stripe:") for k in registry}
        return registry

    # ------------------------------------------------------------ payments

    async def _payment(self, db: AsyncSession, event: Json, outcome: str) -> str:
        pi = event["data"]["object"]
        metadata = pi.get("metadata") or {}
        return await self.checkout.reconcile_payment(
            db, reference=pi["id"], outcome=outcome, amount=pi.get("amount"),
            session_id=metadata.get("checkout_session_id"), actor=ACTOR)

    async def payment_succeeded(self, sessionmaker: async_sessionmaker[AsyncSession],
                                event: Json) -> None:
        pi = event["data"]["object"]
        async with sessionmaker() as db, db.begin():
            await self._payment(db, event, "succeeded")
            # Captured (by us, or from the Stripe dashboard): an authorised order is paid.
            await capture.provider_reports(db, pi["id"], "succeeded",
                                           amount=int(pi.get("amount_received") or 0),
                                           actor=ACTOR)
            order = await orders.order_by_payment_reference(db, pi["id"])
            if order is not None and order.payment_status == OrderPaymentStatus.authorized:
                order.payment_status = OrderPaymentStatus.paid
        # An orphan payment (the session had moved on) is refunded after the commit.
        await self.checkout.refund_orphans(sessionmaker)

    async def payment_authorized(self, db: AsyncSession, event: Json) -> None:
        await self._payment(db, event, "authorized")

    async def payment_failed(self, db: AsyncSession, event: Json) -> None:
        await self._payment(db, event, "failed")

    async def payment_canceled(self, db: AsyncSession, event: Json) -> None:
        pi = event["data"]["object"]
        await capture.provider_reports(db, pi["id"], "canceled", amount=0, actor=ACTOR)

    # ------------------------------------------------------------ refunds

    async def _order_for(self, db: AsyncSession, obj: Json) -> Order:
        pi_id = _id(obj.get("payment_intent"))
        order = await orders.order_by_payment_reference(db, pi_id) if pi_id else None
        if order is None and _id(obj.get("charge")):
            attempt = await db.scalar(select(PaymentAttempt).where(
                PaymentAttempt.charge_id == _id(obj.get("charge"))).limit(1))
            if attempt is not None and attempt.provider_reference:
                order = await orders.order_by_payment_reference(db, attempt.provider_reference)
        if order is None:
            raise RetryLater(f"no order for payment {pi_id or _id(obj.get('charge'))}")
        locked = await orders.lock_order(db, order.id)
        assert locked is not None
        return locked

    async def apply_refund(self, db: AsyncSession, stripe_refund: Json) -> None:
        """One Stripe Refund object → one refund row, forward-only along its status."""
        order = await self._order_for(db, stripe_refund)
        known = await orders.refunds_of(db, order.id)
        ours_id = (stripe_refund.get("metadata") or {}).get("reelcart_refund_id")
        match = next((r for r in known if r.id == ours_id
                      or r.provider_reference == stripe_refund["id"]
                      or r.external_id == stripe_refund["id"]), None)
        status = refund_status(stripe_refund.get("status"))
        if match is None:  # refunded outside ReelCart (e.g. the Stripe dashboard)
            match = Refund(id=f"rf_{stripe_refund['id']}"[:64], order_id=order.id,
                           amount=int(stripe_refund["amount"]),
                           currency=str(stripe_refund.get("currency") or order.currency),
                           status=RefundStatus.pending, reason=stripe_refund.get("reason"),
                           source="provider", external_id=stripe_refund["id"],
                           provider_reference=stripe_refund["id"], created_at=utc_now(),
                           updated_at=utc_now())
            db.add(match)
            await db.flush()
        await mark_refund(db, match, status, stripe_refund["id"], ACTOR)

    async def refund_event(self, db: AsyncSession, event: Json) -> None:
        await self.apply_refund(db, event["data"]["object"])

    async def charge_refunded(self, sessionmaker: async_sessionmaker[AsyncSession],
                              event: Json) -> None:
        charge = event["data"]["object"]
        # Phase 1 (no transaction): the charge's Refund objects, as Stripe has them now.
        embedded = (charge.get("refunds") or {}).get("data")
        if self.gateway is not None:
            refunds = await self.gateway.list_refunds(charge_id=charge["id"])
        else:
            refunds = list(embedded or [])
        # Phase 2: apply each.
        async with sessionmaker() as db, db.begin():
            await self._order_for(db, charge)  # not there yet → RetryLater
            for stripe_refund in refunds:
                stripe_refund.setdefault("payment_intent", charge.get("payment_intent"))
                stripe_refund.setdefault("charge", charge["id"])
                await self.apply_refund(db, stripe_refund)

    # ------------------------------------------------------------ disputes

    async def _dispute(self, db: AsyncSession, event: Json, funds: Funds | None) -> None:
        data = event["data"]["object"]
        order = await self._order_for(db, data)
        await apply_dispute(db, order, dispute_id=data["id"], amount=int(data["amount"]),
                            currency=str(data.get("currency") or order.currency),
                            status=str(data["status"]), reason=data.get("reason"),
                            actor=ACTOR, funds=funds, evidence_due_by=_due_by(data))

    async def dispute(self, db: AsyncSession, event: Json) -> None:
        await self._dispute(db, event, None)

    async def dispute_funds_withdrawn(self, db: AsyncSession, event: Json) -> None:
        await self._dispute(db, event, Funds.withdrawn)

    async def dispute_funds_reinstated(self, db: AsyncSession, event: Json) -> None:
        await self._dispute(db, event, Funds.reinstated)

    # ------------------------------------------------------------ fees

    async def charge_updated(self, sessionmaker: async_sessionmaker[AsyncSession],
                             event: Json) -> None:
        charge = event["data"]["object"]
        txn = charge.get("balance_transaction")
        pi_id = _id(charge.get("payment_intent"))
        if not txn or not pi_id:
            return
        async with sessionmaker() as db:
            known = await db.scalar(select(PaymentAttempt.fee_amount).where(
                PaymentAttempt.provider_reference == pi_id).limit(1))
        if known is not None:
            return
        if isinstance(txn, str):  # phase 1, no transaction open: ask Stripe
            if self.gateway is None:
                return
            txn = (await self.gateway.retrieve_balance_transaction(txn)).to_dict()
        async with sessionmaker() as db, db.begin():
            from checkout.repository import attempt_by_reference

            attempt = await attempt_by_reference(db, pi_id)
            if attempt is None:
                raise RetryLater(f"no payment attempt for {pi_id}")
            first_time = attempt.fee_amount is None
            attempt.charge_id = charge["id"]
            attempt.balance_transaction_id = txn["id"]
            attempt.fee_amount = int(txn["fee"])
            attempt.net_amount = int(txn["net"])
            attempt.updated_at = utc_now()
            order = await orders.order_by_payment_reference(db, pi_id)
            if first_time and order is not None:
                await ledger.record_fee(db, order, attempt.fee_amount)
