"""Stripe agentic catalog, faked at HTTP from Stripe's documented shapes: the v2
Product Catalog Import (``POST /v2/commerce/product_catalog/imports`` → an import
``awaiting_upload`` with a pre-signed ``upload_url``; ``GET …/{id}`` → processing,
succeeded, succeeded_with_errors, failed) and the CSV product/inventory feeds (``id`` key,
``delete=true`` rows). Full replace first, then upserts and inventory updates."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from pytest_httpx import HTTPXMock
from sqlalchemy import delete, select, update

from api.runtime import Runtime
from feeds.destinations import PublishContext, StripeCatalogDestination, publish_all
from feeds.stripe_catalog import INVENTORY_COLUMNS, PRODUCT_COLUMNS, StripeCatalogClient
from models import FeedDelivery, Product, Variant
from tests.conftest import sandbox_runtime

API = "https://api.stripe.com"
UPLOADS = "https://files.stripeusercontent.test/upload"


@dataclass
class FakeCatalogImports:
    imports: dict[str, dict[str, Any]] = field(default_factory=dict)
    by_key: dict[str, str] = field(default_factory=dict)
    uploads: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    raw: dict[str, bytes] = field(default_factory=dict)
    create_faults: list[int] = field(default_factory=list)
    next_status: str = "processing"  # what an upload moves an import to

    def api(self, request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == "Bearer sk_test_catalog"
        assert request.headers["stripe-version"] == "2026-04-22.dahlia"
        if request.method == "POST":
            if self.create_faults:
                status = self.create_faults.pop(0)
                return httpx.Response(status, json={"error": {
                    "type": "api_error" if status >= 500 else "invalid_request_error",
                    "message": "fault"}})
            key = request.headers["idempotency-key"]
            if key in self.by_key:  # Stripe replays the first answer for a reused key
                return httpx.Response(200, json=self.imports[self.by_key[key]])
            body = json.loads(request.content)
            assert body["feed_type"] in ("product", "inventory", "pricing")
            if body["feed_type"] == "product":
                assert body["mode"] in ("replace", "upsert")
            number = len(self.imports) + 1
            created = {
                "id": f"pcimprt_test_{number}", "object": "v2.commerce.product_catalog_import",
                "feed_type": body["feed_type"], "mode": body.get("mode"),
                "status": "awaiting_upload", "livemode": False,
                "created": "2026-12-02T12:00:00.000Z", "metadata": body.get("metadata", {}),
                "status_details": {"awaiting_upload": {"upload_url": {
                    "url": f"{UPLOADS}/{number}", "expires_at": "2026-12-02T13:00:00.000Z"}}},
            }
            self.imports[created["id"]] = created
            self.by_key[key] = created["id"]
            return httpx.Response(200, json=created)
        import_id = request.url.path.rsplit("/", 1)[-1]
        found = self.imports.get(import_id)
        if found is None:
            return httpx.Response(404, json={"error": {"type": "invalid_request_error"}})
        return httpx.Response(200, json={k: v for k, v in found.items()
                                         if k != "status_details"})

    def upload(self, request: httpx.Request) -> httpx.Response:
        assert request.method == "PUT"
        number = request.url.path.rsplit("/", 1)[-1]
        import_id = f"pcimprt_test_{number}"
        assert self.imports[import_id]["status"] == "awaiting_upload"
        rows = list(csv.DictReader(io.StringIO(request.content.decode())))
        expected = PRODUCT_COLUMNS if self.imports[import_id]["feed_type"] == "product" \
            else INVENTORY_COLUMNS
        header = request.content.decode().split("\n", 1)[0].split(",")
        assert tuple(header) == expected
        self.uploads[import_id] = rows
        self.raw[import_id] = request.content
        self.imports[import_id]["status"] = self.next_status
        return httpx.Response(200)

    def last(self, feed_type: str) -> tuple[dict[str, Any], list[dict[str, str]]]:
        found = [i for i in self.imports.values() if i["feed_type"] == feed_type]
        return found[-1], self.uploads[found[-1]["id"]]


@pytest.fixture
def stripe_catalog(httpx_mock: HTTPXMock) -> FakeCatalogImports:
    fake = FakeCatalogImports()
    httpx_mock.add_callback(fake.api, url=re.compile(
        rf"{re.escape(API)}/v2/commerce/product_catalog/imports.*"), is_reusable=True,
        is_optional=True)
    httpx_mock.add_callback(fake.upload, url=re.compile(rf"{re.escape(UPLOADS)}/\d+"),
                            is_reusable=True, is_optional=True)
    return fake


async def run(rt: Runtime, waits: list[float] | None = None) -> tuple[str, list[FeedDelivery]]:
    async def no_wait(seconds: float) -> None:
        if waits is not None:
            waits.append(seconds)

    destination = StripeCatalogDestination(StripeCatalogClient(
        rt.outbound_http, "sk_test_catalog", base_url=API, sleep=no_wait))
    ctx = PublishContext(rt.sessionmaker, rt.settings.feed_config(rt.profile),
                         Path(rt.settings.feeds_dir), None)
    [outcome] = await publish_all([destination], ctx)
    async with rt.read_sessionmaker() as db:
        records = list(await db.scalars(select(FeedDelivery).where(
            FeedDelivery.run_id == ctx.run_id).order_by(FeedDelivery.started_at)))
    return outcome.status, records


async def test_full_upload_then_price_stock_and_deletion_updates(
        database_url: str, stripe_catalog: FakeCatalogImports, backend: str) -> None:
    async with sandbox_runtime(database_url) as rt:
        status, [first] = await run(rt)
        assert status == "succeeded"
        created, rows = stripe_catalog.last("product")
        assert created["mode"] == "replace"  # the first upload is the whole catalog
        assert len(rows) >= 72
        jacket = next(r for r in rows if r["id"] == "denim-jacket-m")
        assert jacket["price"] == "97.90 USD"
        assert jacket["link"].startswith("https://")
        assert (first.mode, first.remote_ref, first.remote_status) == (
            "full", created["id"], "processing")
        assert first.items_sent == len(rows)
        assert first.size_bytes > 0
        sent = stripe_catalog.raw[created["id"]]
        assert first.checksum == hashlib.sha256(sent).hexdigest()
        assert first.size_bytes == len(sent)
        assert all(r["link"] and r["image_link"] for r in rows)  # incomplete items skipped
        assert first.file
        assert first.file.endswith(".csv")
        # Incremental: a price change → one product upsert row; a stock change → inventory.
        async with rt.sessionmaker() as db, db.begin():
            await db.execute(update(Variant).where(Variant.id == "ceramic-mug-sand")
                             .values(price_amount=2650))
            await db.execute(update(Variant).where(Variant.id == "desk-lamp-brass")
                             .values(stock=2))
        status, records = await run(rt)
        assert status == "succeeded"
        assert len(records) == 2
        upsert, rows = stripe_catalog.last("product")
        assert upsert["mode"] == "upsert"
        assert [r["id"] for r in rows] == ["ceramic-mug-sand"]
        assert rows[0]["price"] == "26.50 USD"
        inventory, rows = stripe_catalog.last("inventory")
        assert rows == [{"id": "desk-lamp-brass", "availability": "in_stock",
                         "inventory_quantity": "2"}]
        # Deletion: rows with delete=true.
        async with rt.sessionmaker() as db, db.begin():
            await db.execute(delete(Variant).where(Variant.product_id == "poster"))
            await db.execute(delete(Product).where(Product.id == "poster"))
        status, [record] = await run(rt)
        _, rows = stripe_catalog.last("product")
        assert sorted((r["id"], r["delete"]) for r in rows) == [
            ("poster-a1", "true"), ("poster-a2", "true"), ("poster-a3", "true")]
        assert record.items_deleted == 3
        assert record.items_sent == 0
        imports_before = len(stripe_catalog.imports)
        status, records = await run(rt)  # nothing changed: nothing sent
        assert records == []
        assert len(stripe_catalog.imports) == imports_before


async def test_partner_errors_retry_then_fail_and_resend_next_time(
        database_url: str, stripe_catalog: FakeCatalogImports, backend: str) -> None:
    async with sandbox_runtime(database_url) as rt:
        stripe_catalog.create_faults = [500, 429]
        waits: list[float] = []
        status, [record] = await run(rt, waits)
        assert status == "succeeded"
        assert record.attempts == 3
        assert len(waits) == 2
        async with rt.sessionmaker() as db, db.begin():
            await db.execute(update(Variant).where(Variant.id == "ceramic-mug-sand")
                             .values(price_amount=2700))
        stripe_catalog.create_faults = [400]
        status, [failed] = await run(rt)
        assert status == "failed"
        assert "HTTP 400" in (failed.error or "")
        status, [again] = await run(rt)  # not acknowledged: sent again
        _, rows = stripe_catalog.last("product")
        assert status == "succeeded"
        assert [r["id"] for r in rows] == ["ceramic-mug-sand"]


async def test_import_status_is_tracked_and_a_failed_import_triggers_a_full_resend(
        database_url: str, stripe_catalog: FakeCatalogImports, backend: str) -> None:
    async with sandbox_runtime(database_url) as rt:
        status, [first] = await run(rt)
        assert first.remote_status == "processing"
        stripe_catalog.imports[str(first.remote_ref)]["status"] = "succeeded"
        await run(rt)
        async with rt.read_sessionmaker() as db:
            refreshed = await db.get(FeedDelivery, first.id)
        assert refreshed.remote_status == "succeeded"
        # An import that Stripe later reports failed: everything is sent again, in full.
        async with rt.sessionmaker() as db, db.begin():
            await db.execute(update(Variant).where(Variant.id == "ceramic-mug-sand")
                             .values(price_amount=2800))
        _, [second] = await run(rt)
        stripe_catalog.imports[str(second.remote_ref)]["status"] = "failed"
        status, records = await run(rt)
        async with rt.read_sessionmaker() as db:
            marked = await db.get(FeedDelivery, second.id)
        assert marked.status == "failed"
        assert marked.remote_status == "failed"
        created, rows = stripe_catalog.last("product")
        assert created["mode"] == "replace"
        assert len(rows) >= 72


async def test_the_stripe_catalog_is_off_unless_enabled(database_url: str,
                                                        backend: str) -> None:
    async with sandbox_runtime(database_url) as rt:
        assert [d.name for d in rt.feed_destinations()] == ["acp_feed_api"]
    async with sandbox_runtime(database_url, stripe_api_key="sk_test_catalog",
                               stripe_catalog_enabled=True) as rt:
        assert "stripe_catalog" in [d.name for d in rt.feed_destinations()]
