"""Order creation and the ACP ``Order`` representation."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from etsy.hooks import stock_sold as etsy_stock_sold
from models import CheckoutSession, Dispute, Fulfillment, Order, Refund
from models.base import new_id, rfc3339
from orders import notify, repository

Json = dict[str, Any]
_ORDER_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O/1/I: read aloud to support


def new_order_number() -> str:
    return "RC-" + "".join(secrets.choice(_ORDER_ALPHABET) for _ in range(8))


async def create_from_session(
    db: AsyncSession, session: CheckoutSession, *, provider: str, payment_reference: str | None,
    actor: str, now: datetime, public_base_url: str, order_id: str | None = None,
    payment_status: str = "paid", forward_to_shopify: bool = False,
) -> Order:
    order_id = order_id or new_id("ord")
    order = Order(
        id=order_id,
        permalink_url=f"{public_base_url.rstrip('/')}/order-status/{order_id}",
        order_number=new_order_number(),
        checkout_session_id=session.id,
        agent_id=session.agent_id,
        status="confirmed",
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
    )
    db.add(order)
    await db.flush()
    await repository.add_event(db, order.id, "order.created", actor, {
        "checkout_session_id": session.id, "total_amount": session.total_amount,
        "currency": session.currency, "payment_reference": payment_reference,
    })
    await notify.order_changed(db, order, "order_create")
    if forward_to_shopify:
        await notify.forward_to_shopify(db, order)
    await etsy_stock_sold(db, order)  # linked Etsy listings take the new stock (outbox)
    return order


def permalink(order: Order) -> str:
    return order.permalink_url or f"/order-status/{order.id}"


def adjustments_json(refunds: list[Refund], disputes: list[Dispute]) -> list[Json]:
    out: list[Json] = []
    for r in refunds:
        if r.status == "failed":
            continue
        out.append({"id": r.id, "type": "refund", "occurred_at": rfc3339(r.created_at),
                    "status": "completed" if r.status == "succeeded" else "pending",
                    "amount": r.amount, "currency": r.currency,
                    **({"reason": r.reason} if r.reason else {})})
    for d in disputes:
        out.append({"id": d.id, "type": "dispute", "occurred_at": rfc3339(d.created_at),
                    "status": "completed" if d.status in ("won", "lost") else "pending",
                    "amount": d.amount, "currency": d.currency,
                    **({"reason": d.reason} if d.reason else {})})
    return out


def fulfillment_json(f: Fulfillment) -> Json:
    out: Json = {"id": f.id, "type": f.type, "status": f.status,
                 "line_items": f.line_items, "events": f.events}
    if f.type == "shipping":
        for key in ("carrier", "tracking_number", "tracking_url"):
            value = getattr(f, key)
            if value:
                out[key] = value
    return out


def fulfilled_quantities(fulfillments: list[Fulfillment]) -> dict[str, int]:
    done: dict[str, int] = {}
    for f in fulfillments:
        if f.status in ("canceled", "failed", "pending"):
            continue
        for line in f.line_items:
            done[line["id"]] = done.get(line["id"], 0) + int(line["quantity"])
    return done


def derive_status(order: Order, fulfillments: list[Fulfillment]) -> str:
    """ACP rfc.orders §7.1: from the lines and fulfilments, the order's status."""
    if order.status == "canceled":
        return "canceled"
    if order.forwarding_status == "needs_attention":
        return "manual_review"
    done = fulfilled_quantities(fulfillments)
    lines = {line["id"]: line["quantity"] for line in order.line_items}
    live = [f for f in fulfillments if f.status not in ("canceled", "failed")]
    if lines and all(done.get(i, 0) >= q for i, q in lines.items()):
        if live and all(f.status == "delivered" for f in live):
            return "completed"
        return "shipped"
    if any(done.values()) or any(f.status in ("pending", "processing") for f in live):
        return "processing"
    return "confirmed"


def order_json(order: Order, support_email: str | None = None,
               adjustments: list[Json] | None = None,
               fulfillments: list[Fulfillment] | None = None) -> Json:
    """The ACP 2026-04-17 ``Order`` (post 2026-05-01 alignment: ordered/current/fulfilled)."""
    done = fulfilled_quantities(fulfillments or [])
    lines = []
    for line in order.line_items:
        line_totals = {t["type"]: t["amount"] for t in line.get("totals", [])}
        current = 0 if order.status == "canceled" else line["quantity"]
        fulfilled = min(done.get(line["id"], 0), current)
        lines.append({
            "id": line["id"],
            "title": line.get("name") or line["item"]["id"],
            "product_id": line.get("product_id") or line["item"]["id"],
            "quantity": {"ordered": line["quantity"], "current": current,
                         "fulfilled": fulfilled},
            "unit_price": line.get("unit_amount", 0),
            "subtotal": line_totals.get("subtotal", 0),
            "totals": line.get("totals", []),
            "status": "removed" if current == 0 else "fulfilled" if fulfilled >= current
            else "partial" if fulfilled else "processing",
        })
    totals: list[Json] = [t for t in order.totals if t["type"] != "items_discount"]
    if order.refunded_amount:
        totals.append({"type": "amount_refunded", "display_text": "Refunded",
                       "amount": order.refunded_amount})
    out: Json = {
        "type": "order",
        "id": order.id,
        "checkout_session_id": order.checkout_session_id,
        "order_number": order.order_number,
        "permalink_url": permalink(order),
        "status": order.status,
        "confirmation": {"confirmation_number": order.order_number},
        "line_items": lines,
        "fulfillments": [fulfillment_json(f) for f in fulfillments or []],
        "adjustments": adjustments or [],
        "totals": totals,
    }
    if support_email:
        out["support"] = {"email": support_email}
    return out


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
            r.amount for r in refunds if r.status in ("pending", "succeeded")),
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


async def acp_snapshot(db: AsyncSession, order: Order, support_email: str | None = None
                       ) -> Json:
    """The complete current ACP ``Order``: what agents get in every order webhook."""
    refunds = await repository.refunds_of(db, order.id)
    disputes = await repository.disputes_of(db, order.id)
    fulfillments = await repository.fulfillments_of(db, order.id)
    snapshot = order_json(order, support_email,
                          adjustments=adjustments_json(refunds, disputes),
                          fulfillments=fulfillments)
    if order.status == "canceled":
        snapshot["adjustments"].append({
            "id": f"cancel_{order.id}", "type": "cancellation", "status": "completed",
            "occurred_at": rfc3339(order.updated_at)})
    return snapshot


async def _payment_facts(db: AsyncSession, order: Order) -> Json:
    from sqlalchemy import select

    from models import PaymentAttempt

    attempt = await db.scalar(select(PaymentAttempt).where(
        PaymentAttempt.provider_reference == order.payment_reference).limit(1)) \
        if order.payment_reference else None
    return {"provider": order.payment_provider, "reference": order.payment_reference,
            "fee_amount": attempt.fee_amount if attempt else None,
            "net_amount": attempt.net_amount if attempt else None}


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
    if order.status == "manual_review":
        order.status = "confirmed"
    await notify.forward_to_shopify(db, order)
    await repository.add_event(db, order_id, "shopify.retry_requested", actor, {})
    return order
