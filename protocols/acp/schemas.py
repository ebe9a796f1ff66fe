"""Request models for the ACP 2026-04-17 checkout API (older versions are brought up to
this shape by ``protocols.acp.versions`` first).

Requests are parsed tolerantly (unknown fields ignored, ``quantity`` accepted on items:
spec defect §1.13) but every value we use is bounded. Responses are built as plain dicts
by the service and validated against the official JSON Schema in the tests.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict, StringConstraints, field_validator

from checkout.domain import MAX_LINE_QUANTITY

Str200 = Annotated[str, StringConstraints(max_length=200)]
Str500 = Annotated[str, StringConstraints(max_length=500)]
Id = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Email = Annotated[
    str, StringConstraints(max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
]


class Tolerant(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Item(Tolerant):
    id: Id
    name: Str500 | None = None
    unit_amount: int | None = Field(default=None, ge=0, le=10**12)
    # Accepted (spec defect #264); an integer ≥ 1 in every version (2025-09-29's decimal
    # quantities are refused: 400 with ``param`` at the quantity).
    quantity: Annotated[int, Strict()] = Field(default=1, ge=1, le=MAX_LINE_QUANTITY)


class Address(Tolerant):
    name: Annotated[str, StringConstraints(max_length=256)]
    line_one: Annotated[str, StringConstraints(max_length=256)]
    line_two: Annotated[str, StringConstraints(max_length=256)] | None = None
    city: Annotated[str, StringConstraints(max_length=100)]
    state: Annotated[str, StringConstraints(max_length=100)]
    country: Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2}$")]
    postal_code: Annotated[str, StringConstraints(max_length=20)]
    company: Str200 | None = None

    @field_validator("country")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.upper()


class FulfillmentDetails(Tolerant):
    name: Str200 | None = None
    phone_number: Annotated[str, StringConstraints(max_length=32)] | None = None
    email: Email | None = None
    address: Address | None = None


class Buyer(Tolerant):
    """Unknown fields are dropped: the buyer is echoed, and every version's ``Buyer`` is
    ``additionalProperties: false``."""

    email: Email
    first_name: Str200 | None = None
    last_name: Str200 | None = None
    full_name: Str200 | None = None
    phone_number: Annotated[str, StringConstraints(max_length=32)] | None = None
    customer_id: Str200 | None = None


class Interventions(Tolerant):
    supported: list[Str200] = Field(default_factory=list, max_length=20)


class AgentCapabilities(Tolerant):
    interventions: Interventions | None = None
    extensions: list[Any] | None = Field(default=None, max_length=50)


class SelectedFulfillmentOption(Tolerant):
    type: Str200
    option_id: Id
    item_ids: list[Id] = Field(default_factory=list, max_length=100)


class Discounts(Tolerant):
    codes: list[Annotated[str, StringConstraints(max_length=100)]] = Field(
        default_factory=list, max_length=20
    )


LineItems = Annotated[list[Item], Field(min_length=1, max_length=100)]
Notes = Annotated[str, StringConstraints(max_length=5000)]


class CheckoutSessionCreateRequest(Tolerant):
    line_items: LineItems
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{3}$")]
    capabilities: AgentCapabilities = Field(default_factory=AgentCapabilities)
    buyer: Buyer | None = None
    fulfillment_details: FulfillmentDetails | None = None
    selected_fulfillment_options: list[SelectedFulfillmentOption] | None = Field(
        default=None, max_length=10
    )
    affiliate_attribution: dict[str, Any] | None = None
    discounts: Discounts | None = None
    coupons: list[Annotated[str, StringConstraints(max_length=100)]] | None = Field(
        default=None, max_length=20
    )
    locale: Annotated[str, StringConstraints(max_length=35)] | None = None
    timezone: Annotated[str, StringConstraints(max_length=64)] | None = None
    quote_id: Str200 | None = None
    metadata: dict[str, Any] | None = None
    order_notes: Notes | None = None


class CheckoutSessionUpdateRequest(Tolerant):
    """Absent = leave unchanged; explicit ``null`` = clear (ACP idempotency section)."""

    buyer: Buyer | None = None
    line_items: LineItems | None = None
    fulfillment_details: FulfillmentDetails | None = None
    selected_fulfillment_options: list[SelectedFulfillmentOption] | None = Field(
        default=None, max_length=10
    )
    discounts: Discounts | None = None
    coupons: list[Annotated[str, StringConstraints(max_length=100)]] | None = Field(
        default=None, max_length=20
    )
    order_notes: Notes | None = None


class Credential(Tolerant):
    type: Str200
    token: Annotated[str, StringConstraints(min_length=1, max_length=500)]


class Instrument(Tolerant):
    type: Str200
    credential: Credential


class PaymentData(Tolerant):
    handler_id: Str200 | None = None
    instrument: Instrument | None = None
    billing_address: Address | None = None
    purchase_order_number: Str200 | None = None


class OutcomeDetails(Tolerant):
    three_ds_cryptogram: Str500
    electronic_commerce_indicator: Annotated[str, StringConstraints(max_length=2)]
    transaction_id: Str200
    version: Annotated[str, StringConstraints(max_length=20)]


class AuthenticationResult(Tolerant):
    outcome: Literal[
        "abandoned", "attempt_acknowledged", "authenticated", "canceled", "denied",
        "informational", "internal_error", "not_supported", "processing_error", "rejected",
    ]
    outcome_details: OutcomeDetails | None = None


class CheckoutSessionCompleteRequest(Tolerant):
    payment_data: PaymentData
    buyer: Buyer | None = None
    authentication_result: AuthenticationResult | None = None
    affiliate_attribution: dict[str, Any] | None = None
    risk_signals: dict[str, Any] | None = None
    marketing_consents: list[dict[str, Any]] | None = Field(default=None, max_length=20)
    order_notes: Notes | None = None


class CancelSessionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    intent_trace: dict[str, Any] | None = None


def openapi_components() -> dict[str, Any]:
    """JSON Schemas of the request bodies, for the OpenAPI document's components."""
    from pydantic.json_schema import models_json_schema

    _, defs = models_json_schema(
        [(m, "validation") for m in (CheckoutSessionCreateRequest, CheckoutSessionUpdateRequest,
                                     CheckoutSessionCompleteRequest, CancelSessionRequest)],
        ref_template="#/components/schemas/{model}")
    return dict(defs.get("$defs", {}))
