"""ACP 2026-04-17 request models → protocol-neutral commands of ``checkout.domain``."""

from __future__ import annotations

from typing import Any

from checkout.domain import (
    UNSET,
    CancelSession,
    CompleteSession,
    CreateSession,
    LineRequest,
    PaymentCredential,
    ThreeDSResult,
    UpdateSession,
)
from checkout.errors import InvalidItem
from protocols.acp import attribution
from protocols.acp.schemas import (
    CancelSessionRequest,
    CheckoutSessionCompleteRequest,
    CheckoutSessionCreateRequest,
    CheckoutSessionUpdateRequest,
    Discounts,
    Item,
)


def _dump(model: Any) -> Any:
    return None if model is None else model.model_dump(mode="json", exclude_none=True)


def discount_codes(discounts: Discounts | None, coupons: list[str] | None) -> list[str] | None:
    codes = list((discounts.codes if discounts else None) or coupons or [])
    return list(dict.fromkeys(c.strip() for c in codes if c.strip())) or None


def lines(items: list[Item], path: str = "$.line_items") -> list[LineRequest]:
    return [LineRequest(i.id, i.quantity, i.unit_amount, f"{path}[{n}].id",
                        f"{path}[{n}].quantity") for n, i in enumerate(items)]


def create(req: CheckoutSessionCreateRequest) -> CreateSession:
    return CreateSession(
        currency=req.currency, lines=lines(req.line_items),
        agent_capabilities=_dump(req.capabilities) or {},
        buyer=_dump(req.buyer), fulfillment_details=_dump(req.fulfillment_details),
        selected_fulfillment_options=[_dump(o) for o in req.selected_fulfillment_options]
        if req.selected_fulfillment_options else None,
        attribution=attribution.claim(req.affiliate_attribution, "first"),
        attribution_param=attribution.PARAM,
        discount_codes=discount_codes(req.discounts, req.coupons),
        locale=req.locale, timezone=req.timezone, order_notes=req.order_notes,
        metadata=req.metadata)


def update(req: CheckoutSessionUpdateRequest) -> UpdateSession:
    """Absent = leave unchanged; explicit ``null`` = clear."""
    present = req.model_fields_set
    unset = UNSET
    if "line_items" in present and req.line_items is None:
        raise InvalidItem("line_items cannot be cleared; cancel the session instead.",
                          code="invalid_line_items", param="$.line_items")
    return UpdateSession(
        lines=lines(req.line_items) if req.line_items is not None else unset,
        buyer=_dump(req.buyer) if "buyer" in present else unset,
        fulfillment_details=_dump(req.fulfillment_details)
        if "fulfillment_details" in present else unset,
        selected_fulfillment_options=(
            [_dump(o) for o in req.selected_fulfillment_options]
            if req.selected_fulfillment_options else None)
        if "selected_fulfillment_options" in present else unset,
        discount_codes=discount_codes(req.discounts, req.coupons)
        if "discounts" in present or "coupons" in present else unset,
        order_notes=req.order_notes if "order_notes" in present else unset)


def complete(req: CheckoutSessionCompleteRequest) -> CompleteSession:
    pd = req.payment_data
    payment = None if pd.instrument is None else PaymentCredential(
        token=pd.instrument.credential.token, handler_id=pd.handler_id,
        type=pd.instrument.credential.type)
    authentication = None
    if req.authentication_result is not None:
        details = req.authentication_result.outcome_details
        authentication = ThreeDSResult(
            outcome=req.authentication_result.outcome,
            cryptogram=details.three_ds_cryptogram if details else None,
            eci=details.electronic_commerce_indicator if details else None,
            transaction_id=details.transaction_id if details else None,
            version=details.version if details else None)
    return CompleteSession(
        payment=payment, buyer=_dump(req.buyer), authentication=authentication,
        attribution=attribution.claim(req.affiliate_attribution, "last"),
        attribution_param=attribution.PARAM,
        order_notes=req.order_notes)


def cancel(req: CancelSessionRequest | None) -> CancelSession:
    return CancelSession(intent_trace=req.intent_trace if req else None)
