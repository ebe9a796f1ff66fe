"""What the merchant configures for checkout: rates, taxes, policies, limits.

Loaded by the composition root (``api``) from ``REELCART_MERCHANT_CONFIG`` (a JSON file)
and handed to the checkout service; the defaults make the embedded demo work.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from models.urls import HttpUrlStr


class ShippingRate(BaseModel):
    id: str
    title: str
    carrier: str | None = None
    description: str | None = None
    countries: list[str] = Field(default_factory=lambda: ["*"], description="ISO alpha-2 or *")
    amount: int = Field(ge=0, description="Price in minor units of the session currency")
    free_over_amount: int | None = Field(
        default=None, ge=0, description="Items subtotal (minor units) from which it is free"
    )
    min_days: int = Field(ge=0)
    max_days: int = Field(ge=0)
    excluded_countries: list[str] = Field(
        default_factory=list, description="ISO alpha-2 codes this rate never applies to")
    free_for_items: list[str] = Field(
        default_factory=list, description="Variant ids that make this rate free when in the cart")


class PickupLocation(BaseModel):
    id: str
    name: str
    line_one: str
    city: str
    state: str
    country: str
    postal_code: str
    ready_in_hours: int = 2


class TaxRate(BaseModel):
    country: str
    region: str | None = Field(default=None, description="State/province code; None = country")
    rate_bps: int = Field(ge=0, le=10_000, description="Rate in basis points (825 = 8.25%)")
    name: str = "Sales tax"
    shipping_taxable: bool = False


class DiscountCode(BaseModel):
    """A code the buyer can enter. Codes apply in the order given: percentages compound on
    the items subtotal left by the previous codes; fixed amounts never exceed it."""

    code: str = Field(min_length=1, max_length=100)
    type: Literal["percentage", "fixed_amount"]
    value: int = Field(ge=0, description="Percent (0-100) or minor units of the currency")
    title: str | None = None


class MerchantProfile(BaseModel):
    name: str = "ReelCart Demo Store"
    merchant_id: str = "acct_reelcart_demo"
    country: str = "US"
    currencies: list[str] = Field(default_factory=lambda: ["usd"])
    locales: list[str] = Field(default_factory=lambda: ["en-US"])
    terms_url: HttpUrlStr = "https://shop.example.com/legal/terms"
    privacy_url: HttpUrlStr = "https://shop.example.com/legal/privacy"
    return_policy_url: HttpUrlStr = "https://shop.example.com/legal/returns"
    support_email: str = "support@shop.example.com"
    shipping_countries: list[str] = Field(default_factory=lambda: ["US", "CA"],
                                          description="ISO alpha-2 codes, or * for anywhere")
    shipping_rates: list[ShippingRate] = Field(
        default_factory=lambda: [
            ShippingRate(id="ship_standard", title="Standard", carrier="USPS",
                         description="Arrives in 3-5 business days", amount=599,
                         free_over_amount=7500, min_days=3, max_days=5),
            ShippingRate(id="ship_express", title="Express", carrier="UPS",
                         description="Arrives in 1-2 business days", amount=1499,
                         min_days=1, max_days=2),
            ShippingRate(id="ship_canada", title="International Standard", carrier="Canada Post",
                         countries=["CA"], amount=1299, min_days=5, max_days=10),
        ]
    )
    pickup_locations: list[PickupLocation] = Field(default_factory=list)
    tax_rates: list[TaxRate] = Field(
        default_factory=lambda: [
            TaxRate(country="US", region="CA", rate_bps=725, name="California sales tax"),
            TaxRate(country="US", region="NY", rate_bps=400, name="New York sales tax",
                    shipping_taxable=True),
            TaxRate(country="US", region="TX", rate_bps=625, name="Texas sales tax",
                    shipping_taxable=True),
            TaxRate(country="US", region="WA", rate_bps=650, name="Washington sales tax",
                    shipping_taxable=True),
            TaxRate(country="CA", rate_bps=500, name="GST", shipping_taxable=True),
        ]
    )
    store_url: HttpUrlStr = "https://shop.example.com"
    default_brand: str = "ReelCart Demo Store"
    feed_id: str = "reelcart-demo-feed"
    target_country: str = "US"
    feed_url_params: dict[str, str] = Field(
        default_factory=lambda: {"utm_source": "agent", "utm_medium": "acp_feed"},
        description="Appended to product URLs in feeds (attribution)")
    discount_codes: list[DiscountCode] = Field(default_factory=list)
    low_stock_threshold: int = 3
    max_line_items: int = 100
    max_quantity_per_line: int = 1000
