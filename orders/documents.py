"""The order document: an order as agents see it (the ACP ``Order``: lines with
ordered/current/fulfilled quantities, fulfilments, adjustments, totals), built from our
records. Pure functions plus ``acp_snapshot``, which reads what it needs. Used by the
order service, the webhook notifier and the protocol bindings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from models import Dispute, Fulfillment, Order, Refund
from models.base import rfc3339
from models.money import format_minor
from models.statuses import (
    DEAD_FULFILLMENTS,
    UNSHIPPED_FULFILLMENTS,
    FulfillmentStatus,
    OrderStatus,
    RefundStatus,
)
from orders import repository

Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class BuyerContact:
    """Who to contact about an order, from whichever ACP field the agent sent: the
    ``buyer`` object (every version) or ``fulfillment_details`` (2025-12-12 on; the
    2025-09-29 ``fulfillment_address`` is stored as ``fulfillment_details.address``)."""
    name: str
    email: str
    phone: str


def buyer_contact(buyer: Json | None, fulfillment_details: Json | None) -> BuyerContact:
    """Pure: the buyer's name, email and phone (empty strings when the order has none);
    the buyer object wins over the fulfilment details, field by field."""
    b, f = buyer or {}, fulfillment_details or {}
    address = f.get("address") or {}
    joined = f"{b.get('first_name') or ''} {b.get('last_name') or ''}".strip()

    def first(*values: object) -> str:
        return next((v.strip() for v in values if isinstance(v, str) and v.strip()), "")

    return BuyerContact(
        name=first(joined, b.get("full_name"), b.get("name"), f.get("name"),
                   address.get("name") if isinstance(address, dict) else None),
        email=first(b.get("email"), f.get("email")),
        phone=first(b.get("phone_number"), f.get("phone_number")))


@dataclass(frozen=True, slots=True)
class PartialCapture:
    """A manual-capture payment captured for less than was authorised: the buyer was
    charged ``captured``; the rest of the authorisation was released."""
    authorized: int
    captured: int
    captured_at: datetime

    @property
    def released(self) -> int:
        return self.authorized - self.captured


async def partial_capture(db: AsyncSession, order: Order) -> PartialCapture | None:
    found = await repository.partial_capture_of(db, order.id)
    if found is None:
        return None
    auth, at = found
    return PartialCapture(auth.amount_authorized, auth.amount_captured, at)


def capture_adjustment(order: Order, capture: PartialCapture) -> Json:
    """The released part of the authorisation, as the ACP ``Adjustment`` it is for the
    buyer: a ``price_adjustment`` (never charged), not a refund (nothing was paid back)."""
    def money(amount: int) -> str:
        return format_minor(amount, order.currency)

    return {"id": f"capture_{order.id}", "type": "price_adjustment",
            "occurred_at": rfc3339(capture.captured_at), "status": "completed",
            "amount": capture.released, "currency": order.currency.lower(),
            "description": f"Not charged: {money(capture.captured)} of the authorised "
                           f"{money(capture.authorized)} was captured, the rest released",
            "reason": "partial_capture"}


def permalink(order: Order) -> str:
    return order.permalink_url or f"/order-status/{order.id}"


def adjustments_json(refunds: list[Refund], disputes: list[Dispute]) -> list[Json]:
    out: list[Json] = []
    for r in refunds:
        if r.status == RefundStatus.failed:
            continue
        out.append({"id": r.id, "type": "refund", "occurred_at": rfc3339(r.created_at),
                    "status": "completed" if r.status == RefundStatus.succeeded else "pending",
                    "amount": r.amount, "currency": r.currency,
                    **({"reason": r.reason} if r.reason else {})})
    for d in disputes:
        if not d.funds_withdrawn and (d.status.startswith("warning_")
                                      or d.status == "prevented"):
            continue  # an inquiry: no money moved, nothing adjusted
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
        if f.status in DEAD_FULFILLMENTS or f.status == FulfillmentStatus.pending:
            continue
        for line in f.line_items:
            done[line["id"]] = done.get(line["id"], 0) + int(line["quantity"])
    return done


def derive_status(order: Order, fulfillments: list[Fulfillment]) -> str:
    """ACP rfc.orders §7.1: from the lines and fulfilments, the order's status."""
    if order.status == OrderStatus.canceled:
        return OrderStatus.canceled
    if order.forwarding_status == "needs_attention":
        return OrderStatus.manual_review
    done = fulfilled_quantities(fulfillments)
    lines = {line["id"]: line["quantity"] for line in order.line_items}
    live = [f for f in fulfillments if f.status not in DEAD_FULFILLMENTS]
    if lines and all(done.get(i, 0) >= q for i, q in lines.items()):
        if live and all(f.status == FulfillmentStatus.delivered for f in live):
            return OrderStatus.completed
        return OrderStatus.shipped
    if any(done.values()) or any(f.status in UNSHIPPED_FULFILLMENTS for f in live):
        return OrderStatus.processing
    return OrderStatus.confirmed


def order_json(order: Order, support_email: str | None = None,
               adjustments: list[Json] | None = None,
               fulfillments: list[Fulfillment] | None = None,
               capture: PartialCapture | None = None) -> Json:
    """The ACP 2026-04-17 ``Order`` (post 2026-05-01 alignment: ordered/current/fulfilled).

    After a partial capture (``capture``) the ``total`` is what the buyer was charged
    (ACP: "the original charged amount"), the other totals stay as ordered, and a
    ``price_adjustment`` adjustment carries the released rest (README: decisions)."""
    done = fulfilled_quantities(fulfillments or [])
    lines = []
    for line in order.line_items:
        line_totals = {t["type"]: t["amount"] for t in line.get("totals", [])}
        current = 0 if order.status == OrderStatus.canceled else line["quantity"]
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
    if capture is not None:
        released = format_minor(capture.released, order.currency)
        authorized = format_minor(capture.authorized, order.currency)
        totals = [{**t, "amount": capture.captured,
                   "description": f"Charged; {released} of the authorised {authorized} "
                                  "was released"}
                  if t["type"] == "total" else t for t in totals]
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
        "adjustments": [*([capture_adjustment(order, capture)] if capture else []),
                        *(adjustments or [])],
        "totals": totals,
    }
    if support_email:
        out["support"] = {"email": support_email}
    return out


async def acp_snapshot(db: AsyncSession, order: Order, support_email: str | None = None
                       ) -> Json:
    """The complete current ACP ``Order``: what agents get in every order webhook."""
    refunds = await repository.refunds_of(db, order.id)
    disputes = await repository.disputes_of(db, order.id)
    fulfillments = await repository.fulfillments_of(db, order.id)
    snapshot = order_json(order, support_email,
                          adjustments=adjustments_json(refunds, disputes),
                          fulfillments=fulfillments,
                          capture=await partial_capture(db, order))
    if order.status == OrderStatus.canceled:
        snapshot["adjustments"].append({
            "id": f"cancel_{order.id}", "type": "cancellation", "status": "completed",
            "occurred_at": rfc3339(order.updated_at)})
    return snapshot
