from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Product, Variant


async def products_with_variants(
    db: AsyncSession, product_ids: list[str]
) -> tuple[dict[str, Product], dict[str, Variant]]:
    products = {p.id: p for p in await db.scalars(
        select(Product).where(Product.id.in_(product_ids)))}
    variants = {v.id: v for v in await db.scalars(
        select(Variant).where(Variant.product_id.in_(product_ids)))}
    return products, variants


async def variants_by_ids(db: AsyncSession, ids: list[str]) -> dict[str, Variant]:
    return {v.id: v for v in await db.scalars(select(Variant).where(Variant.id.in_(ids)))}
