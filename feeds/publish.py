"""Building the published feeds from the catalog, streamed in constant memory.

    catalog (keyset pages) → ProductRow → ACP products.jsonl + metadata.json
                                        → OpenAI jsonl.gz / csv.gz / tsv.gz (+ validation)
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from feeds import repository
from feeds.builder import (
    FEED_CHANNELS,
    FeedConfig,
    ProductRow,
    ValidationReport,
    VariantRow,
    acp_product,
    openai_items,
    screen_urls,
    validate_openai_item,
    validate_store,
)
from feeds.google import GOOGLE_TSV_COLUMNS, google_tsv_rows
from feeds.openai_spec import CURRENTLY_STABLE, OpenAISpec, Problem
from feeds.writer import MAX_ITEMS_PER_SHARD, ShardedWriter, write_json_atomic
from links import repository as link_repository
from models.base import rfc3339, utc_now

OPENAI_FORMATS = ("jsonl", "csv", "tsv")
PAGE = 1000


@dataclass
class BuildReport:
    products: int = 0
    variants: int = 0
    seconds: float = 0.0
    files: dict[str, list[str]] = field(default_factory=dict)
    validation: dict[str, Any] = field(default_factory=dict)
    generated_at: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"products": self.products, "variants": self.variants,
                "seconds": round(self.seconds, 3),
                "items_per_second": int(self.variants / self.seconds) if self.seconds else None,
                "files": self.files, "validation": self.validation,
                "generated_at": self.generated_at}


def product_row(p: Any, variants: Iterable[Any],
                videos: tuple[tuple[str, str | None, str], ...] = (),
                links: tuple[tuple[str, str], ...] = ()) -> ProductRow:
    return ProductRow(
        id=p.id, title=p.title, description=p.description, url=p.url, brand=p.brand,
        media=tuple(p.media or ()), videos=videos, links=links,
        variants=tuple(VariantRow(
            id=v.id, title=v.title, price_amount=v.price_amount, currency=v.currency,
            description=v.description, sku=v.sku, url=v.url, image_url=v.image_url,
            list_price_amount=v.list_price_amount, availability=v.availability,
            stock=v.stock, requires_shipping=v.requires_shipping,
            variant_options=tuple((o["name"], o["value"]) for o in v.variant_options or ()),
            categories=tuple(v.categories or ()), is_eligible_search=v.is_eligible_search,
            is_eligible_checkout=v.is_eligible_checkout) for v in variants))


Rejected = Callable[[str, Problem], None]


async def catalog_rows(sessionmaker: async_sessionmaker[AsyncSession],
                       on_rejected: Rejected | None = None) -> AsyncIterator[ProductRow]:
    """The publishable catalog: every destination reads it through here, so an item whose
    URLs are not http(s) is left out of all of them (reported through ``on_rejected``)."""
    after: str | None = None
    while True:
        async with sessionmaker() as db:
            products = await repository.product_page(db, after, PAGE)
            if not products:
                return
            variants = await repository.variants_of(db, [p.id for p in products])
            videos = await repository.videos_of(db, [p.id for p in products])
            links = await link_repository.feed_links(db, [p.id for p in products],
                                                     FEED_CHANNELS)
        by_product: dict[str, list[Any]] = {}
        for v in variants:
            by_product.setdefault(v.product_id, []).append(v)
        for p in products:
            if by_product.get(p.id):
                row, problems = screen_urls(
                    product_row(p, by_product[p.id], tuple(videos.get(p.id, ())),
                                tuple(links.get(p.id, ()))))
                if on_rejected is not None:
                    for item_id, problem in problems:
                        on_rejected(item_id, problem)
                if row is not None:
                    yield row
        after = products[-1].id


class FeedBuilder:
    """Feeds ``ProductRow``s to every output at once; one pass over the catalog."""

    def __init__(self, out_dir: Path, config: FeedConfig, *,
                 openai_formats: tuple[str, ...] = OPENAI_FORMATS, acp: bool = True,
                 max_items: int = MAX_ITEMS_PER_SHARD, spec: OpenAISpec = CURRENTLY_STABLE,
                 google_tsv: bool = True) -> None:
        self.out_dir = out_dir
        self.config = config
        self.spec = spec
        self.acp = ShardedWriter(out_dir / "acp", "products", "jsonl", compress=False,
                                 max_items=max_items) if acp else None
        self.openai = [ShardedWriter(out_dir / "openai", "products", fmt, compress=True,
                                     columns=spec.columns, max_items=max_items)
                       for fmt in openai_formats]
        # Google Merchant Center's fallback: a plain TSV feed a merchant can download/fetch.
        self.google = ShardedWriter(out_dir / "google", "products", "tsv", compress=False,
                                    columns=GOOGLE_TSV_COLUMNS, max_items=max_items) \
            if google_tsv else None
        self.validation = ValidationReport(spec_version=spec.version)
        self.store_problems = validate_store(config, spec)
        self.report = BuildReport()
        self._started = time.perf_counter()

    def reject(self, item_id: str, problem: Problem) -> None:
        self.validation.exclude(item_id, problem)

    def add(self, product: ProductRow) -> None:
        screened, problems = screen_urls(product)
        for item_id, problem in problems:
            self.reject(item_id, problem)
        if screened is None:
            return
        product = screened
        self.report.products += 1
        self.report.variants += len(product.variants)
        if self.acp is not None:
            self.acp.write(acp_product(product, self.config))
        if self.google is not None:
            for row in google_tsv_rows(product, self.config):
                self.google.write(row)
        if not self.openai:
            return
        for item in openai_items(product, self.config, self.spec):
            self.validation.add(item, validate_openai_item(item, self.spec,
                                                           store_checked=True))
            for writer in self.openai:
                writer.write(item)

    def finish(self) -> BuildReport:
        now = rfc3339(utc_now())
        if self.acp is not None:
            files = self.acp.close()
            write_json_atomic(self.out_dir / "acp" / "metadata.json", {
                "id": self.config.feed_id, "target_country": self.config.target_country,
                "updated_at": now})
            self.report.files["acp"] = [str(p.relative_to(self.out_dir)) for p in files] + [
                "acp/metadata.json"]
        for writer in self.openai:
            self.report.files[f"openai_{writer.fmt}"] = [
                str(p.relative_to(self.out_dir)) for p in writer.close()]
        if self.google is not None:
            self.report.files["google_tsv"] = [
                str(p.relative_to(self.out_dir)) for p in self.google.close()]
        self.report.seconds = time.perf_counter() - self._started
        self.report.validation = self.validation.as_dict()
        self.report.validation["store_problems"] = [
            {"problem": f"{p.code}:{p.field}", "message": p.message}
            for p in self.store_problems]
        self.report.generated_at = now
        write_json_atomic(self.out_dir / "report.json", self.report.as_dict())
        return self.report


async def build_feeds(sessionmaker: async_sessionmaker[AsyncSession], out_dir: Path,
                      config: FeedConfig, *, openai_formats: tuple[str, ...] = OPENAI_FORMATS,
                      progress: Callable[[int], None] | None = None,
                      spec: OpenAISpec = CURRENTLY_STABLE) -> BuildReport:
    builder = FeedBuilder(out_dir, config, openai_formats=openai_formats, spec=spec)
    async for product in catalog_rows(sessionmaker, builder.reject):
        builder.add(product)
        if progress is not None:
            progress(len(product.variants))
    return builder.finish()
