"""Forwarding paid orders to Shopify (outbox topic ``shopify_order``).

Shopify's ``orderCreate`` has no idempotency key, so exactly-once is ours to build: the
message exists once per order (written with the payment), and every attempt after the
first looks the order up by ``sourceIdentifier`` (our order id) before creating it.
A validation error parks the order in ``needs_attention`` for the merchant.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fulfillment.shopify_client import ShopifyAdmin, ShopifyRejected, ShopifyUnavailable
from models import Agent, CheckoutSession, Order, Variant
from models.base import utc_now
from models.money import currency_exponent
from models.statuses import ForwardingStatus, OrderPaymentStatus, OrderStatus
from orders import notify, repository
from webhooks.outbox import DeliveryResult, Message

Json = dict[str, Any]


def major(amount: int, currency: str) -> str:
    exp = currency_exponent(currency)
    if exp == 0:
        return str(amount)
    whole, frac = divmod(abs(amount), 10**exp)
    return f"{'-' if amount < 0 else ''}{whole}.{frac:0{exp}d}"


def money(amount: int, currency: str) -> Json:
    return {"shopMoney": {"amount": major(amount, currency), "currencyCode": currency.upper()}}


def _split_name(name: str | None) -> tuple[str, str]:
    first, _, last = (name or "").strip().partition(" ")
    return first or "-", last or "-"


def build_order_input(order: Order, variants: dict[str, Variant], agent_name: str,
                      video_id: str | None = None) -> Json:
    """Explicit prices, tax and shipping: Shopify records what was charged, not recomputes."""
    currency = order.currency
    totals = {t["type"]: t for t in order.totals}
    tax_total = totals.get("tax", {})
    rate = (tax_total.get("breakdown") or [{}])[0].get("rate", 0)
    tax_title = (tax_total.get("breakdown") or [{}])[0].get("jurisdiction", "Tax")
    line_items = []
    for line in order.line_items:
        item_id = line["item"]["id"]
        line_totals = {t["type"]: t["amount"] for t in line.get("totals", [])}
        entry: Json = {"quantity": line["quantity"],
                       "priceSet": money(line.get("unit_amount", 0), currency),
                       "taxLines": [{"title": tax_title, "rate": rate,
                                     "priceSet": money(line_totals.get("tax", 0), currency)}]}
        variant = variants.get(item_id)
        if variant is not None and variant.shopify_variant_id:
            vid = variant.shopify_variant_id
            entry["variantId"] = vid if vid.startswith("gid://") else \
                f"gid://shopify/ProductVariant/{vid}"
        else:  # custom line: no inventory link in Shopify; the sku ties it back to us
            entry.update({"title": line.get("name") or item_id, "sku": item_id,
                          "requiresShipping": bool(variant.requires_shipping) if variant
                          else True, "taxable": True})
        line_items.append(entry)
    details = order.fulfillment_details or {}
    buyer = order.buyer or {}
    email = buyer.get("email") or details.get("email")
    authorized = order.payment_status == OrderPaymentStatus.authorized
    result: Json = {
        "currency": currency.upper(),
        "lineItems": line_items,
        "financialStatus": "AUTHORIZED" if authorized else "PAID",
        "transactions": [{
            "kind": "AUTHORIZATION" if authorized else "SALE",
            "status": "SUCCESS", "gateway": order.payment_provider,
            "authorizationCode": order.payment_reference or "",
            "amountSet": money(order.total_amount, currency)}],
        "taxesIncluded": False,
        "sourceName": "reelcart-acp",
        "sourceIdentifier": order.id,
        "customAttributes": [
            {"key": "acp_order_id", "value": order.id},
            {"key": "acp_checkout_session_id", "value": order.checkout_session_id},
            {"key": "agent", "value": agent_name},
            {"key": "payment_reference", "value": order.payment_reference or ""},
        ],
        "tags": ["acp", f"agent:{agent_name}"],
    }
    if video_id:  # the generated video that drove the sale (attribution)
        result["customAttributes"].append({"key": "video_id", "value": video_id})
        result["tags"].append(f"video:{video_id}")
    if email:
        result["email"] = email
    address = details.get("address")
    if address:
        first, last = _split_name(address.get("name") or details.get("name"))
        result["shippingAddress"] = {
            "firstName": first, "lastName": last, "address1": address.get("line_one"),
            "address2": address.get("line_two") or None, "city": address.get("city"),
            "provinceCode": address.get("state"), "countryCode": address.get("country"),
            "zip": address.get("postal_code")}
    shipping = totals.get("fulfillment", {}).get("amount", 0)
    if shipping or address:
        option = (order.selected_fulfillment_options or [{}])[0]
        result["shippingLines"] = [{"title": option.get("option_id", "Shipping"),
                                    "code": option.get("option_id", "shipping"),
                                    "source": "reelcart", "priceSet": money(shipping, currency)}]
    return result


class ShopifyForwarder:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], admin: ShopifyAdmin
                 ) -> None:
        self.sessionmaker = sessionmaker
        self.admin = admin

    async def __call__(self, message: Message) -> DeliveryResult:
        order_id = orjson.loads(message.payload)["order_id"]
        async with self.sessionmaker() as db:
            order = await repository.get_order(db, order_id)
            if order is None:
                return DeliveryResult(ok=False, error="order is gone", retryable=False)
            if order.shopify_order_id:
                return DeliveryResult(ok=True, excerpt="already forwarded")
            agent = await db.get(Agent, order.agent_id)
            ids = [line["item"]["id"] for line in order.line_items]
            variants = {v.id: v for v in [await db.get(Variant, i) for i in ids] if v}
            session = await db.get(CheckoutSession, order.checkout_session_id)
            video_id = ((session.session_metadata or {}) if session else {}).get("video_id")
            order_input = build_order_input(order, variants, agent.name if agent else "agent",
                                            video_id if isinstance(video_id, str) else None)
        try:
            created = None
            if message.attempt > 1:  # an earlier attempt may have created it: look first
                created = await self.admin.find_order_by_source_identifier(order_id)
            if created is None:
                created = await self.admin.order_create(order_input, {
                    "inventoryBehaviour": "DECREMENT_OBEYING_POLICY", "sendReceipt": False})
        except ShopifyUnavailable as exc:
            return DeliveryResult(ok=False, error=str(exc), retryable=True,
                                  retry_after=exc.retry_after)
        except ShopifyRejected as exc:
            await self._needs_attention(order_id, str(exc))
            return DeliveryResult(ok=False, error=str(exc), retryable=False)
        await link_shopify_order(self.sessionmaker, order_id, created, actor="shopify")
        return DeliveryResult(ok=True, excerpt=str(created.get("name")))

    async def _needs_attention(self, order_id: str, reason: str) -> None:
        async with self.sessionmaker() as db, db.begin():
            order = await repository.lock_order(db, order_id)
            if order is None:
                return
            order.forwarding_status = ForwardingStatus.needs_attention
            order.attention_reason = reason[:2000]
            order.status = OrderStatus.manual_review
            order.updated_at = utc_now()
            await repository.add_event(db, order_id, "shopify.rejected", "shopify",
                                       {"reason": reason[:2000]})
            await notify.order_changed(db, order)


async def link_shopify_order(sessionmaker: async_sessionmaker[AsyncSession], order_id: str,
                             shopify_order: Json, *, actor: str) -> None:
    async with sessionmaker() as db, db.begin():
        order = await repository.lock_order(db, order_id)
        if order is None or order.shopify_order_id:
            return
        order.shopify_order_id = shopify_order["id"]
        order.shopify_order_name = shopify_order.get("name")
        order.forwarding_status = ForwardingStatus.forwarded
        order.attention_reason = None
        order.updated_at = utc_now()
        await repository.add_event(db, order_id, "shopify.forwarded", actor, {
            "shopify_order_id": shopify_order["id"], "name": shopify_order.get("name")})
