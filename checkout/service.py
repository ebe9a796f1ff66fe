"""The checkout session state machine.

    not_ready_for_payment ⇄ ready_for_payment → in_progress → completed
                                   ↑   ↓              ↓
                           authentication_required ←──┘ (3-D Secure)
    any open state → canceled (agent) | expired (TTL)

Services only flush; the request owns the transaction. ``complete`` is the exception that
proves the rule: it commits a *recovery point* (payment attempt + reserved stock,
status ``in_progress``) before calling the PSP, so no row lock is held across the network
and a crash between the PSP's answer and our commit is recovered with the same
provider idempotency key.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from attribution import ledger, touches
from attribution.ledger import LedgerPolicy
from checkout import repository
from checkout.errors import (
    CheckoutInProgress,
    CheckoutSessionClosed,
    CheckoutSessionNotFound,
    InvalidItem,
    InvalidPaymentData,
    RequiresAuthentication,
    UnsupportedCurrency,
)
from checkout.pricing import (
    CatalogItem,
    Messages,
    RequestedLine,
    TaxRequest,
    aggregate_requested,
    apply_discount_codes,
    assemble,
    price_lines,
    quote_fulfillment,
    select_fulfillment,
)
from checkout.profile import MerchantProfile
from checkout.schemas import (
    CancelSessionRequest,
    CheckoutSessionCompleteRequest,
    CheckoutSessionCreateRequest,
    CheckoutSessionUpdateRequest,
    Item,
)
from checkout.tax import TaxProvider
from feeds import repository as catalog_repository
from feeds.repository import VariantView
from models import CheckoutSession, Order, PaymentAttempt
from models.base import new_id, rfc3339, utc_now
from models.errors import ServiceUnavailable
from orders import repository as order_repository
from orders import service as order_service
from payments.provider import (
    ChargeRequest,
    ChargeResult,
    PaymentProvider,
    PaymentUnavailable,
    RefundRejected,
    RefundRequest,
    ThreeDSResult,
    charge_idempotency_key,
)

Json = dict[str, Any]
API_VERSION = "2026-04-17"
TERMINAL = frozenset({"completed", "canceled", "expired"})
SUPPORTED_INTERVENTIONS = ("3ds",)
# A pending payment attempt older than this is presumed orphaned (its process died) and is
# resumed with the same provider idempotency key.
ATTEMPT_RECOVERY_AFTER = timedelta(seconds=30)


def to_catalog_item(v: VariantView) -> CatalogItem:
    return CatalogItem(
        id=v.id, product_id=v.product_id, title=v.title, unit_amount=v.price_amount,
        currency=v.currency, stock=v.stock, availability=v.availability,
        requires_shipping=v.requires_shipping,
        purchasable=v.is_eligible_checkout and v.availability != "discontinued",
        max_quantity_per_order=v.max_quantity_per_order, description=v.description,
        image_url=v.image_url, sku=v.sku,
        variant_options=tuple((o["name"], o["value"]) for o in v.variant_options or []),
    )


def _codes(discounts: Any, coupons: list[str] | None) -> list[str] | None:
    codes = list((discounts.codes if discounts else None) or coupons or [])
    return list(dict.fromkeys(c.strip() for c in codes if c.strip())) or None


def _dump(model: Any) -> Any:
    return None if model is None else model.model_dump(mode="json", exclude_none=True)


class CheckoutService:
    def __init__(
        self, *, profile: MerchantProfile, provider: PaymentProvider, tax: TaxProvider,
        session_ttl: timedelta, public_base_url: str, clock: Callable[[], datetime] = utc_now,
        forward_to_shopify: bool = False, ledger_policy: LedgerPolicy | None = None,
    ) -> None:
        self.forward_to_shopify = forward_to_shopify
        self.ledger_policy = ledger_policy or LedgerPolicy()
        self.profile = profile
        self.provider = provider
        self.tax = tax
        self.session_ttl = session_ttl
        self.public_base_url = public_base_url
        self.clock = clock

    # ---------------------------------------------------------------- reads & helpers

    def effective_status(self, s: CheckoutSession) -> str:
        if s.status not in TERMINAL and s.status != "in_progress" and self.clock() >= s.expires_at:
            return "expired"
        return s.status

    async def _load(
        self, db: AsyncSession, agent_id: str, session_id: str, *, for_update: bool
    ) -> CheckoutSession:
        s = await repository.get_session(db, session_id, for_update=for_update)
        # Another agent's session is indistinguishable from a missing one.
        if s is None or s.agent_id != agent_id:
            raise CheckoutSessionNotFound(session_id)
        return s

    def _ensure_open(self, s: CheckoutSession, action: str) -> None:
        status = self.effective_status(s)
        if status in TERMINAL:
            raise CheckoutSessionClosed(s.id, status, action)
        if status == "in_progress":
            raise CheckoutInProgress(s.id)

    def _validate_items(self, items: list[Item], variants: dict[str, VariantView], currency: str,
                        path: str = "$.line_items") -> None:
        for index, item in enumerate(items):
            v = variants.get(item.id)
            if v is None:
                raise InvalidItem(f"Unknown item id {item.id!r}.", param=f"{path}[{index}].id")
            if v.currency != currency:
                raise InvalidItem(
                    f"Item {item.id!r} is sold in {v.currency.upper()}, not {currency.upper()}.",
                    param=f"{path}[{index}].id")

    async def _reprice(self, db: AsyncSession, s: CheckoutSession,
                       variants: dict[str, VariantView] | None = None) -> None:
        """Recompute the authoritative snapshot from the live catalog."""
        requested = [RequestedLine(r["id"], r["quantity"], r.get("unit_amount"))
                     for r in s.requested_items]
        if variants is None:
            variants = await catalog_repository.variants_by_ids(db, (r.item_id for r in requested))
        messages = Messages()
        catalog: dict[str, CatalogItem] = {}
        kept: list[RequestedLine] = []
        for index, req in enumerate(requested):
            v = variants.get(req.item_id)
            if v is None or v.currency != s.currency:
                messages.error("invalid", f"Item {req.item_id!r} is no longer sold.",
                               f"$.line_items[{index}]", "recoverable")
                continue
            catalog[v.id] = to_catalog_item(v)
            kept.append(req)
        lines = price_lines(kept, catalog, self.profile, messages)
        applied, unknown = apply_discount_codes(
            [(ln.line_id, ln.base_amount) for ln in lines], s.discount_codes or [],
            self.profile.discount_codes)
        by_line = {ln.line_id: ln for ln in lines}
        for discount in applied:
            for line_id, part in discount.allocations:
                by_line[line_id].discount += part
        address = (s.fulfillment_details or {}).get("address")
        now = self.clock()
        options = quote_fulfillment(lines, address, self.profile, now, messages)
        chosen = select_fulfillment(options, s.selected_fulfillment_options, lines, messages)
        tax = await self.tax.calculate(TaxRequest(
            s.currency, address, tuple((ln.line_id, ln.subtotal) for ln in lines),
            sum(o.amount for o in chosen)))
        for index, code in enumerate(s.discount_codes or []):
            if code not in unknown:
                continue
            messages.warning("discount_code_invalid",
                             f"The code {code!r} is not valid here.",
                             f"$.discounts.codes[{index}]")
        snap = assemble(lines, options, chosen, tax, messages)
        s.line_items = snap.line_items
        s.fulfillment_options = snap.fulfillment_options
        s.selected_fulfillment_options = snap.selected_fulfillment_options or None
        s.totals = snap.totals
        s.messages = snap.messages
        s.total_amount = snap.total_amount
        s.status = snap.status
        s.authentication_metadata = None
        s.updated_at = now

    def _capabilities(self, s: CheckoutSession) -> Json:
        offered = (s.agent_capabilities or {}).get("interventions", {}).get("supported", [])
        return {
            "payment": {"handlers": self.provider.payment_handlers()},
            "interventions": {
                "supported": [i for i in SUPPORTED_INTERVENTIONS if i in offered],
                "required": [],
                "enforcement": "conditional",
            },
        }

    def _links(self) -> list[Json]:
        p = self.profile
        return [{"type": "terms_of_use", "url": p.terms_url},
                {"type": "privacy_policy", "url": p.privacy_url},
                {"type": "return_policy", "url": p.return_policy_url}]

    def session_json(self, s: CheckoutSession, order: Order | None = None) -> Json:
        status = self.effective_status(s)
        out: Json = {
            "id": s.id,
            "protocol": {"version": API_VERSION},
            "capabilities": self._capabilities(s),
            "status": status,
            "currency": s.currency,
            "line_items": s.line_items,
            "totals": s.totals,
            "fulfillment_options": s.fulfillment_options,
            "messages": s.messages,
            "links": self._links(),
            "created_at": rfc3339(s.created_at),
            "updated_at": rfc3339(s.updated_at),
            "expires_at": rfc3339(s.expires_at),
        }
        if s.selected_fulfillment_options:
            out["selected_fulfillment_options"] = s.selected_fulfillment_options
        if s.buyer:
            out["buyer"] = s.buyer
        if s.fulfillment_details:
            out["fulfillment_details"] = s.fulfillment_details
        if s.locale:
            out["locale"] = s.locale
        if s.timezone:
            out["timezone"] = s.timezone
        if s.session_metadata:
            out["metadata"] = s.session_metadata
        if status == "authentication_required" and s.authentication_metadata:
            out["authentication_metadata"] = s.authentication_metadata
        if order is not None:
            out["order"] = order_service.order_json(order, self.profile.support_email)
        return out

    async def _session_json_with_order(self, db: AsyncSession, s: CheckoutSession) -> Json:
        order = await order_repository.get_order(db, s.order_id) if s.status == "completed" \
            and s.order_id else None
        return self.session_json(s, order)

    # ---------------------------------------------------------------- operations

    async def create(
        self, db: AsyncSession, agent_id: str, req: CheckoutSessionCreateRequest
    ) -> Json:
        claim = touches.parse_claim(req.affiliate_attribution, "first")  # 400 on PII
        currency = req.currency.lower()
        if currency not in self.profile.currencies:
            raise UnsupportedCurrency(
                f"Currency {currency.upper()} is not supported; use one of "
                f"{', '.join(c.upper() for c in self.profile.currencies)}.", param="$.currency")
        variants = await catalog_repository.variants_by_ids(db, (i.id for i in req.line_items))
        self._validate_items(req.line_items, variants, currency)
        now = self.clock()
        requested = aggregate_requested([(i.id, i.quantity, i.unit_amount) for i in req.line_items])
        s = CheckoutSession(
            id=new_id("cs"), agent_id=agent_id, status="not_ready_for_payment",
            currency=currency,
            requested_items=[{"id": r.item_id, "quantity": r.quantity,
                              "unit_amount": r.agent_unit_amount} for r in requested],
            buyer=_dump(req.buyer), fulfillment_details=_dump(req.fulfillment_details),
            selected_fulfillment_options=[_dump(o) for o in req.selected_fulfillment_options]
            if req.selected_fulfillment_options else None,
            agent_capabilities=_dump(req.capabilities) or {},
            locale=req.locale, timezone=req.timezone, order_notes=req.order_notes,
            session_metadata=req.metadata, created_at=now, updated_at=now,
            discount_codes=_codes(req.discounts, req.coupons),
            expires_at=now + self.session_ttl,
        )
        await self._reprice(db, s, variants)
        await repository.insert_session(db, s)
        if claim is not None:
            await touches.record_claim(db, s.id, claim, now)
        await touches.record_web_touch(db, s.id, req.metadata, now)
        return self.session_json(s)

    async def get(self, db: AsyncSession, agent_id: str, session_id: str) -> Json:
        s = await self._load(db, agent_id, session_id, for_update=False)
        return await self._session_json_with_order(db, s)

    async def update(
        self, db: AsyncSession, agent_id: str, session_id: str, req: CheckoutSessionUpdateRequest
    ) -> Json:
        s = await self._load(db, agent_id, session_id, for_update=True)
        self._ensure_open(s, "updated")
        present = req.model_fields_set
        if "line_items" in present:
            if req.line_items is None:
                raise InvalidItem("line_items cannot be cleared; cancel the session instead.",
                                  code="invalid_line_items", param="$.line_items")
            variants = await catalog_repository.variants_by_ids(db, (i.id for i in req.line_items))
            self._validate_items(req.line_items, variants, s.currency)
            requested = aggregate_requested(
                [(i.id, i.quantity, i.unit_amount) for i in req.line_items])
            s.requested_items = [{"id": r.item_id, "quantity": r.quantity,
                                  "unit_amount": r.agent_unit_amount} for r in requested]
        if "buyer" in present:
            s.buyer = _dump(req.buyer)
        if "fulfillment_details" in present:
            s.fulfillment_details = _dump(req.fulfillment_details)
        if "selected_fulfillment_options" in present:
            s.selected_fulfillment_options = (
                [_dump(o) for o in req.selected_fulfillment_options]
                if req.selected_fulfillment_options else None)
        if "order_notes" in present:
            s.order_notes = req.order_notes
        if "discounts" in present or "coupons" in present:
            s.discount_codes = _codes(req.discounts, req.coupons)
        s.version += 1
        await self._reprice(db, s)
        await db.flush()
        return self.session_json(s)

    async def cancel(
        self, db: AsyncSession, agent_id: str, session_id: str, req: CancelSessionRequest | None
    ) -> Json:
        s = await self._load(db, agent_id, session_id, for_update=True)
        self._ensure_open(s, "canceled")
        s.status = "canceled"
        s.cancel_reason = (req.intent_trace if req else None) or None
        s.updated_at = self.clock()
        s.messages = []
        s.version += 1
        await db.flush()
        return self.session_json(s)

    # ---------------------------------------------------------------- complete

    async def complete(
        self, sessionmaker: async_sessionmaker[AsyncSession], db: AsyncSession, agent_id: str,
        session_id: str, req: CheckoutSessionCompleteRequest,
    ) -> Json:
        """Charge once and create the order. ``db`` must not have begun yet: phase A runs
        (and commits) on its own connection first."""
        async with sessionmaker() as phase_a, phase_a.begin():
            outcome = await self._prepare_payment(phase_a, agent_id, session_id, req)
            if isinstance(outcome, dict):  # nothing to charge: the session says why
                return outcome
            charge, attempt_id, prior_status = outcome
        try:
            result = await self.provider.charge(charge)
        except PaymentUnavailable as exc:
            async with sessionmaker() as undo, undo.begin():
                await self._abandon_attempt(undo, session_id, attempt_id, prior_status)
            raise ServiceUnavailable(
                "The payment provider is unavailable; no charge was made. Retry the request.",
                code="payment_provider_unavailable", headers={"Retry-After": "2"},
            ) from exc
        return await self._record_outcome(db, agent_id, session_id, attempt_id, result)

    async def _prepare_payment(
        self, db: AsyncSession, agent_id: str, session_id: str,
        req: CheckoutSessionCompleteRequest,
    ) -> Json | tuple[ChargeRequest, str, str]:
        s = await self._load(db, agent_id, session_id, for_update=True)
        status = self.effective_status(s)
        if status in TERMINAL:
            raise CheckoutSessionClosed(s.id, status, "completed")
        if status == "in_progress":
            attempt = await repository.latest_attempt(db, s.id)
            if attempt is None or self.clock() - attempt.updated_at < ATTEMPT_RECOVERY_AFTER:
                raise CheckoutInProgress(s.id)
            return await self._resume_attempt(db, s, attempt, req)
        if status == "authentication_required" and req.authentication_result is None:
            raise RequiresAuthentication()
        token = self._token(req)
        claim = touches.parse_claim(req.affiliate_attribution, "last")
        if claim is not None:  # the first valid last-touch claim wins; never blocks
            await touches.record_claim(db, s.id, claim, self.clock())
        if req.buyer is not None:
            s.buyer = _dump(req.buyer)
        if req.order_notes is not None:
            s.order_notes = req.order_notes
        quoted_total = s.total_amount
        await self._reprice(db, s)
        if s.status != "ready_for_payment":
            await db.flush()
            return self.session_json(s)
        if s.total_amount != quoted_total:
            # Never charge an amount the buyer was not shown.
            s.messages = [*s.messages, {
                "type": "warning", "code": "price_change", "content_type": "plain",
                "content": "The total changed since it was last shown; review and confirm.",
                "param": "$.totals", "resolution": "requires_buyer_review"}]
            await db.flush()
            return self.session_json(s)
        quantities, short = await self._reserve_all(db, s)
        if short:  # lost the race for the last units: show it, charge nothing
            await self._reprice(db, s)
            await db.flush()
            return self.session_json(s)
        authenticated = req.authentication_result is not None
        existing_reference = None  # 3-D Secure: confirm the payment that asked for it
        if status == "authentication_required":
            previous = await repository.latest_attempt(db, s.id)
            if previous is not None and previous.status == "requires_action":
                existing_reference = previous.provider_reference
        s.order_id = s.order_id or new_id("ord")
        attempt = PaymentAttempt(
            id=new_id("pa"), checkout_session_id=s.id, provider=self.provider.name,
            provider_idempotency_key=charge_idempotency_key(
                s.id, s.total_amount, s.currency, token, authenticated=authenticated),
            amount=s.total_amount, currency=s.currency, status="pending",
            created_at=self.clock(), updated_at=self.clock(),
        )
        db.add(attempt)
        prior_status = "authentication_required" if status == "authentication_required" \
            else "ready_for_payment"
        s.status = "in_progress"
        s.reserved_stock = quantities
        s.payment_handler_id = req.payment_data.handler_id
        await db.flush()
        three_ds = None
        if req.authentication_result is not None:
            details = req.authentication_result.outcome_details
            three_ds = ThreeDSResult(
                outcome=req.authentication_result.outcome,
                cryptogram=details.three_ds_cryptogram if details else None,
                eci=details.electronic_commerce_indicator if details else None,
                transaction_id=details.transaction_id if details else None,
                version=details.version if details else None)
        charge = ChargeRequest(
            amount=s.total_amount, currency=s.currency, token=token,
            idempotency_key=attempt.provider_idempotency_key,
            metadata=self._payment_metadata(s), three_ds=three_ds,
            existing_reference=existing_reference)
        return charge, attempt.id, prior_status

    async def _resume_attempt(
        self, db: AsyncSession, s: CheckoutSession, attempt: PaymentAttempt,
        req: CheckoutSessionCompleteRequest,
    ) -> tuple[ChargeRequest, str, str]:
        """An earlier process died mid-payment: ask the PSP again with the same key."""
        token = self._token(req)
        attempt.updated_at = self.clock()
        await db.flush()
        charge = ChargeRequest(
            amount=attempt.amount, currency=attempt.currency, token=token,
            idempotency_key=attempt.provider_idempotency_key,
            metadata=self._payment_metadata(s))
        return charge, attempt.id, "ready_for_payment"

    @staticmethod
    def _payment_metadata(s: CheckoutSession) -> dict[str, str]:
        """Deterministic (a retry must send identical parameters under the same key)."""
        metadata = {"checkout_session_id": s.id, "order_id": s.order_id or ""}
        video_id = (s.session_metadata or {}).get("video_id")
        if isinstance(video_id, str) and video_id:
            metadata["video_id"] = video_id[:200]
        return metadata

    @staticmethod
    async def _reserve_all(db: AsyncSession, s: CheckoutSession
                           ) -> tuple[dict[str, int], list[str]]:
        """Take stock for every line, or none (savepoint): returns (quantities, short)."""
        quantities: dict[str, int] = {}
        for r in s.requested_items:
            quantities[r["id"]] = quantities.get(r["id"], 0) + r["quantity"]
        async with db.begin_nested() as savepoint:
            short = await repository.reserve_stock(db, quantities)
            if short:
                await savepoint.rollback()
        return quantities, short

    def _token(self, req: CheckoutSessionCompleteRequest) -> str:
        pd = req.payment_data
        if pd.instrument is None:
            raise InvalidPaymentData(
                "payment_data.instrument is required; purchase orders are not accepted.",
                param="$.payment_data.instrument")
        handler_ids = {h["id"] for h in self.provider.payment_handlers()}
        if pd.handler_id is not None and pd.handler_id not in handler_ids:
            raise InvalidPaymentData(f"Unknown payment handler {pd.handler_id!r}.",
                                     param="$.payment_data.handler_id")
        return pd.instrument.credential.token

    async def _abandon_attempt(
        self, db: AsyncSession, session_id: str, attempt_id: str, prior_status: str
    ) -> None:
        s = await repository.get_session(db, session_id, for_update=True)
        attempt = await db.get(PaymentAttempt, attempt_id)
        if s is None or attempt is None or s.status != "in_progress":
            return
        attempt.status = "unknown"  # the provider may still have charged: see reconcile_payment
        attempt.updated_at = self.clock()
        await repository.release_stock(db, s.reserved_stock or {})
        s.reserved_stock = None
        s.status = prior_status
        await db.flush()

    async def _record_outcome(
        self, db: AsyncSession, agent_id: str, session_id: str, attempt_id: str,
        result: ChargeResult,
    ) -> Json:
        locked = await self._load(db, agent_id, session_id, for_update=True)  # ownership
        return await self.record_outcome(db, session_id, attempt_id, result,
                                         actor=f"agent:{agent_id}", locked=locked)

    async def record_outcome(
        self, db: AsyncSession, session_id: str, attempt_id: str, result: ChargeResult, *,
        actor: str, locked: CheckoutSession | None = None,
    ) -> Json:
        """Apply the provider's answer to a pending attempt. Forward-only and idempotent:
        the complete request and the provider's webhook may both report the same outcome.
        ``locked``: the session, already loaded FOR UPDATE in this transaction."""
        s = locked or await repository.get_session(db, session_id, for_update=True)
        attempt = await db.get(PaymentAttempt, attempt_id)
        assert s is not None
        assert attempt is not None
        now = self.clock()
        if s.status != "in_progress" or attempt.status not in ("pending", "processing"):
            return await self._session_json_with_order(db, s)
        attempt.provider_reference = result.reference or attempt.provider_reference
        attempt.updated_at = now
        s.updated_at = now
        if result.fee_amount is not None:
            attempt.fee_amount = result.fee_amount
            attempt.net_amount = attempt.amount - result.fee_amount
        if result.status == "processing":  # the provider finishes later (webhook)
            attempt.status = "processing"
            await db.flush()
            return self.session_json(s)
        if result.status in ("succeeded", "requires_capture"):
            attempt.status = result.status
            order = await order_service.create_from_session(
                db, s, provider=self.provider.name, payment_reference=attempt.provider_reference,
                actor=actor, now=now, public_base_url=self.public_base_url,
                order_id=s.order_id,
                payment_status="authorized" if result.status == "requires_capture" else "paid",
                forward_to_shopify=self.forward_to_shopify)
            s.order_id = order.id
            s.status = "completed"
            s.reserved_stock = None
            s.messages = []
            await db.flush()
            await ledger.record_sale(db, order, attempt.fee_amount, self.ledger_policy)
            return self.session_json(s, order)
        await repository.release_stock(db, s.reserved_stock or {})
        s.reserved_stock = None
        if result.status == "requires_action":
            attempt.status = "requires_action"
            s.status = "authentication_required"
            s.authentication_metadata = result.authentication_metadata
            await db.flush()
            return self.session_json(s)
        attempt.status = "declined"
        attempt.failure_code = result.decline_code
        s.status = "ready_for_payment"
        s.authentication_metadata = None
        s.messages = [m for m in s.messages if m.get("code") != "payment_declined"] + [{
            "type": "error", "code": "payment_declined", "content_type": "plain",
            "content": (result.message or "The payment was declined.")
            + " Please try a different payment method.",
            "param": "$.payment_data", "resolution": "requires_buyer_input"}]
        await db.flush()
        return self.session_json(s)

    # ---------------------------------------------------------------- provider events

    async def reconcile_payment(
        self, db: AsyncSession, *, reference: str, outcome: str, amount: int | None,
        session_id: str | None, actor: str,
    ) -> str:
        """Apply a payment outcome the provider reports asynchronously (webhook).

        Returns what happened (for logs and tests). Forward-only: a payment already
        recorded is left alone; a payment whose request timed out (attempt ``unknown``) is
        turned into the order if the session can still take it, otherwise refunded, so a
        buyer is never charged twice for one session.
        """
        attempt = await repository.attempt_by_reference(db, reference)
        if attempt is None and session_id:
            attempt = await repository.unknown_attempt(db, session_id, amount)
        if attempt is None:
            from webhooks.inbox import RetryLater  # the attempt may not be committed yet

            raise RetryLater(f"no payment attempt for {reference}")
        attempt.provider_reference = attempt.provider_reference or reference
        if outcome == "failed":
            if attempt.status in ("pending", "processing"):
                await self.record_outcome(db, attempt.checkout_session_id, attempt.id,
                                          ChargeResult("declined", reference=reference,
                                                       decline_code="payment_failed"),
                                          actor=actor)
                return "declined"
            if attempt.status == "unknown":
                attempt.status = "declined"
            return "ignored"
        result = ChargeResult("requires_capture" if outcome == "authorized" else "succeeded",
                              reference=reference)
        if attempt.status in ("pending", "processing"):
            await self.record_outcome(db, attempt.checkout_session_id, attempt.id, result,
                                      actor=actor)
            return "completed"
        if attempt.status != "unknown":
            return "ignored"
        s = await repository.get_session(db, attempt.checkout_session_id, for_update=True)
        assert s is not None
        if s.status in ("ready_for_payment", "authentication_required") and \
                s.total_amount == attempt.amount:
            quantities, short = await self._reserve_all(db, s)
            if not short:
                attempt.status = "pending"
                s.status = "in_progress"
                s.reserved_stock = quantities
                await db.flush()
                await self.record_outcome(db, s.id, attempt.id, result, actor=actor)
                return "recovered"
        # The session moved on (completed with another payment, canceled, sold out):
        # give the money back rather than keep an orphan charge.
        try:
            await self.provider.refund(RefundRequest(
                payment_reference=reference, amount=attempt.amount, currency=attempt.currency,
                idempotency_key=f"reelcart:orphan:{reference}", reason="duplicate",
                metadata={"checkout_session_id": s.id}))
        except RefundRejected:
            pass
        attempt.status = "refunded_orphan"
        attempt.updated_at = self.clock()
        return "refunded_orphan"

    async def recover_stale_attempts(
        self, sessionmaker: async_sessionmaker[AsyncSession], *,
        older_than: timedelta = timedelta(minutes=2), give_up_after: timedelta = timedelta(
            minutes=30),
    ) -> int:
        """Worker sweep: ask the provider what became of payments we lost track of (the
        process died between the provider's answer and our commit, or the answer timed
        out). Found → applied like a webhook; never found after ``give_up_after`` → the
        attempt is closed and held stock is released."""
        now = self.clock()
        async with sessionmaker() as db:
            stale = [(a.id, a.checkout_session_id, a.provider_idempotency_key, a.amount,
                      a.created_at)
                     for a in await repository.stale_attempts(db, now - older_than)]
        handled = 0
        for attempt_id, session_id, key, amount, created_at in stale:
            try:
                found = await self.provider.find_payment(
                    idempotency_key=key, checkout_session_id=session_id, amount=amount)
            except PaymentUnavailable:
                continue  # try again on the next sweep
            async with sessionmaker() as db, db.begin():
                attempt = await db.get(PaymentAttempt, attempt_id, with_for_update=True)
                if attempt is None or attempt.status not in ("pending", "processing",
                                                             "unknown"):
                    continue
                if found is not None and found.reference and found.status in (
                        "succeeded", "requires_capture"):
                    attempt.provider_reference = found.reference
                    await db.flush()
                    await self.reconcile_payment(
                        db, reference=found.reference,
                        outcome="authorized" if found.status == "requires_capture"
                        else "succeeded", amount=amount, session_id=session_id,
                        actor="recovery")
                    handled += 1
                elif found is not None and found.status == "declined":
                    if attempt.status == "unknown":
                        attempt.status = "declined"
                    else:
                        await self.record_outcome(db, session_id, attempt_id, found,
                                                  actor="recovery")
                    handled += 1
                elif found is None and now - created_at > give_up_after:
                    if attempt.status != "unknown":
                        await self._abandon_attempt(db, session_id, attempt_id,
                                                    "ready_for_payment")
                    attempt.status = "abandoned"
                    handled += 1
        return handled
