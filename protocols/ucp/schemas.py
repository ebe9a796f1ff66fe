"""UCP request bodies (2026-04-08), parsed tolerantly: unknown fields are ignored, every
value we use is bounded. Responses are plain dicts validated against the official schemas
and the ``ucp-sdk`` models in the tests."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Str = Annotated[str, StringConstraints(max_length=500)]
Id = Annotated[str, StringConstraints(max_length=200)]


class Tolerant(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ItemRef(Tolerant):
    id: Annotated[str, StringConstraints(min_length=1, max_length=200)]


class LineItemIn(Tolerant):
    id: Id | None = None
    item: ItemRef
    quantity: int = Field(default=1, ge=1, le=1_000_000)


class Consent(BaseModel):
    model_config = ConfigDict(extra="allow")


class BuyerIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    email: Annotated[str, StringConstraints(max_length=320)] | None = None
    first_name: Str | None = None
    last_name: Str | None = None
    full_name: Str | None = None
    phone_number: Annotated[str, StringConstraints(max_length=40)] | None = None
    consent: dict[str, bool] | None = None


class Destination(Tolerant):
    id: Id | None = None
    street_address: Str | None = None
    extended_address: Str | None = None
    address_locality: Str | None = None
    address_region: Str | None = None
    address_country: Annotated[str, StringConstraints(max_length=2)] | None = None
    postal_code: Annotated[str, StringConstraints(max_length=20)] | None = None
    first_name: Str | None = None
    last_name: Str | None = None
    full_name: Str | None = None
    phone_number: Annotated[str, StringConstraints(max_length=40)] | None = None


class GroupIn(Tolerant):
    id: Id | None = None
    selected_option_id: Id | None = None


class MethodIn(Tolerant):
    id: Id | None = None
    type: Annotated[str, StringConstraints(max_length=20)] = "shipping"
    line_item_ids: list[Id] | None = Field(default=None, max_length=100)
    destinations: list[Destination] | None = Field(default=None, max_length=20)
    selected_destination_id: Id | None = None
    groups: list[GroupIn] | None = Field(default=None, max_length=20)


class FulfillmentIn(Tolerant):
    methods: list[MethodIn] = Field(default_factory=list, max_length=5)


class DiscountsIn(Tolerant):
    codes: list[Annotated[str, StringConstraints(max_length=100)]] = Field(
        default_factory=list, max_length=20)


class Credential(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: Str | None = None
    token: Annotated[str, StringConstraints(max_length=5000)] | None = None


class InstrumentIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: Id | None = None
    handler_id: Id
    type: Str = "card"
    selected: bool | None = None
    display: dict[str, Any] | None = None
    billing_address: dict[str, Any] | None = None
    credential: Credential | None = None


class PaymentIn(Tolerant):
    instruments: list[InstrumentIn] = Field(default_factory=list, max_length=10)


Attribution = dict[Annotated[str, StringConstraints(max_length=100)],
                   Annotated[str, StringConstraints(max_length=2000)]]


class CheckoutIn(Tolerant):
    """Create and update share one shape; on update an absent field is left unchanged."""

    line_items: list[LineItemIn] | None = Field(default=None, max_length=100)
    buyer: BuyerIn | None = None
    fulfillment: FulfillmentIn | None = None
    discounts: DiscountsIn | None = None
    payment: PaymentIn | None = None
    attribution: Attribution | None = Field(default=None, max_length=50)
    context: dict[str, Any] | None = None


class CompleteIn(Tolerant):
    payment: PaymentIn
    attribution: Attribution | None = Field(default=None, max_length=50)
    buyer: BuyerIn | None = None
