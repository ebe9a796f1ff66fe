"""Order creation, the merchant's view of an order, and order actions (resend, retry).
The agent-facing order document lives in ``orders.documents``."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from etsy.hooks import stock_sold as etsy_stock_sold
from models import Order
from models.base import new_id, rfc3339, utc_now
from models.statuses import LIVE_REFUNDS, ForwardingStatus, OrderStatus
from orders import notify, repository
from orders.documents import (
    acp_snapshot,
    adjustments_json,
    derive_status,
    fulfilled_quantities,
    fulfillment_json,
    order_json,
    permalink,
)

Json = dict[str, Any]
_ORDER_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O/1/I: read aloud to support


assert len(_ORDER_ALPHABET) == 32  # a random byte's low 5 bits pick a character uniformly


def new_order_number() -> str:
    """``RC-`` and 8 characters, uniformly random (one ``token_bytes`` call, not eight
    ``secrets.choice`` calls: it runs on every complete)."""
    return "RC-" + "".join(_ORDER_ALPHABET[b & 31] for b in secrets.token_bytes(8))


class SessionFacts(Protocol):
    """What an order copies from its checkout session (a mapped ``CheckoutSession`` or
    the checkout core's plain row)."""

    @property
    def id(self) -> str: ...
    @property
    def agent_id(self) -> str: ...
    @property
    def currency(self) -> str: ...
    @property
    def line_items(self) -> list[Any]: ...
    @property
    def totals(self) -> list[Any]: ...
    @property
    def total_amount(self) -> int: ...
    @property
    def buyer(self) -> dict[str, Any] | None: ...
    @property
    def fulfillment_details(self) -> dict[str, Any] | None: ...
    @property
    def selected_fulfillment_options(self) -> list[Any] | None: ...
    @property
    def order_notes(self) -> str | None: ...


async def create_from_session(
    db: AsyncSession, session: SessionFacts, *, provider: str, payment_reference: str | None,
    actor: str, now: datetime, public_base_url: str, order_id: str | None = None,
    payment_status: str = "paid", forward_to_shopify: bool = False,
    etsy_linked: bool = True,
) -> Order:
    """``etsy_linked=False``: the caller saw no Etsy listing link in this transaction
    (``checkout.repository.lock_for_outcome``), so there is no listing to update."""
    order_id = order_id or new_id("ord")
    order = Order(
        id=order_id,
        permalink_url=f"{public_base_url.rstrip('/')}/order-status/{order_id}",
        order_number=new_order_number(),
        checkout_session_id=session.id,
        agent_id=session.agent_id,
        status=OrderStatus.confirmed,
        payment_status=payment_status,
        currency=session.currency,
        line_items=session.line_items,
        totals=session.totals,
        total_amount=session.total_amount,
        buyer=session.buyer,
        fulfillment_details=session.fulfillment_details,
        selected_fulfillment_options=session.selected_fulfillment_options,
        order_notes=session.order_notes,
        payment_provider=provider,
        payment_reference=payment_reference,
        created_at=now,
        updated_at=now,
        # Every column set here: the object stays transient (one Core INSERT, no unit of
        # work), so what is rendered from it must not rely on column defaults.
        refunded_amount=0,
        forwarding_status=ForwardingStatus.pending if forward_to_shopify
        else ForwardingStatus.manual,
        attention_reason=None, shopify_order_id=None, shopify_order_name=None,
    )
    await repository.insert_order(db, order)
    await repository.insert_event(db, order.id, "order.created", actor, {
        "checkout_session_id": session.id, "total_amount": session.total_amount,
        "currency": session.currency, "payment_reference": payment_reference,
    }, now)
    await notify.order_changed(db, order, "order_create")
    if forward_to_shopify:  # forwarding_status is already pending (above)
        await notify.forward_to_shopify(db, order)
    if etsy_linked:
        await etsy_stock_sold(db, order)  # linked Etsy listings take the new stock (outbox)
    return order


async def merchant_order_json(db: AsyncSession, order: Order) -> Json:
    """The merchant's view: everything about the order, including its history."""
    refunds = await repository.refunds_of(db, order.id)
    disputes = await repository.disputes_of(db, order.id)
    events = await repository.events_of(db, order.id)
    return {
        "id": order.id,
        "order_number": order.order_number,
        "checkout_session_id": order.checkout_session_id,
        "agent_id": order.agent_id,
        "status": order.status,
        "payment_status": order.payment_status,
        "currency": order.currency,
        "total_amount": order.total_amount,
        "refunded_amount": order.refunded_amount,
        "refundable_amount": order.total_amount - sum(
            r.amount for r in refunds if r.status in LIVE_REFUNDS),
        "line_items": order.line_items,
        "totals": order.totals,
        "buyer": order.buyer,
        "fulfillment_details": order.fulfillment_details,
        "payment": await _payment_facts(db, order),
        "refunds": [{"id": r.id, "amount": r.amount, "currency": r.currency,
                     "status": r.status, "reason": r.reason, "source": r.source,
                     "provider_reference": r.provider_reference,
                     "created_at": rfc3339(r.created_at)} for r in refunds],
        "disputes": [{"id": d.id, "amount": d.amount, "status": d.status, "reason": d.reason,
                      "funds_withdrawn": d.funds_withdrawn,
                      "funds_reinstated": d.funds_reinstated,
                      "evidence_due_by": rfc3339(d.evidence_due_by)
                      if d.evidence_due_by else None,
                      "created_at": rfc3339(d.created_at)} for d in disputes],
        "events": [{"type": e.type, "actor": e.actor, "data": e.data,
                    "at": rfc3339(e.created_at)} for e in events],
        "acp_order": await acp_snapshot(db, order),
        "forwarding": {"status": order.forwarding_status,
                       "attention_reason": order.attention_reason,
                       "shopify_order_id": order.shopify_order_id,
                       "shopify_order_name": order.shopify_order_name},
        "created_at": rfc3339(order.created_at),
        "updated_at": rfc3339(order.updated_at),
    }


async def _payment_facts(db: AsyncSession, order: Order) -> Json:
    from sqlalchemy import select

    from models import PaymentAttempt, PaymentAuthorization

    attempt = await db.scalar(select(PaymentAttempt).where(
        PaymentAttempt.provider_reference == order.payment_reference).limit(1)) \
        if order.payment_reference else None
    auth = await db.get(PaymentAuthorization, order.id)
    facts: Json = {"provider": order.payment_provider, "reference": order.payment_reference,
                   "status": order.payment_status,
                   "api_version": attempt.api_version if attempt else None,
                   "fee_amount": attempt.fee_amount if attempt else None,
                   "net_amount": attempt.net_amount if attempt else None}
    if auth is not None:
        facts["capture"] = {"status": auth.status, "amount_authorized": auth.amount_authorized,
                            "amount_to_capture": auth.amount_to_capture,
                            "amount_captured": auth.amount_captured,
                            "amount_released": auth.amount_authorized - auth.amount_captured
                            if auth.status == "captured" else 0,
                            "expires_at": rfc3339(auth.expires_at),
                            "last_error": auth.last_error}
    return facts


async def cancel_order(db: AsyncSession, order: Order, *, actor: str,
                       reason: str | None = None) -> bool:
    """Cancel an order (locked by the caller): stock that has not shipped goes back on sale
    and an authorisation that was not captured yet is released (by the worker). Returns
    False if it was already canceled."""
    from orders.capture import request_cancel

    if order.status == "canceled":
        return False
    fulfillments = await repository.fulfillments_of(db, order.id)
    done = fulfilled_quantities(fulfillments)
    restock: dict[str, int] = {}
    for line in order.line_items:
        left = line["quantity"] - done.get(line["id"], 0)
        if left > 0:
            variant = line["item"]["id"]
            restock[variant] = restock.get(variant, 0) + left
    await repository.restock(db, restock)
    order.status = "canceled"
    order.updated_at = utc_now()
    await repository.add_event(db, order.id, "order.canceled", actor,
                               {"reason": reason, "restocked": restock})
    await request_cancel(db, order, actor=actor)
    await notify.order_changed(db, order)
    return True


async def get_for_agent(db: AsyncSession, agent_id: str, order_id: str) -> Order:
    """An order as the agent that placed it may read it; another agent's order is "not
    found" (the same rule as checkout sessions). For protocol bindings (ACP, UCP…)."""
    from orders.errors import OrderNotFound

    order = await repository.get_order(db, order_id)
    if order is None or order.agent_id != agent_id:
        raise OrderNotFound(order_id)
    return order


async def resend_to_agent(db: AsyncSession, order_id: str, actor: str) -> Order:
    """Queue a fresh ``order_update`` with the order's current state."""
    from orders.errors import OrderNotFound

    order = await repository.get_order(db, order_id)
    if order is None:
        raise OrderNotFound(order_id)
    await notify.order_changed(db, order)
    await repository.add_event(db, order_id, "webhook.redeliver_requested", actor, {})
    return order


async def retry_forwarding(db: AsyncSession, order_id: str, actor: str) -> Order:
    """Forward an order to Shopify again (after fixing what it rejected). The forwarder
    looks the order up first, so this never creates a duplicate."""
    from orders.errors import AlreadyForwarded, OrderNotFound

    order = await repository.lock_order(db, order_id)
    if order is None:
        raise OrderNotFound(order_id)
    if order.shopify_order_id:
        raise AlreadyForwarded(f"Order {order_id} is already in Shopify.")
    order.attention_reason = None
    if order.status == OrderStatus.manual_review:
        order.status = OrderStatus.confirmed
    await notify.forward_to_shopify(db, order)
    await repository.add_event(db, order_id, "shopify.retry_requested", actor, {})
    return order


__all__ = ["acp_snapshot", "adjustments_json", "create_from_session", "derive_status",
           "get_for_agent",
           "fulfilled_quantities", "fulfillment_json", "merchant_order_json",
           "new_order_number", "order_json", "permalink", "resend_to_agent",
           "retry_forwarding"]
