"""Pure pricing: requested items + catalog + address + merchant profile → an ACP snapshot.

No I/O here. The service loads the catalog and calls a tax provider between the steps:

    lines = price_lines(...)           # line items, stock/price messages
    options = quote_fulfillment(...)   # shipping / digital / pickup options
    chosen = select_fulfillment(...)   # honour the agent's choice or pick the cheapest
    tax = <TaxProvider>.calculate(TaxRequest(...))
    snapshot = assemble(...)           # totals, status
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from checkout.profile import DiscountCode, MerchantProfile, ShippingRate
from models.base import rfc3339
from models.money import apply_rate_bps, format_minor

Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class CatalogItem:
    id: str
    product_id: str
    title: str
    unit_amount: int
    currency: str
    stock: int | None = None
    availability: str = "in_stock"
    requires_shipping: bool = True
    purchasable: bool = True
    max_quantity_per_order: int | None = None
    description: str | None = None
    image_url: str | None = None
    sku: str | None = None
    variant_options: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class RequestedLine:
    item_id: str
    quantity: int
    agent_unit_amount: int | None = None


@dataclass(slots=True)
class PricedLine:
    line_id: str
    item: CatalogItem
    quantity: int
    base_amount: int
    discount: int = 0
    tax: int = 0
    blocking: bool = False  # out of stock / not purchasable: excluded from payment

    @property
    def subtotal(self) -> int:
        return self.base_amount - self.discount


@dataclass(frozen=True, slots=True)
class Option:
    id: str
    type: str  # shipping | digital | pickup
    title: str
    amount: int
    item_ids: tuple[str, ...]
    carrier: str | None = None
    description: str | None = None
    earliest: datetime | None = None
    latest: datetime | None = None
    location: Json | None = None


@dataclass(frozen=True, slots=True)
class TaxRequest:
    currency: str
    address: Json | None
    line_subtotals: tuple[tuple[str, int], ...]
    fulfillment_amount: int


@dataclass(frozen=True, slots=True)
class TaxResult:
    per_line: dict[str, int]
    fulfillment_tax: int
    breakdown: tuple[tuple[str, int, int], ...] = ()  # (jurisdiction, rate_bps, amount)

    @property
    def total(self) -> int:
        return sum(self.per_line.values()) + self.fulfillment_tax


@dataclass(slots=True)
class Snapshot:
    line_items: list[Json]
    fulfillment_options: list[Json]
    selected_fulfillment_options: list[Json]
    totals: list[Json]
    messages: list[Json]
    total_amount: int
    status: str


@dataclass(slots=True)
class Messages:
    items: list[Json] = field(default_factory=list)

    def error(self, code: str, content: str, param: str | None, resolution: str) -> None:
        msg: Json = {"type": "error", "code": code, "content_type": "plain", "content": content,
                     "resolution": resolution, "severity": "high"}
        if param:
            msg["param"] = param
        self.items.append(msg)

    def warning(self, code: str, content: str, param: str | None = None) -> None:
        msg: Json = {"type": "warning", "code": code, "content_type": "plain", "content": content,
                     "resolution": "requires_buyer_review", "severity": "low"}
        if param:
            msg["param"] = param
        self.items.append(msg)

    @property
    def has_errors(self) -> bool:
        return any(m["type"] == "error" for m in self.items)


def line_id_for(item_id: str) -> str:
    """Stable across updates: the same item always has the same line id in a session."""
    return "li_" + hashlib.sha256(item_id.encode()).hexdigest()[:16]


def aggregate_requested(raw: list[tuple[str, int, int | None]]) -> list[RequestedLine]:
    """Merge repeated item ids into one line (first position wins), summing quantities."""
    merged: dict[str, RequestedLine] = {}
    for item_id, quantity, unit_amount in raw:
        prev = merged.get(item_id)
        if prev is None:
            merged[item_id] = RequestedLine(item_id, quantity, unit_amount)
        else:
            merged[item_id] = RequestedLine(
                item_id, prev.quantity + quantity, prev.agent_unit_amount or unit_amount
            )
    return list(merged.values())


def price_lines(
    requested: list[RequestedLine],
    catalog: dict[str, CatalogItem],
    profile: MerchantProfile,
    messages: Messages,
) -> list[PricedLine]:
    """Price each requested line from the catalog; flag stock and price problems."""
    lines: list[PricedLine] = []
    for index, req in enumerate(requested):
        item = catalog[req.item_id]
        line = PricedLine(line_id_for(item.id), item, req.quantity, item.unit_amount * req.quantity)
        param = f"$.line_items[{index}]"
        limit = item.max_quantity_per_order or profile.max_quantity_per_line
        if not item.purchasable:
            line.blocking = True
            messages.error("invalid", f"{item.title} is not available for purchase.", param,
                           "recoverable")
        elif item.stock is not None and item.stock <= 0 or item.availability == "out_of_stock":
            line.blocking = True
            messages.error("out_of_stock", f"{item.title} is out of stock.", param, "recoverable")
        elif item.stock is not None and req.quantity > item.stock:
            line.blocking = True
            messages.error("quantity_exceeded",
                           f"Only {item.stock} of {item.title} left; reduce the quantity.",
                           f"{param}.quantity", "recoverable")
        elif req.quantity > limit:
            line.blocking = True
            messages.error("quantity_exceeded",
                           f"At most {limit} of {item.title} per order.", f"{param}.quantity",
                           "recoverable")
        elif item.stock is not None and item.stock - req.quantity < profile.low_stock_threshold:
            messages.warning("low_stock", f"Only {item.stock} of {item.title} left.", param)
        if req.agent_unit_amount is not None and req.agent_unit_amount != item.unit_amount:
            messages.warning(
                "price_change",
                f"The price of {item.title} is now "
                f"{format_minor(item.unit_amount, item.currency)} "
                f"(was {format_minor(req.agent_unit_amount, item.currency)}).",
                f"{param}.unit_amount",
            )
        lines.append(line)
    return lines


@dataclass(frozen=True, slots=True)
class AppliedDiscount:
    code: str
    title: str
    amount: int
    percent: int | None  # None for a fixed amount
    allocations: tuple[tuple[str, int], ...]  # (line id, amount): sums to ``amount``


def _allocate(amount: int, weights: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """Split ``amount`` over lines pro rata to ``weights`` (largest remainder: exact sum)."""
    total = sum(w for _, w in weights)
    if amount <= 0 or total <= 0:
        return [(line_id, 0) for line_id, _ in weights]
    shares = [(line_id, amount * w // total, amount * w % total) for line_id, w in weights]
    left = amount - sum(s for _, s, _ in shares)
    order = sorted(range(len(shares)), key=lambda i: -shares[i][2])
    extra = {i: 1 for i in order[:left]}
    return [(line_id, s + extra.get(i, 0)) for i, (line_id, s, _) in enumerate(shares)]


def apply_discount_codes(
    bases: list[tuple[str, int]], codes: list[str], catalog: list[DiscountCode]
) -> tuple[list[AppliedDiscount], list[str]]:
    """Known codes (case-insensitive, each once) applied in order to the items' running
    subtotal: ``10OFF`` then ``WELCOME20`` on 3500 → 3150 → 2520. Returns (applied,
    unknown codes). Pure; the line discounts are the sum of each code's allocations."""
    by_code = {d.code.upper(): d for d in catalog}
    remaining = {line_id: base for line_id, base in bases}
    applied: list[AppliedDiscount] = []
    unknown: list[str] = []
    seen: set[str] = set()
    for raw in codes:
        d = by_code.get(raw.upper())
        if d is None:
            unknown.append(raw)
            continue
        if d.code.upper() in seen:
            continue
        seen.add(d.code.upper())
        subtotal = sum(remaining.values())
        if d.type == "percentage":
            amount = subtotal - subtotal * (100 - min(d.value, 100)) // 100
        else:
            amount = min(d.value, subtotal)
        allocations = _allocate(amount, list(remaining.items()))
        for line_id, part in allocations:
            remaining[line_id] -= part
        applied.append(AppliedDiscount(
            d.code, d.title or d.code, amount, d.value if d.type == "percentage" else None,
            tuple(allocations)))
    return applied, unknown


def _rate_applies(rate: ShippingRate, country: str) -> bool:
    if country in rate.excluded_countries:
        return False
    return "*" in rate.countries or country in rate.countries


def quote_fulfillment(
    lines: list[PricedLine], address: Json | None, profile: MerchantProfile, now: datetime,
    messages: Messages,
) -> list[Option]:
    """Options the buyer can choose from. Shipping needs an address; digital needs nothing."""
    shipped = [ln for ln in lines if ln.item.requires_shipping]
    digital = [ln for ln in lines if not ln.item.requires_shipping]
    options: list[Option] = []
    if digital:
        options.append(Option("digital_delivery", "digital", "Digital delivery", 0,
                              tuple(ln.item.id for ln in digital),
                              description="Delivered by email right after purchase"))
    if not shipped:
        return options
    shipped_ids = tuple(ln.item.id for ln in shipped)
    for loc in profile.pickup_locations:
        options.append(Option(
            f"pickup_{loc.id}", "pickup", f"Pick up at {loc.name}", 0, shipped_ids,
            location={"name": loc.name, "address": {
                "name": loc.name, "line_one": loc.line_one, "city": loc.city,
                "state": loc.state, "country": loc.country, "postal_code": loc.postal_code}},
            earliest=now + timedelta(hours=loc.ready_in_hours)))
    if not address:
        messages.error("missing", "A shipping address is needed to quote delivery.",
                       "$.fulfillment_details.address", "requires_buyer_input")
        return options
    country = str(address.get("country", "")).upper()
    if country not in profile.shipping_countries and "*" not in profile.shipping_countries:
        messages.error("region_restricted", f"We do not ship to {country or 'this country'}.",
                       "$.fulfillment_details.address.country", "requires_buyer_input")
        return options
    shipped_subtotal = sum(ln.subtotal for ln in shipped)
    for rate in profile.shipping_rates:
        if not _rate_applies(rate, country):
            continue
        free = (rate.free_over_amount is not None and shipped_subtotal >= rate.free_over_amount
                ) or any(ln.item.id in rate.free_for_items for ln in shipped)
        options.append(Option(
            rate.id, "shipping", rate.title, 0 if free else rate.amount, shipped_ids,
            carrier=rate.carrier, description=rate.description,
            earliest=now + timedelta(days=rate.min_days),
            latest=now + timedelta(days=rate.max_days)))
    return options


def select_fulfillment(
    options: list[Option], requested: list[Json] | None, lines: list[PricedLine],
    messages: Messages,
) -> list[Option]:
    """One option per fulfillment type that has items. Requested choices win; else cheapest.

    ``item_ids`` in a selection may be line ids or item ids (spec defect): either is accepted.
    """
    by_id = {opt.id: opt for opt in options}
    chosen: dict[str, Option] = {}
    for index, sel in enumerate(requested or []):
        opt = by_id.get(str(sel.get("option_id")))
        if opt is None:
            messages.error("invalid", "That fulfillment option is not available.",
                           f"$.selected_fulfillment_options[{index}].option_id", "recoverable")
            continue
        group = "digital" if opt.type == "digital" else "physical"
        chosen[group] = opt
    needs_physical = any(ln.item.requires_shipping for ln in lines)
    needs_digital = any(not ln.item.requires_shipping for ln in lines)
    for group, needed in (("physical", needs_physical), ("digital", needs_digital)):
        if not needed or group in chosen:
            continue
        candidates = [o for o in options if (o.type == "digital") == (group == "digital")]
        # Prefer shipping over pickup when nothing was chosen: the agent asked to deliver.
        candidates.sort(key=lambda o: (o.type == "pickup", o.amount, o.id))
        if candidates and (group == "digital" or any(o.type == "shipping" for o in candidates)):
            chosen[group] = candidates[0]
    return list(chosen.values())


def rate_table_tax(request: TaxRequest, profile: MerchantProfile) -> TaxResult:
    """Tax from the merchant's rate table: region-specific rate first, then the country's."""
    address = request.address or {}
    country = str(address.get("country", "")).upper()
    region = str(address.get("state", "")).upper()
    rate = next((r for r in profile.tax_rates if r.country == country and r.region == region),
                None) or next(
        (r for r in profile.tax_rates if r.country == country and r.region is None), None)
    if rate is None:
        return TaxResult({line_id: 0 for line_id, _ in request.line_subtotals}, 0)
    per_line = {line_id: apply_rate_bps(sub, rate.rate_bps)
                for line_id, sub in request.line_subtotals}
    shipping_tax = (apply_rate_bps(request.fulfillment_amount, rate.rate_bps)
                    if rate.shipping_taxable else 0)
    total = sum(per_line.values()) + shipping_tax
    return TaxResult(per_line, shipping_tax, ((rate.name, rate.rate_bps, total),))


def _total(type_: str, text: str, amount: int) -> Json:
    return {"type": type_, "display_text": text, "amount": amount}


def option_json(opt: Option) -> Json:
    out: Json = {"type": opt.type, "id": opt.id, "title": opt.title,
                 "totals": [_total("total", opt.title, opt.amount)]}
    if opt.description:
        out["description"] = opt.description
    if opt.type == "shipping":
        if opt.carrier:
            out["carrier"] = opt.carrier
        if opt.earliest and opt.latest:
            out["earliest_delivery_time"] = rfc3339(opt.earliest)
            out["latest_delivery_time"] = rfc3339(opt.latest)
    if opt.type == "pickup" and opt.location:
        out["location"] = opt.location
        if opt.earliest:
            out["ready_by"] = rfc3339(opt.earliest)
    return out


def line_json(line: PricedLine) -> Json:
    item = line.item
    out: Json = {
        "id": line.line_id,
        "item": {"id": item.id},
        "quantity": line.quantity,
        "name": item.title,
        "unit_amount": item.unit_amount,
        "product_id": item.product_id,
        "variant_id": item.id,
        "availability_status": "out_of_stock" if line.blocking and (
            item.stock is not None and item.stock <= 0 or item.availability == "out_of_stock"
        ) else ("low_stock" if item.availability == "limited_stock" else "in_stock"),
        "totals": [
            _total("items_base_amount", "Base amount", line.base_amount),
            _total("discount", "Discount", line.discount),
            _total("subtotal", "Subtotal", line.subtotal),
            _total("tax", "Tax", line.tax),
            _total("total", "Total", line.subtotal + line.tax),
        ],
    }
    if item.sku:
        out["sku"] = item.sku
    if item.image_url:
        out["images"] = [item.image_url]
    if item.stock is not None:
        out["available_quantity"] = max(item.stock, 0)
    if item.max_quantity_per_order:
        out["max_quantity_per_order"] = item.max_quantity_per_order
    if item.variant_options:
        out["variant_options"] = [{"name": n, "value": v} for n, v in item.variant_options]
    return out


def assemble(
    lines: list[PricedLine], options: list[Option], chosen: list[Option], tax: TaxResult,
    messages: Messages,
) -> Snapshot:
    """Totals follow ACP arithmetic: total = items_base − items_discount − discount
    + fulfillment + tax; per line: subtotal = base − discount, total = subtotal + tax."""
    for line in lines:
        line.tax = tax.per_line.get(line.line_id, 0)
    base = sum(ln.base_amount for ln in lines)
    item_discount = sum(ln.discount for ln in lines)
    fulfillment = sum(opt.amount for opt in chosen)
    subtotal = base - item_discount
    total = subtotal + fulfillment + tax.total
    tax_total = _total("tax", "Tax", tax.total)
    if tax.breakdown:
        tax_total["breakdown"] = [
            {"jurisdiction": name, "rate": bps / 10_000, "amount": amount}
            for name, bps, amount in tax.breakdown
        ]
    totals = [
        _total("items_base_amount", "Items", base),
        _total("items_discount", "Item discounts", item_discount),
        _total("subtotal", "Subtotal", subtotal),
        _total("discount", "Discount", 0),
        _total("fulfillment", "Shipping", fulfillment),
        tax_total,
        _total("total", "Total", total),
    ]
    selected = [{"type": opt.type, "option_id": opt.id, "item_ids": list(opt.item_ids)}
                for opt in chosen]
    needs_option = any(not any(ln.item.id in opt.item_ids for opt in chosen) for ln in lines)
    if needs_option and not messages.has_errors:
        messages.error("missing", "Choose a fulfillment option.",
                       "$.selected_fulfillment_options", "recoverable")
    status = "not_ready_for_payment" if messages.has_errors else "ready_for_payment"
    return Snapshot(
        line_items=[line_json(ln) for ln in lines],
        fulfillment_options=[option_json(opt) for opt in options],
        selected_fulfillment_options=selected,
        totals=totals,
        messages=messages.items,
        total_amount=total,
        status=status,
    )
