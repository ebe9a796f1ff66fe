from __future__ import annotations

from collections.abc import Iterable
from typing import Any

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


async def variants_by_ids(db: AsyncSession, ids: Iterable[str]) -> dict[str, Variant]:
    """Catalog variants by id, for the importer and for checkout pricing."""
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return {}
    return {v.id: v for v in await db.scalars(select(Variant).where(Variant.id.in_(wanted)))}


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
