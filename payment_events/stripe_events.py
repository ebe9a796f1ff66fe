"""Stripe webhook handlers, run by the worker from the inbox.

Each handler treats the event as a fact about a Stripe object and moves our state
forward only; events may arrive twice or out of order. When the thing an event refers to
does not exist yet (e.g. ``charge.refunded`` before the order was recorded) the handler
raises ``RetryLater`` and the inbox tries again with backoff.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from attribution import ledger
from checkout.service import CheckoutService
from models import Refund
from models.base import utc_now
from orders import repository as orders
from orders.disputes import apply_dispute
from orders.refunds import mark_refund
from payments.stripe_client import StripeGateway
from webhooks.inbox import Handler, RetryLater

Json = dict[str, Any]
ACTOR = "stripe"


def in_transaction(body: Callable[[AsyncSession, Json], Awaitable[None]]) -> Handler:
    """These handlers only touch our database: run each in one transaction."""
    async def handler(sessionmaker: async_sessionmaker[AsyncSession], event: Json) -> None:
        async with sessionmaker() as db, db.begin():
            await body(db, event)
    return handler


@dataclass
class StripeEventHandlers:
    checkout: CheckoutService
    gateway: StripeGateway | None

    def registry(self) -> dict[str, Handler]:
        handlers = {
            "stripe:payment_intent.succeeded": self.payment_succeeded,
            "stripe:payment_intent.amount_capturable_updated": self.payment_authorized,
            "stripe:payment_intent.payment_failed": self.payment_failed,
            "stripe:charge.refunded": self.charge_refunded,
            "stripe:charge.dispute.created": self.dispute,
            "stripe:charge.dispute.updated": self.dispute,
            "stripe:charge.dispute.closed": self.dispute,
            "stripe:charge.updated": self.charge_updated,
        }
        return {key: in_transaction(handler) for key, handler in handlers.items()}

    async def _payment(self, db: AsyncSession, event: Json, outcome: str) -> None:
        pi = event["data"]["object"]
        metadata = pi.get("metadata") or {}
        await self.checkout.reconcile_payment(
            db, reference=pi["id"], outcome=outcome, amount=pi.get("amount"),
            session_id=metadata.get("checkout_session_id"), actor=ACTOR)
        order = await orders.order_by_payment_reference(db, pi["id"])
        if order is not None and outcome == "succeeded" and order.payment_status == "authorized":
            order.payment_status = "paid"  # captured

    async def payment_succeeded(self, db: AsyncSession, event: Json) -> None:
        await self._payment(db, event, "succeeded")

    async def payment_authorized(self, db: AsyncSession, event: Json) -> None:
        await self._payment(db, event, "authorized")

    async def payment_failed(self, db: AsyncSession, event: Json) -> None:
        await self._payment(db, event, "failed")

    async def _order_for_charge(self, db: AsyncSession, charge_or_dispute: Json) -> Any:
        pi_id = charge_or_dispute.get("payment_intent")
        if isinstance(pi_id, dict):
            pi_id = pi_id.get("id")
        order = await orders.order_by_payment_reference(db, pi_id) if pi_id else None
        if order is None:
            raise RetryLater(f"no order for payment {pi_id}")
        return await orders.lock_order(db, order.id)

    async def charge_refunded(self, db: AsyncSession, event: Json) -> None:
        charge = event["data"]["object"]
        order = await self._order_for_charge(db, charge)
        known = await orders.refunds_of(db, order.id)
        for stripe_refund in (charge.get("refunds") or {}).get("data") or []:
            if stripe_refund.get("status") not in ("succeeded", "pending"):
                continue
            ours_id = (stripe_refund.get("metadata") or {}).get("reelcart_refund_id")
            match = next((r for r in known if r.id == ours_id or
                          r.provider_reference == stripe_refund["id"]), None)
            if match is None:  # refunded outside ReelCart (e.g. the Stripe dashboard)
                match = Refund(id=f"rf_{stripe_refund['id']}"[:64], order_id=order.id,
                               amount=stripe_refund["amount"], currency=order.currency,
                               status="pending", source="provider",
                               external_id=stripe_refund["id"],
                               provider_reference=stripe_refund["id"])
                db.add(match)
                await db.flush()
                known.append(match)
            if stripe_refund.get("status") == "succeeded":
                await mark_refund(db, match, "succeeded", stripe_refund["id"], ACTOR)
        # Without the refund list, trust the cumulative amount.
        covered = sum(r.amount for r in known if r.status == "succeeded")
        missing = int(charge.get("amount_refunded") or 0) - covered
        if missing > 0 and not (charge.get("refunds") or {}).get("data"):
            extra = Refund(id=f"rf_{charge['id']}_{charge['amount_refunded']}"[:64],
                           order_id=order.id, amount=missing, currency=order.currency,
                           status="pending", source="provider",
                           external_id=f"{charge['id']}:{charge['amount_refunded']}")
            db.add(extra)
            await db.flush()
            await mark_refund(db, extra, "succeeded", None, ACTOR)

    async def dispute(self, db: AsyncSession, event: Json) -> None:
        data = event["data"]["object"]
        order = await self._order_for_charge(db, data)
        await apply_dispute(db, order, dispute_id=data["id"], amount=data["amount"],
                            currency=str(data.get("currency", order.currency)),
                            status=data["status"], reason=data.get("reason"), actor=ACTOR)

    async def charge_updated(self, db: AsyncSession, event: Json) -> None:
        charge = event["data"]["object"]
        txn = charge.get("balance_transaction")
        pi_id = charge.get("payment_intent")
        if not txn or not pi_id:
            return
        from checkout.repository import attempt_by_reference

        attempt = await attempt_by_reference(db, pi_id)
        if attempt is None:
            raise RetryLater(f"no payment attempt for {pi_id}")
        if isinstance(txn, str):
            if self.gateway is None:
                return
            txn = (await self.gateway.retrieve_balance_transaction(txn)).to_dict()
        first_time = attempt.fee_amount is None
        attempt.charge_id = charge["id"]
        attempt.balance_transaction_id = txn["id"]
        attempt.fee_amount = int(txn["fee"])
        attempt.net_amount = int(txn["net"])
        attempt.updated_at = utc_now()
        order = await orders.order_by_payment_reference(db, pi_id)
        if first_time and order is not None:
            await ledger.record_fee(db, order, attempt.fee_amount)
