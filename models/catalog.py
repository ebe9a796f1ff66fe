from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utc_now


class Product(Base):
    """A listing (ACP ``Product``); its purchasable units are variants."""

    __tablename__ = "products"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    title: Mapped[str] = mapped_column(String(500))
    description: Mapped[str | None] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(String(2000))
    brand: Mapped[str | None] = mapped_column(String(200))
    media: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now, onupdate=utc_now)


class Variant(Base):
    """A purchasable unit. ``id`` is the item id agents pass to checkout."""

    __tablename__ = "variants"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    product_id: Mapped[str] = mapped_column(
        ForeignKey("products.id", ondelete="CASCADE"), index=True
    )
    title: Mapped[str] = mapped_column(String(500))
    description: Mapped[str | None] = mapped_column(Text)
    sku: Mapped[str | None] = mapped_column(String(200))
    url: Mapped[str | None] = mapped_column(String(2000))
    image_url: Mapped[str | None] = mapped_column(String(2000))
    price_amount: Mapped[int] = mapped_column(BigInteger)
    list_price_amount: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    # ``None`` means stock is not tracked (e.g. digital goods): always purchasable.
    stock: Mapped[int | None] = mapped_column(Integer)
    availability: Mapped[str] = mapped_column(String(32), default="in_stock")
    requires_shipping: Mapped[bool] = mapped_column(Boolean, default=True)
    max_quantity_per_order: Mapped[int | None] = mapped_column(Integer)
    variant_options: Mapped[list[Any]] = mapped_column(default=list)
    categories: Mapped[list[Any]] = mapped_column(default=list)
    is_eligible_search: Mapped[bool] = mapped_column(Boolean, default=True)
    is_eligible_checkout: Mapped[bool] = mapped_column(Boolean, default=True)
    shopify_variant_id: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now, onupdate=utc_now)
