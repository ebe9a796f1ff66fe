"""UCP checkout and order operations over the commerce core (``checkout.CheckoutService``).

The core prices, holds the state machine and charges; this module maps UCP's shapes onto
it and keeps the UCP-only state (``UcpCheckout``) in the same transaction.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from checkout import repository as checkout_repository
from checkout.domain import (
    TERMINAL,
    Actor,
    Claim,
    CompleteSession,
    CreateSession,
    LineRequest,
    PaymentCredential,
    SessionStatus,
    SessionView,
    UpdateSession,
)
from checkout.pricing import apply_discount_codes
from checkout.service import CheckoutService
from models import Order, UcpCheckout
from models.base import new_id, rfc3339, utc_now
from models.errors import AppError
from models.statuses import DEAD_FULFILLMENTS
from orders import repository as order_repository
from orders.documents import PartialCapture, capture_adjustment, partial_capture
from orders.service import adjustments_json
from protocols.ucp import DISCOUNT, FULFILLMENT, attribution, repository
from protocols.ucp.errors import UcpError, from_core, invalid
from protocols.ucp.negotiation import Platform
from protocols.ucp.payments import HandlerSpec, UnusableCredential, provider_token
from protocols.ucp.profile import BusinessProfile
from protocols.ucp.schemas import BuyerIn, CheckoutIn, CompleteIn, Destination, MethodIn

Json = dict[str, Any]

STATUS = {"not_ready_for_payment": "incomplete", "ready_for_payment": "ready_for_complete",
          "in_progress": "complete_in_progress", "authentication_required": "requires_escalation",
          "completed": "completed", "canceled": "canceled", "expired": "canceled"}
SEVERITY = {"requires_buyer_input": "requires_buyer_input", "recoverable": "recoverable",
            "requires_buyer_review": "requires_buyer_review"}
STOCK_CODES = ("out_of_stock", "quantity_exceeded")
NEEDS_FULFILMENT = "Fulfillment address and option must be selected"


class WithStatus(dict[str, Any]):
    """A handler result answered with another status than the route's default."""

    def __init__(self, status_code: int, body: Json) -> None:
        super().__init__(body)
        self.status_code = status_code


# Every UCP session belongs to its platform's agent, whose id carries this prefix; ACP
# agents' ids never do (``new_id("agt")``), so an order whose agent id lacks it was not
# placed through UCP and has no ``UcpCheckout``.
AGENT_PREFIX = "agt_ucp_"


def agent_id_for(platform: Platform) -> str:
    return AGENT_PREFIX + hashlib.sha256(platform.host.encode()).hexdigest()[:16]


def _acp_address(d: Json) -> Json:
    name = d.get("full_name") or " ".join(
        p for p in (d.get("first_name"), d.get("last_name")) if p) or None
    out = {"name": name, "line_one": d.get("street_address"),
           "line_two": d.get("extended_address"), "city": d.get("address_locality"),
           "state": d.get("address_region"),
           "country": (d.get("address_country") or "").upper() or None,
           "postal_code": d.get("postal_code")}
    return {k: v for k, v in out.items() if v}


def _buyer_json(b: BuyerIn) -> Json:
    out = b.model_dump(exclude_none=True)
    if "email" in out:
        out["email"] = out["email"].strip()
    return out


class UcpCheckoutService:
    def __init__(self, *, core: CheckoutService, profile: BusinessProfile,
                 handlers: tuple[HandlerSpec, ...], clock: Callable[[], datetime] = utc_now
                 ) -> None:
        self.core = core
        self.profile = profile
        self.handlers = {h.id: h for h in handlers}
        self.clock = clock

    # ------------------------------------------------------------------ helpers

    async def continue_url(self, db: AsyncSession, view: SessionView) -> str:
        """The buyer's way to finish on our hosted order page (escalation)."""
        base = self.core.public_base_url.rstrip("/")
        s = await checkout_repository.get_session(db, view.id)
        return f"{base}/order-status/{s.order_id}" if s is not None and s.order_id \
            else f"{base}/"

    async def _ucp_row(self, db: AsyncSession, platform: Platform, session_id: str, *,
                       for_update: bool) -> UcpCheckout:
        """The UCP side of a session this platform owns (else 404, like the core)."""
        u = await repository.get(db, session_id, for_update=for_update)
        s = await checkout_repository.get_session(db, session_id) if u is not None else None
        if u is None or s is None or s.agent_id != agent_id_for(platform):
            raise UcpError(404, "not_found", f"Checkout {session_id!r} does not exist.",
                           as_messages=True, severity="unrecoverable")
        return u

    @staticmethod
    def _lines(body: CheckoutIn) -> list[LineRequest]:
        if not body.line_items:
            raise invalid("At least one line item is required.", "$.line_items")
        return [LineRequest(li.item.id, li.quantity, param=f"$.line_items[{i}].item.id",
                            quantity_param=f"$.line_items[{i}].quantity")
                for i, li in enumerate(body.line_items)]

    async def _state(self, db: AsyncSession, body: CheckoutIn, state: Json,
                     buyer: Json | None) -> Json:
        """The UCP-only state after this request (absent fields: unchanged)."""
        state = dict(state)
        if body.payment is not None:
            state["instruments"] = [self._display_instrument(i.model_dump(exclude_none=True))
                                    for i in body.payment.instruments]
        if body.discounts is not None:
            codes = [c.strip() for c in body.discounts.codes if c.strip()]
            state["discount_codes"] = list(dict.fromkeys(codes))
        if body.fulfillment is not None:
            email = (buyer or {}).get("email")
            state["methods"] = [await self._method(db, m, index, email, state)
                                for index, m in enumerate(body.fulfillment.methods[:1])]
        return state

    @staticmethod
    def _display_instrument(raw: Json) -> Json:
        raw.pop("credential", None)  # credentials are used once, never kept
        return raw

    async def _method(self, db: AsyncSession, m: MethodIn, index: int, email: str | None,
                      state: Json) -> Json:
        previous: Json = next((p for p in state.get("methods", [])
                               if p.get("id") == (m.id or f"method_{index + 1}")), {})
        method: Json = {"id": m.id or previous.get("id") or f"method_{index + 1}",
                        "type": "shipping" if m.type != "pickup" else "pickup"}
        destinations: list[Json] = []
        if m.destinations:
            for d in m.destinations:
                destinations.append(await self._destination(db, d, email))
        elif email:  # a known buyer: offer the saved addresses
            destinations = [{"id": a.id, **a.address}
                            for a in await repository.addresses_for(db, email)]
        if not destinations and not m.destinations:
            destinations = list(previous.get("destinations") or [])
        seen: set[str] = set()
        unique: list[Json] = []
        for dest in destinations:
            fp = repository.fingerprint(dest)
            if fp not in seen:
                seen.add(fp)
                unique.append(dest)
        if unique:
            method["destinations"] = unique
        ids = [dest["id"] for dest in unique]
        selected = m.selected_destination_id
        if selected not in ids:
            selected = previous.get("selected_destination_id") if not m.destinations else None
            if selected not in ids:
                selected = None
        method["selected_destination_id"] = selected
        option = next((g.selected_option_id for g in (m.groups or []) if g.selected_option_id),
                      None)
        if option is None and m.groups is None \
                and selected == previous.get("selected_destination_id"):
            option = previous.get("selected_option_id")
        method["selected_option_id"] = option
        method["group_id"] = next((g.id for g in (m.groups or []) if g.id),
                                  previous.get("group_id") or "group_1")
        return method

    async def _destination(self, db: AsyncSession, d: Destination, email: str | None) -> Json:
        data = d.model_dump(exclude_none=True, exclude={"id"})
        if "address_country" in data:
            data["address_country"] = data["address_country"].upper()
        if email and data.get("street_address"):  # remembered for this buyer's next time
            saved_id = await repository.save_address(db, email, data)
            return {"id": d.id or saved_id, **data}
        return {"id": d.id or new_id("dest"), **data}

    @staticmethod
    def _core_fulfilment(state: Json, item_ids: list[str]) -> tuple[Json | None, list[Json] | None]:
        """The UCP selection → the core's (address, chosen options)."""
        methods = state.get("methods") or []
        method = methods[0] if methods else None
        dest = None
        if method and method.get("selected_destination_id"):
            dest = next((d for d in method.get("destinations", [])
                         if d["id"] == method["selected_destination_id"]), None)
        details = {"address": _acp_address(dest)} if dest else None
        option = method.get("selected_option_id") if method and dest else None
        chosen = [{"type": "shipping", "option_id": option, "item_ids": item_ids}] \
            if option else None
        return details, chosen

    def _check_stock(self, view: SessionView) -> None:
        for m in view.messages:
            if m.get("type") == "error" and m.get("code") in STOCK_CODES:
                raise UcpError(400, "out_of_stock", f"Insufficient stock: {m['content']}",
                               path=m.get("param"), as_messages=True,
                               continue_url=self.core.profile.store_url)

    @staticmethod
    def _ensure_open(view: SessionView) -> None:
        if view.status in TERMINAL:
            raise UcpError(409, "invalid_status", f"Checkout {view.id} is "
                           f"{STATUS[view.status]}; it can no longer be changed.")
        if view.status == SessionStatus.in_progress:
            raise UcpError(409, "complete_in_progress",
                           f"Checkout {view.id} is being completed; retry shortly.",
                           headers={"Retry-After": "1"})

    # ------------------------------------------------------------------ operations

    async def create(self, db: AsyncSession, platform: Platform, body: CheckoutIn) -> Json:
        agent_id = agent_id_for(platform)
        await repository.ensure_agent(db, agent_id, f"UCP {platform.host}")
        lines = self._lines(body)
        buyer = _buyer_json(body.buyer) if body.buyer else None
        state = await self._state(db, body, {}, buyer)
        details, chosen = self._core_fulfilment(state, [ln.item_id for ln in lines])
        try:
            view = await self.core.create(db, Actor(agent_id), CreateSession(
                # The business determines the currency (checkout.json): the store's own.
                currency=self.core.profile.currencies[0], lines=lines, buyer=buyer,
                fulfillment_details=details, selected_fulfillment_options=chosen,
                discount_codes=state.get("discount_codes") or None))
        except AppError as exc:
            raise from_core(exc) from None
        self._check_stock(view)
        now = self.clock()
        u = UcpCheckout(checkout_session_id=view.id, profile_url=platform.profile_url,
                        webhook_url=platform.webhook_url,
                        capabilities=sorted(platform.capabilities), state=state,
                        attribution=body.attribution or None, created_at=now, updated_at=now)
        db.add(u)
        await db.flush()
        await attribution.record(db, view.id, body.attribution, "first", platform.host, now)
        return await self.render(db, view, u)

    async def get(self, db: AsyncSession, platform: Platform, session_id: str) -> Json:
        u = await self._ucp_row(db, platform, session_id, for_update=False)
        try:
            view = await self.core.get(db, Actor(agent_id_for(platform)), session_id)
        except AppError as exc:
            raise from_core(exc) from None
        return await self.render(db, view, u)

    async def update(self, db: AsyncSession, platform: Platform, session_id: str,
                     body: CheckoutIn) -> Json:
        actor = Actor(agent_id_for(platform))
        u = await self._ucp_row(db, platform, session_id, for_update=True)
        try:
            current = await self.core.get(db, actor, session_id)
            self._ensure_open(current)
            lines = self._lines(body) if body.line_items is not None else None
            buyer = {**(current.buyer or {}), **_buyer_json(body.buyer)} \
                if body.buyer is not None else current.buyer
            state = await self._state(db, body, u.state or {}, buyer)
            item_ids = [ln.item_id for ln in lines] if lines is not None \
                else [li["item"]["id"] for li in current.line_items]
            details, chosen = self._core_fulfilment(state, item_ids)
            view = await self.core.update(db, actor, session_id, UpdateSession(
                lines=lines if lines is not None else UpdateSession().lines,
                buyer=buyer, fulfillment_details=details, selected_fulfillment_options=chosen,
                discount_codes=state.get("discount_codes") or None))
        except AppError as exc:
            raise from_core(exc) from None
        self._check_stock(view)
        u.state = state
        if body.attribution:
            u.attribution = {**(u.attribution or {}), **body.attribution}
        u.updated_at = self.clock()
        await db.flush()
        return await self.render(db, view, u)

    async def cancel(self, db: AsyncSession, platform: Platform, session_id: str) -> Json:
        actor = Actor(agent_id_for(platform))
        u = await self._ucp_row(db, platform, session_id, for_update=True)
        try:
            self._ensure_open(await self.core.get(db, actor, session_id))
            view = await self.core.cancel(db, actor, session_id, None)
        except AppError as exc:
            raise from_core(exc) from None
        return await self.render(db, view, u)

    async def complete(self, sessionmaker: async_sessionmaker[AsyncSession], db: AsyncSession,
                       platform: Platform, session_id: str, body: CompleteIn, *,
                       claim: Claim | None = None) -> Json:
        """Validate and note the instrument, then let the core charge once: both in the
        core's first transaction (the recovery point), after ``claim`` (the request's
        idempotency key), so the key, the notes and the recovery point commit together.
        A decline answers 402 with the spec's error response; the declined attempt is
        recorded in the same transaction as the stored idempotent answer."""
        actor = Actor(agent_id_for(platform))

        async def prepare(pre: AsyncSession) -> CompleteSession:
            u = await self._ucp_row(pre, platform, session_id, for_update=True)
            try:
                current = await self.core.get(pre, actor, session_id)
            except AppError as exc:
                raise from_core(exc) from None
            self._ensure_open(current)
            if any(m.get("type") == "error" and str(m.get("param", "")).startswith(
                    ("$.fulfillment_details", "$.selected_fulfillment_options"))
                   for m in current.messages):
                raise UcpError(400, "missing", NEEDS_FULFILMENT, path="$.fulfillment",
                               as_messages=True, severity="requires_buyer_input")
            token, display = self._instrument(body)
            state = dict(u.state or {})
            state["instruments"] = [display]
            state["expectation"] = self._expectation(current, state)
            u.state = state
            if body.attribution:
                u.attribution = {**(u.attribution or {}), **body.attribution}
            await attribution.record(pre, session_id, body.attribution, "last", platform.host,
                                     self.clock())
            buyer = {**(current.buyer or {}), **_buyer_json(body.buyer)} if body.buyer \
                else None
            return CompleteSession(payment=PaymentCredential(token=token, type="token"),
                                   buyer=buyer, payment_param="$.payment")

        try:
            view = await self.core.complete(sessionmaker, db, actor, session_id, prepare,
                                            claim=claim)
        except AppError as exc:
            raise from_core(exc) from None
        u = await self._ucp_row(db, platform, session_id, for_update=False)
        declined = next((m for m in view.messages if m.get("code") == "payment_declined"), None)
        if view.status != SessionStatus.completed and declined is not None:
            return WithStatus(402, UcpError(
                402, "payment_declined", declined["content"], path="$.payment",
                as_messages=True, severity="requires_buyer_input").body())
        return await self.render(db, view, u)

    def _instrument(self, body: CompleteIn) -> tuple[str, Json]:
        instruments = body.payment.instruments
        if not instruments:
            raise invalid("payment.instruments needs one instrument.", "$.payment.instruments",
                          code="missing")
        index, chosen = next(((i, x) for i, x in enumerate(instruments) if x.selected),
                             (0, instruments[0]))
        path = f"$.payment.instruments[{index}]"
        handler = self.handlers.get(chosen.handler_id)
        if handler is None:
            raise invalid(f"Unknown payment handler {chosen.handler_id!r}.",
                          f"{path}.handler_id", code="invalid_payment_handler")
        if chosen.credential is None:
            raise invalid("The instrument has no credential.", f"{path}.credential",
                          code="missing")
        try:
            token = provider_token(handler, chosen.credential.model_dump(exclude_none=True))
        except UnusableCredential as exc:
            raise invalid(str(exc), f"{path}.credential", code="invalid_credential") from None
        return token, self._display_instrument(chosen.model_dump(exclude_none=True))

    def _expectation(self, view: SessionView, state: Json) -> Json | None:
        methods = state.get("methods") or []
        if not methods or not view.selected_fulfillment_options:
            return None
        method = methods[0]
        dest = next((d for d in method.get("destinations", [])
                     if d["id"] == method.get("selected_destination_id")), None)
        chosen = view.selected_fulfillment_options[0]["option_id"]
        option = next((o for o in view.fulfillment_options if o["id"] == chosen), None)
        return {"method_type": method.get("type", "shipping"),
                "destination": {k: v for k, v in (dest or {}).items() if k != "id"},
                "description": self._option_title(option) if option else chosen}

    # ------------------------------------------------------------------ rendering

    def _option_title(self, option: Json) -> str:
        amount = option["totals"][0]["amount"] if option.get("totals") else 0
        rate = next((r for r in self.core.profile.shipping_rates if r.id == option["id"]), None)
        if rate is not None and rate.amount > 0 and amount == 0:
            return f"Free {option['title']}"
        return str(option["title"])

    def _messages(self, s: SessionView) -> list[Json]:
        out: list[Json] = []
        for m in s.messages:
            path = m.get("param")
            content = m.get("content", "")
            if path and path.startswith("$.fulfillment_details"):
                path = "$.fulfillment.methods[0].selected_destination_id"
                content = "Fulfillment address is required."
            elif path and path.startswith("$.selected_fulfillment_options"):
                path = "$.fulfillment.methods[0].groups[0].selected_option_id"
            elif path and path.startswith("$.discounts.codes"):
                path = path.replace("$.discounts.codes", "$.discounts.codes")
            msg: Json = {"type": m["type"], "code": m["code"], "content": content}
            if path:
                msg["path"] = path
            if m["type"] == "error":
                msg["severity"] = SEVERITY.get(m.get("resolution", ""), "recoverable")
            out.append(msg)
        return out

    @staticmethod
    def _total(type_: str, amount: int, text: str) -> Json:
        return {"type": type_, "display_text": text, "amount": amount}

    @staticmethod
    def _charged(totals: list[Json], capture: PartialCapture | None) -> list[Json]:
        """After a partial capture the order's ``total`` is what the buyer was charged (the
        ACP decision; UCP is silent), itemised in ``lines`` (which the spec says sum to
        it): the authorised amount and the released rest. The other entries stay as
        ordered."""
        if capture is None:
            return totals
        return [{**t, "display_text": "Total charged", "amount": capture.captured, "lines": [
            {"display_text": "Authorized", "amount": capture.authorized},
            {"display_text": "Released, not charged", "amount": -capture.released}]}
            if t["type"] == "total" else t for t in totals]

    def _totals(self, s_totals: list[Json], shipping_chosen: bool) -> list[Json]:
        by = {t["type"]: t["amount"] for t in s_totals}
        out = [self._total("subtotal", by.get("items_base_amount", 0), "Subtotal")]
        discount = by.get("items_discount", 0) + by.get("discount", 0)
        if discount:
            out.append(self._total("discount", -discount, "Discounts"))
        if shipping_chosen:
            out.append(self._total("fulfillment", by.get("fulfillment", 0), "Shipping"))
        if by.get("tax"):
            out.append(self._total("tax", by["tax"], "Tax"))
        out.append(self._total("total", by.get("total", 0), "Total"))
        return out

    @staticmethod
    def _line(li: Json) -> Json:
        by = {t["type"]: t["amount"] for t in li.get("totals", [])}
        base = by.get("items_base_amount", 0)
        totals = [{"type": "subtotal", "amount": base}]
        if by.get("discount"):
            totals.append({"type": "discount", "amount": -by["discount"]})
        if by.get("tax"):
            totals.append({"type": "tax", "amount": by["tax"]})
        totals.append({"type": "total", "amount": by.get("total", base)})
        item: Json = {"id": li["item"]["id"], "title": li.get("name") or li["item"]["id"],
                      "price": li.get("unit_amount", 0)}
        if li.get("images"):
            item["image_url"] = li["images"][0]
        return {"id": li["id"], "item": item, "quantity": li["quantity"], "totals": totals}

    def _fulfillment(self, s: SessionView, u: UcpCheckout) -> Json | None:
        methods = (u.state or {}).get("methods") or []
        if not methods:
            return None
        out = []
        line_ids = [li["id"] for li in s.line_items]
        chosen = (s.selected_fulfillment_options or [{}])[0].get("option_id")
        for m in methods:
            method: Json = {"id": m["id"], "type": m["type"], "line_item_ids": line_ids}
            if m.get("destinations"):
                method["destinations"] = m["destinations"]
            if m.get("selected_destination_id"):
                method["selected_destination_id"] = m["selected_destination_id"]
            options = [self._option(o) for o in s.fulfillment_options
                       if o["type"] == m["type"]] if m.get("selected_destination_id") else []
            group: Json = {"id": m.get("group_id", "group_1"), "line_item_ids": line_ids,
                           "options": options}
            if chosen and any(o["id"] == chosen for o in options):
                group["selected_option_id"] = chosen
            method["groups"] = [group]
            out.append(method)
        return {"methods": out}

    def _option(self, o: Json) -> Json:
        amount = o["totals"][0]["amount"] if o.get("totals") else 0
        out: Json = {"id": o["id"], "title": self._option_title(o),
                     "totals": [{"type": "total", "amount": amount}]}
        for src, dst in (("description", "description"), ("carrier", "carrier"),
                         ("earliest_delivery_time", "earliest_fulfillment_time"),
                         ("latest_delivery_time", "latest_fulfillment_time")):
            if o.get(src):
                out[dst] = o[src]
        return out

    def _discounts(self, s: SessionView, codes: list[str]) -> Json | None:
        if not codes:
            return None
        bases = [(li["id"], next((t["amount"] for t in li.get("totals", [])
                                  if t["type"] == "items_base_amount"), 0))
                 for li in s.line_items]
        applied, _ = apply_discount_codes(bases, codes, self.core.profile.discount_codes)
        index = {li["id"]: i for i, li in enumerate(s.line_items)}
        return {"codes": list(codes), "applied": [{
            "code": d.code, "title": d.title, "amount": d.amount, "method": "across",
            "allocations": [{"path": f"$.line_items[{index[line_id]}]", "amount": part}
                            for line_id, part in d.allocations if part]}
            for d in applied]}

    async def render(self, db: AsyncSession, s: SessionView, u: UcpCheckout) -> Json:
        status = STATUS[s.status]
        active = frozenset(u.capabilities or [])
        p = self.core.profile
        state = u.state or {}
        out: Json = {
            "ucp": self.profile.envelope("checkout", active),
            "id": s.id,
            "status": status,
            "currency": s.currency.upper(),
            "line_items": [self._line(li) for li in s.line_items],
            "totals": self._totals(s.totals, bool(s.selected_fulfillment_options)),
            "messages": self._messages(s),
            "links": [{"type": "terms_of_service", "url": p.terms_url},
                      {"type": "privacy_policy", "url": p.privacy_url},
                      {"type": "refund_policy", "url": p.return_policy_url}],
            "expires_at": rfc3339(s.expires_at),
            "payment": {"instruments": state.get("instruments", [])},
        }
        if s.buyer:
            out["buyer"] = s.buyer
        if FULFILLMENT in active:
            fulfillment = self._fulfillment(s, u)
            if fulfillment:
                out["fulfillment"] = fulfillment
        if DISCOUNT in active:
            discounts = self._discounts(s, state.get("discount_codes") or [])
            if discounts:
                out["discounts"] = discounts
        if u.attribution:
            out["attribution"] = u.attribution
        if status == "requires_escalation":  # the buyer finishes on our page
            out["continue_url"] = await self.continue_url(db, s)
            out["messages"].append({
                "type": "error", "code": "requires_escalation",
                "severity": "requires_buyer_input",
                "content": "The card issuer asks the buyer to authenticate: continue on the "
                           "merchant's page."})
        if s.order is not None:
            out["order"] = {"id": s.order.id, "label": s.order.order_number,
                            "permalink_url": s.order.permalink_url}
        return out

    # ------------------------------------------------------------------ orders

    async def get_order(self, db: AsyncSession, platform: Platform | None, order_id: str
                        ) -> Json:
        order = await order_repository.get_order(db, order_id)
        if order is None or (platform is not None and order.agent_id != agent_id_for(platform)):
            raise UcpError(404, "not_found", f"Order {order_id!r} does not exist.",
                           as_messages=True, severity="unrecoverable")
        u = await repository.get(db, order.checkout_session_id)
        if u is None:
            raise UcpError(404, "not_found", f"Order {order_id!r} does not exist.",
                           as_messages=True, severity="unrecoverable")
        return await self.render_order(db, order, u)

    async def render_order(self, db: AsyncSession, order: Order, u: UcpCheckout) -> Json:
        fulfillments = await order_repository.fulfillments_of(db, order.id)
        done: dict[str, int] = {}
        events: list[Json] = []
        for f in fulfillments:
            if f.status in DEAD_FULFILLMENTS:
                continue
            for line in f.line_items:
                done[line["id"]] = done.get(line["id"], 0) + int(line["quantity"])
            event: Json = {"id": f.id, "occurred_at": rfc3339(f.updated_at), "type": f.status,
                           "line_items": f.line_items}
            for key in ("carrier", "tracking_number", "tracking_url"):
                if getattr(f, key):
                    event[key] = getattr(f, key)
            events.append(event)
        lines = []
        for li in order.line_items:
            line = self._line(li)
            fulfilled = min(done.get(li["id"], 0), li["quantity"])
            line["quantity"] = {"original": li["quantity"], "total": li["quantity"],
                                "fulfilled": fulfilled}
            line["status"] = "fulfilled" if fulfilled >= li["quantity"] else (
                "partial" if fulfilled else "processing")
            lines.append(line)
        expectation = (u.state or {}).get("expectation")
        expectations = []
        if expectation:
            expectations.append({
                "id": f"exp_{order.id}", "method_type": expectation["method_type"],
                "destination": expectation["destination"], "description":
                expectation["description"],
                "line_items": [{"id": li["id"], "quantity": li["quantity"]}
                               for li in order.line_items]})
        capture = await partial_capture(db, order)
        adjustments = []
        if capture is not None:  # the released rest: never charged (README: UCP)
            released = capture_adjustment(order, capture)
            adjustments.append({"id": released["id"], "type": released["type"],
                                "occurred_at": released["occurred_at"],
                                "status": released["status"],
                                "totals": [{"type": "total", "amount": -capture.released}],
                                "description": released["description"]})
        for a in adjustments_json(await order_repository.refunds_of(db, order.id),
                                  await order_repository.disputes_of(db, order.id)):
            adjustments.append({"id": a["id"], "type": a["type"], "occurred_at":
                                a["occurred_at"], "status": a["status"], "amount": a["amount"],
                                "totals": [{"type": "total", "amount": -a["amount"]}],
                                **({"description": a["reason"]} if a.get("reason") else {})})
        out: Json = {
            "ucp": self.profile.envelope("order", frozenset(u.capabilities or [])),
            "id": order.id,
            "label": order.order_number,
            "checkout_id": order.checkout_session_id,
            "permalink_url": order.permalink_url,
            "currency": order.currency.upper(),
            "line_items": lines,
            "fulfillment": {"expectations": expectations, "events": events},
            "adjustments": adjustments,
            "totals": self._charged(
                self._totals(order.totals, bool(order.selected_fulfillment_options)), capture),
        }
        if u.attribution:
            out["attribution"] = u.attribution
        return out
