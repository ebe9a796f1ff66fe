"""Shopify webhooks, applied by the worker: fulfilments, cancellations, refunds.

Orders that are not ours are ignored. Payloads are REST-shaped (see the Shopify notes).
Deliveries can repeat and arrive in any order: fulfilment upserts are keyed by Shopify's
fulfilment id and never move backwards; a refund is keyed by Shopify's refund id, so it
becomes exactly one refund at the payment provider.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fulfillment.service import record_fulfillment, refresh_order_status
from models import Order
from models.base import utc_now
from models.money import currency_exponent
from models.urls import is_http_url
from orders import refunds as refund_service
from orders import repository
from orders.errors import RefundNotAllowed
from payments.provider import PaymentProvider
from webhooks.inbox import Handler

log = logging.getLogger("reelcart.shopify")
Json = dict[str, Any]
ACTOR = "shopify"

SHIPMENT_STATUS = {"in_transit": "in_transit", "out_for_delivery": "out_for_delivery",
                   "delivered": "delivered", "ready_for_pickup": "ready_for_pickup",
                   "failure": "failed", "attempted_delivery": "in_transit",
                   "label_printed": "processing", "label_purchased": "processing",
                   "confirmed": "shipped", "carrier_picked_up": "shipped"}


def fulfillment_status(payload: Json) -> str:
    status = payload.get("status")
    if status in ("cancelled", "error", "failure"):
        return "canceled" if status == "cancelled" else "failed"
    if status in ("pending", "open"):
        return "pending"
    return SHIPMENT_STATUS.get(payload.get("shipment_status") or "", "shipped")


def minor(amount: Any, currency: str) -> int:
    try:
        value = Decimal(str(amount))
    except InvalidOperation:
        return 0
    return int((value * (10 ** currency_exponent(currency))).to_integral_value())


@dataclass
class ShopifyEventHandlers:
    provider: PaymentProvider

    def registry(self) -> dict[str, Handler]:
        return {
            "shopify:fulfillments/create": self.fulfillment,
            "shopify:fulfillments/update": self.fulfillment,
            "shopify:orders/fulfilled": self.order_fulfillments,
            "shopify:orders/partially_fulfilled": self.order_fulfillments,
            "shopify:orders/cancelled": self.order_cancelled,
            "shopify:refunds/create": self.refund_created,
        }

    async def _our_order(self, db: AsyncSession, payload: Json, *, order_key: str
                         ) -> Order | None:
        """Ours if Shopify's id is linked to one of our orders, or it carries our id as
        ``source_identifier`` (our orderCreate answer may have been lost: link it now)."""
        source = payload.get("source_identifier")
        if source:
            order = await repository.lock_order(db, str(source))
            if order is not None:
                gid = payload.get("admin_graphql_api_id") or f"gid://shopify/Order/{payload['id']}"
                if not order.shopify_order_id:
                    order.shopify_order_id = gid
                    order.shopify_order_name = payload.get("name")
                    order.forwarding_status = "forwarded"
                return order
        raw = payload.get(order_key)
        if raw is None:
            return None
        gid = raw if str(raw).startswith("gid://") else f"gid://shopify/Order/{raw}"
        order = await repository.order_by_shopify_id(db, gid)
        return await repository.lock_order(db, order.id) if order else None

    @staticmethod
    def _lines(order: Order, payload: Json) -> list[Json]:
        ours = {line["item"]["id"]: line["id"] for line in order.line_items}
        by_title = {line.get("name"): line["id"] for line in order.line_items}
        lines = []
        for item in payload.get("line_items") or []:
            line_id = ours.get(str(item.get("sku") or "")) or by_title.get(item.get("title"))
            if line_id:
                lines.append({"id": line_id, "quantity": int(item.get("quantity") or 0)})
        return [line for line in lines if line["quantity"] > 0]

    async def _apply_fulfillment(self, db: AsyncSession, order: Order, payload: Json) -> None:
        await record_fulfillment(
            db, order, status=fulfillment_status(payload), actor=ACTOR,
            external_id=f"shopify:{payload['id']}", carrier=payload.get("tracking_company"),
            tracking_number=payload.get("tracking_number") or next(
                iter(payload.get("tracking_numbers") or []), None),
            tracking_url=_http_url(payload.get("tracking_url") or next(
                iter(payload.get("tracking_urls") or []), None)),
            line_items=self._lines(order, payload) or None,
            source_updated_at=payload.get("updated_at"))

    async def fulfillment(self, sessionmaker: async_sessionmaker[AsyncSession], payload: Json
                          ) -> None:
        async with sessionmaker() as db, db.begin():
            order = await self._our_order(db, payload, order_key="order_id")
            if order is not None:
                await self._apply_fulfillment(db, order, payload)

    async def order_fulfillments(self, sessionmaker: async_sessionmaker[AsyncSession],
                                 payload: Json) -> None:
        async with sessionmaker() as db, db.begin():
            order = await self._our_order(db, payload, order_key="id")
            if order is None:
                return
            for fulfillment in payload.get("fulfillments") or []:
                await self._apply_fulfillment(db, order, fulfillment)

    async def order_cancelled(self, sessionmaker: async_sessionmaker[AsyncSession],
                              payload: Json) -> None:
        async with sessionmaker() as db, db.begin():
            order = await self._our_order(db, payload, order_key="id")
            if order is None or order.status == "canceled":
                return
            order.status = "canceled"
            order.updated_at = utc_now()
            await refresh_order_status(db, order, ACTOR, {
                "cancel_reason": payload.get("cancel_reason")})

    async def refund_created(self, sessionmaker: async_sessionmaker[AsyncSession],
                             payload: Json) -> None:
        """Shopify only *records* this refund (the money went through our provider):
        turn it into one provider refund, keyed by Shopify's refund id."""
        async with sessionmaker() as db:
            order = await self._our_order(db, payload, order_key="order_id")
            if order is None:
                return
            order_id, currency = order.id, order.currency
            await db.rollback()
        amount = sum(minor(t.get("amount"), currency) for t in payload.get("transactions") or []
                     if t.get("kind") == "refund" and t.get("status") in ("success", None))
        if amount <= 0:
            return
        refund_key = f"shopify:{payload['id']}"
        async with sessionmaker() as db, db.begin():
            try:
                await refund_service.refund_order(
                    sessionmaker, db, self.provider, order_id=order_id, amount=amount,
                    reason=payload.get("note") or "requested_by_customer",
                    request_key=refund_key, actor=ACTOR, source="shopify",
                    external_id=refund_key)
            except RefundNotAllowed as exc:
                log.warning("shopify refund not applied", extra={"order_id": order_id,
                                                                "reason": exc.message})


def _http_url(value: object) -> str | None:
    """Shopify passes on what the merchant typed: keep a tracking link only when it is
    http(s) (it is rendered as a link); the shipment itself is still recorded."""
    if value is None:
        return None
    if is_http_url(value):
        return str(value)
    log.warning("ignoring a non-http(s) tracking URL from Shopify")
    return None
