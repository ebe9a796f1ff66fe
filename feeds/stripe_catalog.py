"""Stripe's agentic-commerce catalog (Agentic Commerce Suite, private preview).

Stripe documents a CSV product feed and an inventory feed ("Catalog feed",
docs.stripe.com/agentic-commerce/product-feed), delivered through the v2 Product Catalog
Import API (``POST /v2/commerce/product_catalog/imports`` with ``feed_type`` =
``product``/``inventory``/``pricing`` and ``mode`` = ``replace``/``upsert``). The created
``v2.commerce.product_catalog_import`` is ``awaiting_upload`` with a pre-signed
``status_details.awaiting_upload.upload_url``; once the CSV is uploaded there, it moves to
``processing`` and then ``succeeded``, ``succeeded_with_errors`` or ``failed``
(``GET /v2/commerce/product_catalog/imports/{id}``).

Product rows use the feed's column names; a row with ``delete=true`` removes the item.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import httpx

from feeds.builder import FeedConfig, ProductRow, VariantRow
from feeds.google import google_tsv_rows
from models.outbound import OutboundRefused, error_excerpt, retry_after_seconds

Json = dict[str, Any]
PRODUCT_COLUMNS = (
    "id", "title", "description", "link", "image_link", "additional_image_link",
    "video_link", "availability", "price", "sale_price", "brand", "mpn",
    "identifier_exists", "condition", "item_group_id", "product_type", "shipping", "delete",
)
INVENTORY_COLUMNS = ("id", "availability", "inventory_quantity")
FINAL_STATUSES = frozenset({"succeeded", "succeeded_with_errors", "failed"})


class StripeCatalogError(Exception):
    pass


def product_rows(product: ProductRow, config: FeedConfig) -> list[Json]:
    """Stripe's product feed shares Google's attribute names (link, image_link, …)."""
    return list(google_tsv_rows(product, config))


def inventory_row(variant: VariantRow) -> Json | None:
    """Only variants whose stock we count have an inventory row."""
    if variant.stock is None:
        return None
    available = "in_stock" if variant.stock > 0 and variant.availability in (
        "in_stock", "limited_stock") else (
        variant.availability if variant.availability in ("backorder", "preorder")
        else "out_of_stock")
    return {"id": variant.id, "availability": available,
            "inventory_quantity": str(max(variant.stock, 0))}


class CsvSpool:
    """Rows written straight to a temporary CSV file (constant memory for any catalog
    size), then read back in chunks for the upload (again on every retry)."""

    def __init__(self, columns: tuple[str, ...]) -> None:
        self._file = tempfile.NamedTemporaryFile(  # noqa: SIM115 (closed in close())
            mode="w+", encoding="utf-8", newline="", suffix=".csv")
        self._writer = csv.DictWriter(self._file, fieldnames=columns, extrasaction="ignore",
                                      lineterminator="\n")
        self._writer.writeheader()
        self.rows = 0
        self.deleted = 0

    def add(self, row: Json) -> None:
        self._writer.writerow({k: ",".join(v) if isinstance(v, list) else v
                               for k, v in row.items()})
        self.rows += 1
        self.deleted += row.get("delete") == "true"

    def finish(self) -> tuple[int, str]:
        """(size in bytes, sha256 hex) of the finished file."""
        self._file.flush()
        digest = hashlib.sha256()
        size = 0
        with open(self._file.name, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
                size += len(block)
        return size, digest.hexdigest()

    def _blocks(self) -> Iterator[bytes]:
        with open(self._file.name, "rb") as f:
            yield from iter(lambda: f.read(1 << 20), b"")

    async def chunks(self) -> AsyncIterator[bytes]:
        for block in self._blocks():  # local temp file: 1 MiB reads
            yield block

    def close(self) -> None:
        self._file.close()


class StripeCatalogClient:
    def __init__(self, http: httpx.AsyncClient, api_key: str, *,
                 base_url: str = "https://api.stripe.com",
                 api_version: str = "2026-04-22.dahlia", max_attempts: int = 4,
                 max_delay: float = 30.0,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {api_key}",
                         "Stripe-Version": api_version}
        self.max_attempts = max_attempts
        self.max_delay = max_delay
        self._sleep = sleep
        self.retries = 0

    async def _send(self, method: str, url: str, *,
                    body: Callable[[], AsyncIterator[bytes]] | None = None,
                    **kwargs: Any) -> httpx.Response:
        delay = 0.5
        problem = ""
        for attempt in range(1, self.max_attempts + 1):
            if body is not None:  # a fresh stream for every attempt
                kwargs["content"] = body()
            try:
                response = await self.http.request(
                    method, url, timeout=httpx.Timeout(120.0, connect=5.0), **kwargs)
            except OutboundRefused:
                raise
            except httpx.HTTPError as exc:
                problem, wait = type(exc).__name__, delay
            else:
                if response.status_code < 400:
                    return response
                if response.status_code not in (409, 429) and response.status_code < 500:
                    raise StripeCatalogError(f"{method} {url.split('?')[0]}: HTTP "
                                             f"{response.status_code} "
                                             f"{error_excerpt(response.text) or ''}")
                problem = f"HTTP {response.status_code}"
                wait = retry_after_seconds(response.headers.get("retry-after"),
                                           cap=self.max_delay) or delay
            if attempt == self.max_attempts:
                break
            self.retries += 1
            await self._sleep(min(wait, self.max_delay))
            delay = min(delay * 2, self.max_delay)
        raise StripeCatalogError(f"{method} {url.split('?')[0]}: {problem} after "
                                 f"{self.max_attempts} tries")

    async def create_import(self, feed_type: str, mode: str, *, idempotency_key: str,
                            metadata: dict[str, str]) -> Json:
        body: Json = {"feed_type": feed_type, "metadata": metadata}
        if feed_type == "product":
            body["mode"] = mode
        response = await self._send(
            "POST", f"{self.base_url}/v2/commerce/product_catalog/imports", json=body,
            headers={**self._headers, "Idempotency-Key": idempotency_key})
        answer: Json = response.json()
        if not isinstance(answer, dict) or not answer.get("id"):
            raise StripeCatalogError("the import was created without an id")
        return answer

    async def upload(self, created: Json, spool: CsvSpool, size: int) -> None:
        try:
            url = created["status_details"]["awaiting_upload"]["upload_url"]["url"]
        except (KeyError, TypeError):
            raise StripeCatalogError("the import has no upload URL") from None
        if not str(url).startswith("https://"):
            raise StripeCatalogError("the import's upload URL is not https")
        await self._send("PUT", str(url), body=spool.chunks,
                         headers={"Content-Type": "text/csv", "Content-Length": str(size)})

    async def retrieve(self, import_id: str) -> Json:
        response = await self._send(
            "GET", f"{self.base_url}/v2/commerce/product_catalog/imports/{import_id}",
            headers=self._headers)
        answer: Json = response.json()
        return answer
