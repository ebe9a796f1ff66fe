"""Shared state and helpers of the checkout core: loading with ownership, the open-state
check, re-pricing from the live catalog, and the protocol-neutral ``SessionView``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from attribution.ledger import LedgerPolicy
from checkout import repository
from checkout.domain import (
    MAX_LINE_QUANTITY,
    TERMINAL,
    Actor,
    LineRequest,
    Link,
    SessionStatus,
    SessionView,
)
from checkout.errors import (
    CheckoutInProgress,
    CheckoutSessionClosed,
    CheckoutSessionNotFound,
    InvalidItem,
    QuantityTooLarge,
)
from checkout.pricing import (
    CatalogItem,
    Messages,
    RequestedLine,
    TaxRequest,
    apply_discount_codes,
    assemble,
    price_lines,
    quote_fulfillment,
    select_fulfillment,
)
from checkout.profile import MerchantProfile
from checkout.tax import TaxProvider
from feeds import repository as catalog_repository
from feeds.repository import VariantView
from models import CheckoutSession, Order
from models.base import utc_now
from orders import repository as order_repository
from orders.capture import CapturePolicy
from orders.documents import PartialCapture, partial_capture
from payments.provider import PaymentProvider

SUPPORTED_INTERVENTIONS = ("3ds",)
# A session as the core reads it: being created, loaded as a plain row, or mapped (the
# recovery paths, which lock it through the ORM).
Stored = CheckoutSession | repository.NewSession | repository.SessionRow


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


class CheckoutCore:
    def __init__(
        self, *, profile: MerchantProfile, provider: PaymentProvider, tax: TaxProvider,
        session_ttl: timedelta, public_base_url: str, clock: Callable[[], datetime] = utc_now,
        forward_to_shopify: bool = False, ledger_policy: LedgerPolicy | None = None,
        capture_policy: CapturePolicy | None = None,
    ) -> None:
        self.capture_policy = capture_policy or CapturePolicy()
        self.forward_to_shopify = forward_to_shopify
        self.ledger_policy = ledger_policy or LedgerPolicy()
        self.profile = profile
        self.provider = provider
        self.tax = tax
        self.session_ttl = session_ttl
        self.public_base_url = public_base_url
        self.clock = clock
        p = profile
        self._links = (Link("terms_of_use", p.terms_url), Link("privacy_policy", p.privacy_url),
                       Link("return_policy", p.return_policy_url))

    # ---------------------------------------------------------------- reads & helpers

    def effective_status(self, s: Stored) -> str:
        if s.status not in TERMINAL and s.status != SessionStatus.in_progress \
                and self.clock() >= s.expires_at:
            return SessionStatus.expired
        return s.status

    async def _load(
        self, db: AsyncSession, actor: Actor, session_id: str, *, for_update: bool
    ) -> repository.SessionRow:
        s = await repository.load_session(db, session_id, for_update=for_update)
        # Another agent's session is indistinguishable from a missing one.
        if s is None or s.agent_id != actor.agent_id:
            raise CheckoutSessionNotFound(session_id)
        return s

    def _ensure_open(self, s: repository.SessionRow, action: str) -> None:
        status = self.effective_status(s)
        if status in TERMINAL:
            raise CheckoutSessionClosed(s.id, status, action)
        if status == SessionStatus.in_progress:
            raise CheckoutInProgress(s.id)

    @staticmethod
    def _validate_lines(lines: list[LineRequest], variants: dict[str, VariantView],
                        currency: str) -> None:
        merged: dict[str, int] = {}
        for index, line in enumerate(lines):
            param = line.param or f"$.line_items[{index}].id"
            v = variants.get(line.item_id)
            if v is None:
                raise InvalidItem(f"Unknown item id {line.item_id!r}.", param=param)
            if v.currency != currency:
                raise InvalidItem(
                    f"Item {line.item_id!r} is sold in {v.currency.upper()}, not "
                    f"{currency.upper()}.", param=param)
            # Lines repeating an item id become one line: its total has the same cap as a
            # single line's quantity, reported at the line that takes it over.
            total = merged[line.item_id] = merged.get(line.item_id, 0) + line.quantity
            if total > MAX_LINE_QUANTITY:
                raise QuantityTooLarge(
                    f"The lines for item {line.item_id!r} add up to a quantity of "
                    f"{total:,}; at most {MAX_LINE_QUANTITY:,} of one item per checkout "
                    f"(lines with the same id are merged).",
                    param=line.quantity_param or f"$.line_items[{index}].quantity")

    async def _reprice(self, db: AsyncSession, s: Stored,
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
            if code not in unknown:  # a configured code (profile.discount_codes) applied
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

    def view(self, s: Stored, order: Order | None = None,
             order_capture: PartialCapture | None = None) -> SessionView:
        offered = (s.agent_capabilities or {}).get("interventions", {}).get("supported", [])
        return SessionView(
            id=s.id, status=self.effective_status(s), currency=s.currency,
            line_items=s.line_items, totals=s.totals,
            fulfillment_options=s.fulfillment_options,
            selected_fulfillment_options=s.selected_fulfillment_options,
            messages=s.messages, buyer=s.buyer, fulfillment_details=s.fulfillment_details,
            locale=s.locale, timezone=s.timezone, metadata=s.session_metadata,
            order_notes=s.order_notes, authentication_metadata=s.authentication_metadata,
            created_at=s.created_at, updated_at=s.updated_at, expires_at=s.expires_at,
            total_amount=s.total_amount,
            interventions=tuple(i for i in SUPPORTED_INTERVENTIONS if i in offered),
            payment_handlers=self.provider.payment_handlers(),
            payment_provider=self.provider.name, links=self._links,
            support_email=self.profile.support_email, order=order,
            order_capture=order_capture)

    async def _view_with_order(self, db: AsyncSession,
                               s: CheckoutSession | repository.SessionRow) -> SessionView:
        order = await order_repository.get_order(db, s.order_id) \
            if s.status == SessionStatus.completed and s.order_id else None
        capture = await partial_capture(db, order) if order is not None else None
        return self.view(s, order, capture)
