"""All SQL for catalog search and detail reads (the MCP catalog tools).

Search runs in the database's own full-text index (migration 0401): one document per
product, FTS5 with BM25 on SQLite, ``tsvector`` + GIN with ``ts_rank_cd`` on PostgreSQL.
Price, currency, availability and category filter the product's live variants (a product
is found if one of its variants passes), brand filters the product.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from catalog.schemas import BUYABLE, SearchFilters
from models import Product, Variant, Video, VideoProduct
from models.creative import promoted_first

# BM25 column weights: product_id (unindexed), title, brand, tags, body. Set through the
# ``rank`` column and ordered by ``rank`` alone, so FTS5 sorts its matches itself and the
# filters run only until the page is full (a tie-breaker column would make SQLite sort
# every match after filtering each: ~10x slower on common words).
_SQLITE_RANK = "bm25(0.0, 10.0, 4.0, 2.0, 1.0)"


def _sqlite_match(terms: Sequence[str]) -> str:
    quoted = [f'"{t}"' for t in terms]
    if len(terms[-1]) >= 3:
        quoted[-1] += "*"  # the last word may be unfinished
    return " ".join(quoted)


def _postgresql_match(terms: Sequence[str]) -> str:
    parts = [f"'{t}'" for t in terms]
    if len(terms[-1]) >= 3:
        parts[-1] += ":*"
    return " & ".join(parts)


def _variant_filters(f: SearchFilters, dialect: str) -> tuple[list[str], dict[str, Any]]:
    """Conditions on a variant ``v`` (always: visible to search)."""
    where = ["v.is_eligible_search"]
    params: dict[str, Any] = {}
    if f.currency:
        where.append("v.currency = :currency")
        params["currency"] = f.currency
    if f.min_price is not None:
        where.append("v.price_amount >= :min_price")
        params["min_price"] = f.min_price
    if f.max_price is not None:
        where.append("v.price_amount <= :max_price")
        params["max_price"] = f.max_price
    if f.available_only:
        where.append("v.is_eligible_checkout AND v.availability IN ({}) "
                     "AND (v.stock IS NULL OR v.stock > 0)".format(
                         ", ".join(f"'{a.value}'" for a in BUYABLE)))
    if f.category:
        elements = "json_each(v.categories)" if dialect == "sqlite" \
            else "jsonb_array_elements_text(v.categories) AS c(value)"
        where.append(f"EXISTS (SELECT 1 FROM {elements} WHERE lower(value) = :category)")
        params["category"] = f.category.lower()
    return where, params


def _product_filters(f: SearchFilters, product_id: str, dialect: str
                     ) -> tuple[list[str], dict[str, Any]]:
    """Conditions on the product whose id is the SQL expression ``product_id``."""
    variant_where, params = _variant_filters(f, dialect)
    where = [f"EXISTS (SELECT 1 FROM variants v WHERE v.product_id = {product_id} AND "
             f"{' AND '.join(variant_where)})"]
    if f.brand:
        where.append(f"(SELECT lower(brand) FROM products WHERE id = {product_id}) = :brand")
        params["brand"] = f.brand.lower()
    return where, params


async def search_product_ids(db: AsyncSession, f: SearchFilters, *, offset: int,
                             limit: int) -> list[str]:
    """Product ids, best match first, one page of ``limit`` after ``offset``."""
    dialect = db.get_bind().dialect.name
    if not f.terms:
        where, params = _product_filters(f, "p.id", dialect)
        sql = f"""SELECT p.id FROM products p WHERE {' AND '.join(where)}
                  ORDER BY p.id LIMIT :limit OFFSET :offset"""
    elif dialect == "sqlite":
        where, params = _product_filters(f, "s.product_id", dialect)
        params["match"] = _sqlite_match(f.terms)
        sql = f"""
            SELECT s.product_id FROM catalog_search s
            WHERE catalog_search MATCH :match AND rank MATCH '{_SQLITE_RANK}'
              AND {' AND '.join(where)}
            ORDER BY rank LIMIT :limit OFFSET :offset"""
    else:
        where, params = _product_filters(f, "s.product_id", dialect)
        params["match"] = _postgresql_match(f.terms)
        sql = f"""
            SELECT s.product_id FROM catalog_search s, to_tsquery('english', :match) AS q
            WHERE s.document @@ q AND {' AND '.join(where)}
            ORDER BY ts_rank_cd(s.document, q) DESC, s.product_id
            LIMIT :limit OFFSET :offset"""
    params.update(offset=offset, limit=limit)
    return list((await db.execute(text(sql), params)).scalars())


async def products(db: AsyncSession, product_ids: Sequence[str]) -> dict[str, Any]:
    table = Product.__table__
    rows = await db.execute(select(table.c.id, table.c.title, table.c.description,
                                   table.c.url, table.c.brand, table.c.media)
                            .where(table.c.id.in_(product_ids)))
    return {row.id: row for row in rows}


async def search_variants(db: AsyncSession, product_ids: Sequence[str], f: SearchFilters
                          ) -> list[Any]:
    """The variants of these products that pass the filters (not the text match: a
    product found by one variant shows every variant the buyer could choose)."""
    where, params = _variant_filters(f, db.get_bind().dialect.name)
    v = Variant.__table__.alias("v")
    stmt = (select(v).where(v.c.product_id.in_(product_ids), *(text(w) for w in where))
            .order_by(v.c.product_id, v.c.price_amount, v.c.id))
    return list((await db.execute(stmt, params)).all())


async def videos_for_products(db: AsyncSession, product_ids: Sequence[str]) -> list[Any]:
    """(product_id, video) pairs: the product's promoted video first, then newest first."""
    rows = await db.execute(
        select(VideoProduct.product_id, VideoProduct.variant_id, Video)
        .join(Video, Video.id == VideoProduct.video_id)
        .where(VideoProduct.product_id.in_(product_ids))
        .order_by(promoted_first(VideoProduct.product_id, Video.id),
                  Video.published_at.desc().nulls_last(), Video.created_at.desc(), Video.id))
    return list(rows.all())


async def video_page(db: AsyncSession, *, product_id: str | None, campaign: str | None,
                     offset: int, limit: int) -> list[Video]:
    stmt = select(Video)
    if product_id:
        stmt = stmt.where(Video.id.in_(select(VideoProduct.video_id)
                                       .where(VideoProduct.product_id == product_id)))
    if campaign:
        stmt = stmt.where(Video.campaign == campaign)
    stmt = stmt.order_by(Video.published_at.desc().nulls_last(), Video.created_at.desc(),
                         Video.id).offset(offset).limit(limit)
    return list(await db.scalars(stmt))


async def featured_products(db: AsyncSession, video_ids: Sequence[str]) -> list[Any]:
    rows = await db.execute(
        select(VideoProduct.video_id, VideoProduct.product_id, VideoProduct.variant_id)
        .where(VideoProduct.video_id.in_(video_ids))
        .order_by(VideoProduct.video_id, VideoProduct.product_id))
    return list(rows.all())
