"""Catalog records as parsed from ACP feed JSONL or the OpenAI flat-file feed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class VariantRecord:
    id: str
    title: str
    price_amount: int
    currency: str  # lowercase ISO 4217
    description: str | None = None
    sku: str | None = None
    url: str | None = None
    image_url: str | None = None
    list_price_amount: int | None = None
    availability: str = "in_stock"
    stock: int | None = None
    requires_shipping: bool = True
    variant_options: list[dict[str, str]] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    is_eligible_search: bool = True
    is_eligible_checkout: bool = True
    shopify_variant_id: str | None = None

    def columns(self) -> dict[str, Any]:
        return {
            "title": self.title, "description": self.description, "sku": self.sku,
            "url": self.url, "image_url": self.image_url, "price_amount": self.price_amount,
            "list_price_amount": self.list_price_amount, "currency": self.currency,
            "stock": self.stock, "availability": self.availability,
            "requires_shipping": self.requires_shipping,
            "variant_options": self.variant_options, "categories": self.categories,
            "is_eligible_search": self.is_eligible_search,
            "is_eligible_checkout": self.is_eligible_checkout,
            "shopify_variant_id": self.shopify_variant_id,
        }


@dataclass(slots=True)
class ProductRecord:
    id: str
    title: str
    variants: list[VariantRecord]
    description: str | None = None
    url: str | None = None
    brand: str | None = None
    media: list[dict[str, Any]] = field(default_factory=list)

    def columns(self) -> dict[str, Any]:
        return {"title": self.title, "description": self.description, "url": self.url,
                "brand": self.brand, "media": self.media}


@dataclass(frozen=True, slots=True)
class RejectedRow:
    line: int
    reason: str


@dataclass(slots=True)
class ImportReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[RejectedRow] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.created + self.updated + self.unchanged + len(self.rejected)
