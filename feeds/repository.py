"""All SQL for the catalog (products and variants)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol, cast

from sqlalchemy import Table, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Product, Variant

VARIANTS = cast(Table, Variant.__table__)
# Checkout prices every create and update from this lookup: a Core statement built once
# (rows, not ORM entities) costs less than half as much per call.
_VARIANTS_BY_ID = select(VARIANTS).where(VARIANTS.c.id.in_(bindparam("ids", expanding=True)))


class VariantView(Protocol):
    """A read-only variant row (a ``Variant`` entity fits too)."""

    @property
    def id(self) -> str: ...
    @property
    def product_id(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def description(self) -> str | None: ...
    @property
    def sku(self) -> str | None: ...
    @property
    def image_url(self) -> str | None: ...
    @property
    def price_amount(self) -> int: ...
    @property
    def currency(self) -> str: ...
    @property
    def stock(self) -> int | None: ...
    @property
    def availability(self) -> str: ...
    @property
    def requires_shipping(self) -> bool: ...
    @property
    def max_quantity_per_order(self) -> int | None: ...
    @property
    def variant_options(self) -> list[Any]: ...
    @property
    def is_eligible_checkout(self) -> bool: ...


async def products_with_variants(
    db: AsyncSession, product_ids: list[str]
) -> tuple[dict[str, Product], dict[str, Variant]]:
    products = {p.id: p for p in await db.scalars(
        select(Product).where(Product.id.in_(product_ids)))}
    variants = {v.id: v for v in await db.scalars(
        select(Variant).where(Variant.product_id.in_(product_ids)))}
    return products, variants


async def variants_by_ids(db: AsyncSession, ids: Iterable[str]) -> dict[str, VariantView]:
    """Catalog variants by id (read-only rows), for the importer and for checkout pricing."""
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return {}
    return {row.id: row for row in await db.execute(_VARIANTS_BY_ID, {"ids": wanted})}


async def product_page(db: AsyncSession, after: str | None, limit: int) -> list[Any]:
    """Products in id order (keyset pagination: constant cost per page at any depth)."""
    products = Product.__table__
    stmt = select(products.c.id, products.c.title, products.c.description, products.c.url,
                  products.c.brand, products.c.media).order_by(products.c.id).limit(limit)
    if after is not None:
        stmt = stmt.where(products.c.id > after)
    return list((await db.execute(stmt)).all())


async def variants_of(db: AsyncSession, product_ids: list[str]) -> list[Any]:
    variants = Variant.__table__
    stmt = (select(variants).where(variants.c.product_id.in_(product_ids))
            .order_by(variants.c.product_id, variants.c.id))
    return list((await db.execute(stmt)).all())


async def videos_of(db: AsyncSession, product_ids: list[str]
                    ) -> dict[str, list[tuple[str, str | None, str]]]:
    """Public URLs of the videos featuring each product, newest first."""
    from models import Video, VideoProduct

    rows = await db.execute(
        select(VideoProduct.product_id, Video.published_url, Video.source_url, Video.title,
               Video.id)
        .join(Video, Video.id == VideoProduct.video_id)
        .where(VideoProduct.product_id.in_(product_ids))
        .order_by(VideoProduct.product_id, Video.published_at.desc(), Video.id))
    out: dict[str, list[tuple[str, str | None, str]]] = {}
    for product_id, published, source, title, video_id in rows:
        url = published or source
        if url:
            out.setdefault(product_id, []).append((url, title, video_id))
    return out
