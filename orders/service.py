"""Order creation and the ACP ``Order`` representation."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from models import CheckoutSession, Order
from models.base import new_id
from orders import repository

Json = dict[str, Any]
_ORDER_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O/1/I: read aloud to support


def new_order_number() -> str:
    return "RC-" + "".join(secrets.choice(_ORDER_ALPHABET) for _ in range(8))


async def create_from_session(
    db: AsyncSession, session: CheckoutSession, *, provider: str, payment_reference: str | None,
    actor: str, now: datetime, order_id: str | None = None,
) -> Order:
    order = Order(
        id=order_id or new_id("ord"),
        order_number=new_order_number(),
        checkout_session_id=session.id,
        agent_id=session.agent_id,
        status="confirmed",
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
    return order


def permalink(order: Order, public_base_url: str) -> str:
    return f"{public_base_url.rstrip('/')}/orders/{order.id}"


def order_json(order: Order, public_base_url: str, support_email: str | None = None) -> Json:
    """The ACP 2026-04-17 ``Order`` (post 2026-05-01 alignment: ordered/current/fulfilled)."""
    lines = []
    for line in order.line_items:
        line_totals = {t["type"]: t["amount"] for t in line.get("totals", [])}
        lines.append({
            "id": line["id"],
            "title": line.get("name") or line["item"]["id"],
            "product_id": line.get("product_id") or line["item"]["id"],
            "quantity": {"ordered": line["quantity"], "current": line["quantity"], "fulfilled": 0},
            "unit_price": line.get("unit_amount", 0),
            "subtotal": line_totals.get("subtotal", 0),
            "totals": line.get("totals", []),
            "status": "processing",
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
        "permalink_url": permalink(order, public_base_url),
        "status": order.status,
        "confirmation": {"confirmation_number": order.order_number},
        "line_items": lines,
        "fulfillments": [],
        "adjustments": [],
        "totals": totals,
    }
    if support_email:
        out["support"] = {"email": support_email}
    return out
