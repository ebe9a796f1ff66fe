"""One publish concept for every destination: after a build, each configured destination
gets the catalog its own way, independently (one failing never blocks the others), and
every delivery is recorded (``feed_deliveries``; ACP Feed API pushes in ``feed_pushes``).

    ACP Feed API (per agent) · OpenAI over SFTP · Google Merchant API · Stripe catalog

A delivery record is committed before the partner is called and finished afterwards; a
destination that raises has its running records closed as failed.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from feeds import repository
from feeds.builder import FeedConfig
from feeds.google import (
    digest,
    input_name,
    missing_api_fields,
    missing_tsv_fields,
    product_input,
)
from feeds.google_client import MerchantApiClient, Operation
from feeds.publish import BuildReport, catalog_rows
from feeds.push import push_feed
from feeds.sftp import SftpTarget, upload_files
from feeds.stripe_catalog import (
    FINAL_STATUSES,
    INVENTORY_COLUMNS,
    PRODUCT_COLUMNS,
    CsvSpool,
    StripeCatalogClient,
    inventory_row,
    product_rows,
)
from models import Agent, DeliveryStatus, Destination, FeedDelivery
from models.base import new_id, utc_now

log = logging.getLogger("reelcart.feeds")
Sessionmaker = async_sessionmaker[AsyncSession]
STALE_AFTER = timedelta(hours=6)  # a delivery still `running` after this was interrupted


@dataclass
class PublishContext:
    sessionmaker: Sessionmaker
    config: FeedConfig
    feeds_dir: Path
    build: BuildReport | None
    run_id: str = field(default_factory=lambda: new_id("run"))


@dataclass
class Outcome:
    destination: str
    status: str
    detail: str = ""


class FeedDestination(Protocol):
    name: str

    async def publish(self, ctx: PublishContext) -> Outcome: ...


async def _in_tx(ctx: PublishContext, work: Callable[[AsyncSession], Awaitable[Any]]) -> Any:
    async with ctx.sessionmaker() as db, db.begin():
        return await work(db)


async def publish_all(destinations: Sequence[FeedDestination], ctx: PublishContext
                      ) -> list[Outcome]:
    """Every destination at once; each one's failure is its own."""
    await _in_tx(ctx, lambda db: repository.fail_stale_running(
        db, utc_now() - STALE_AFTER))

    async def guarded(destination: FeedDestination) -> Outcome:
        try:
            return await destination.publish(ctx)
        except Exception as exc:
            log.exception("feed destination failed", extra={"destination": destination.name})
            error = f"{type(exc).__name__}: {str(exc)[:300]}"
            await _in_tx(ctx, lambda db: db.execute(
                update(FeedDelivery).where(FeedDelivery.run_id == ctx.run_id,
                                           FeedDelivery.destination == destination.name,
                                           FeedDelivery.status == DeliveryStatus.running)
                .values(status=DeliveryStatus.failed, error=error, finished_at=utc_now())))
            return Outcome(destination.name, DeliveryStatus.failed, error)
    return list(await asyncio.gather(*(guarded(d) for d in destinations)))


# ------------------------------------------------------------------ ACP Feed API

class AcpFeedApiDestination:
    """Every agent with a Feed API, one after another, each push on its own."""

    name: str = Destination.acp_feed_api

    def __init__(self, client_factory: Callable[[str, str | None], Any]) -> None:
        self.client_factory = client_factory

    async def publish(self, ctx: PublishContext) -> Outcome:
        async with ctx.sessionmaker() as db:
            agents = list(await db.scalars(select(Agent.name).where(
                Agent.feed_api_url.is_not(None)).order_by(Agent.name)))
        failures = []
        for name in agents:
            try:
                report = await push_feed(ctx.sessionmaker, self.client_factory, name,
                                         ctx.config)
            except Exception as exc:  # e.g. a refused URL: this agent only
                failures.append(f"{name}: {type(exc).__name__}: {str(exc)[:200]}")
                continue
            if report.status != DeliveryStatus.succeeded:
                failures.append(f"{name}: {report.error}")
        status = DeliveryStatus.failed if failures else DeliveryStatus.succeeded
        return Outcome(self.name, status, "; ".join(failures)[:500] or
                       f"{len(agents)} agent(s)")


# ------------------------------------------------------------------ OpenAI over SFTP

class OpenAISftpDestination:
    name: str = Destination.openai_sftp

    def __init__(self, target: SftpTarget, fmt: str = "jsonl", *,
                 resolve: Callable[[str], Awaitable[str]] | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 attempts: int = 4) -> None:
        self.target = target
        self.fmt = fmt
        self.resolve = resolve  # vets the merchant-configured host (outbound policy)
        self.sleep = sleep
        self.attempts = attempts

    async def publish(self, ctx: PublishContext) -> Outcome:
        if ctx.build is None:
            return Outcome(self.name, DeliveryStatus.failed, "no build to deliver")
        # This build's own files, even if a later build has been published since.
        root = ctx.feeds_dir / ctx.build.generation
        files = [root / f for f in ctx.build.files.get(f"openai_{self.fmt}", [])]
        if not files:
            return Outcome(self.name, DeliveryStatus.failed,
                           f"the build has no openai {self.fmt} files")
        variants = ctx.build.variants
        records = await _in_tx(ctx, lambda db: _start_many(db, ctx, self.name, files))
        target = self.target
        if self.resolve is not None:
            target = replace(target, connect_host=await self.resolve(target.host))
        shard = re.compile(rf"products-\d{{5}}\.{re.escape(self.fmt)}\.gz")
        results = await upload_files(target, files, attempts=self.attempts, sleep=self.sleep,
                                     stale=lambda name: shard.fullmatch(name) is not None)

        async def record(db: AsyncSession) -> None:
            for delivery_id, result in zip(records, results, strict=True):
                await repository.finish_delivery(
                    db, delivery_id, size_bytes=result.size_bytes, checksum=result.checksum,
                    attempts=result.attempts, duration_ms=int(result.seconds * 1000),
                    status=DeliveryStatus.succeeded if result.ok else DeliveryStatus.failed,
                    error=result.error, items_sent=variants if result.ok
                    and len(files) == 1 else 0)
        await _in_tx(ctx, record)
        failed = [r for r in results if not r.ok]
        if failed:
            return Outcome(self.name, DeliveryStatus.failed, failed[0].error or "")
        return Outcome(self.name, DeliveryStatus.succeeded, f"{len(results)} file(s)")


async def _start_many(db: AsyncSession, ctx: PublishContext, destination: str,
                      files: list[Path]) -> list[str]:
    return [await repository.start_delivery(db, destination=destination, run_id=ctx.run_id,
                                            mode="full", file=f.name) for f in files]


# ------------------------------------------------------------------ Google Merchant API

class GoogleMerchantDestination:
    name: str = Destination.google_merchant

    def __init__(self, client: MerchantApiClient, *, account_id: str, data_source_id: str,
                 content_language: str = "en", feed_label: str = "US",
                 batch_size: int = 100) -> None:
        self.client = client
        self.account = account_id
        self.data_source = f"accounts/{account_id}/dataSources/{data_source_id}"
        self.language = content_language
        self.label = feed_label
        self.batch_size = batch_size

    async def publish(self, ctx: PublishContext) -> Outcome:
        started = time.perf_counter()
        async with ctx.sessionmaker() as db:
            known = await repository.known_items(db, self.name)
        mode = "incremental" if known else "full"
        delivery_id = await _in_tx(ctx, lambda db: repository.start_delivery(
            db, destination=self.name, run_id=ctx.run_id, mode=mode))
        sent = deleted = failed = skipped = 0
        errors: list[str] = []
        seen: set[str] = set()
        pending: list[tuple[Operation, str | None]] = []

        async def flush() -> None:
            nonlocal sent, deleted, failed
            results = await self.client.run([op for op, _ in pending])
            acked: dict[str, tuple[str, str | None]] = {}
            gone: list[str] = []
            for (op, content), result in zip(pending, results, strict=True):
                if result.ok or (op.method == "DELETE" and result.status == 404):
                    if content is None:
                        gone.append(op.key)
                        deleted += 1
                    else:
                        acked[op.key] = (content, None)
                        sent += 1
                else:
                    failed += 1
                    message = str(result.body.get("error", {}).get("message", "")
                                  if isinstance(result.body.get("error"), dict)
                                  else result.body.get("error", ""))
                    errors.append(f"{op.key}: HTTP {result.status} {message[:120]}")

            async def ack(db: AsyncSession) -> None:
                await repository.acknowledge_items(db, self.name, acked)
                await repository.forget_items(db, self.name, gone)
            await _in_tx(ctx, ack)
            pending.clear()

        insert_path = (f"/products/v1/accounts/{self.account}/productInputs:insert"
                       f"?dataSource={self.data_source}")
        async for product in catalog_rows(ctx.sessionmaker):
            for variant in product.variants:
                seen.add(variant.id)
                body = product_input(product, variant, ctx.config,
                                     content_language=self.language, feed_label=self.label)
                if missing_api_fields(body):  # Google would refuse it: not sent
                    seen.discard(variant.id)
                    skipped += 1
                    continue
                content = digest(body)
                if known.get(variant.id, (None, None))[0] == content:
                    continue
                pending.append((Operation(variant.id, "POST", insert_path, body), content))
                if len(pending) >= self.batch_size:
                    await flush()
        for item_id in known.keys() - seen:  # gone from the catalog: delete at Google
            name = input_name(self.account, self.language, self.label, item_id)
            pending.append((Operation(item_id, "DELETE",
                                      f"/products/v1/{name}?dataSource={self.data_source}"),
                            None))
            if len(pending) >= self.batch_size:
                await flush()
        if pending:
            await flush()
        status = DeliveryStatus.failed if failed else DeliveryStatus.succeeded
        error = "; ".join(errors[:5])[:1000] or None
        await _in_tx(ctx, lambda db: repository.finish_delivery(
            db, delivery_id, status=status, items_sent=sent, items_deleted=deleted,
            items_failed=failed, attempts=self.client.retries + 1, error=error,
            duration_ms=int((time.perf_counter() - started) * 1000)))
        return Outcome(self.name, status, error or f"{sent} sent, {deleted} deleted, "
                                                   f"{skipped} skipped (missing attributes)")


# ------------------------------------------------------------------ Stripe catalog

class StripeCatalogDestination:
    name: str = Destination.stripe_catalog

    def __init__(self, client: StripeCatalogClient) -> None:
        self.client = client

    async def refresh_statuses(self, ctx: PublishContext) -> bool:
        """Update imports still processing at Stripe. True if one ended ``failed`` (then
        everything is sent again in full, as we cannot tell which rows it carried)."""
        async with ctx.sessionmaker() as db:
            open_ = [(d.id, d.remote_ref) for d in
                     await repository.open_deliveries(db, self.name)]
        any_failed = False
        for delivery_id, ref in open_:
            answer = await self.client.retrieve(ref)
            status = str(answer.get("status", ""))
            any_failed |= status == "failed"

            async def save(db: AsyncSession, delivery_id: str = delivery_id,
                           status: str = status) -> None:
                values: dict[str, Any] = {"remote_status": status}
                if status == "failed":
                    values.update(status=DeliveryStatus.failed,
                                  error="Stripe reported the import failed")
                await db.execute(update(FeedDelivery).where(FeedDelivery.id == delivery_id)
                                 .values(**values))
            await _in_tx(ctx, save)
        if any_failed:
            await _in_tx(ctx, lambda db: repository.forget_all(db, self.name))
        return any_failed

    async def publish(self, ctx: PublishContext) -> Outcome:
        await self.refresh_statuses(ctx)
        async with ctx.sessionmaker() as db:
            known = await repository.known_items(db, self.name)
        full = not known
        products, inventory = CsvSpool(PRODUCT_COLUMNS), CsvSpool(INVENTORY_COLUMNS)
        hashes: dict[str, tuple[str, str | None]] = {}
        seen: set[str] = set()
        try:
            async for product in catalog_rows(ctx.sessionmaker):
                rows = product_rows(product, ctx.config)
                for variant, row in zip(product.variants, rows, strict=True):
                    if missing_tsv_fields(row):  # Stripe would refuse the row: not sent
                        continue
                    seen.add(variant.id)
                    stock_row = inventory_row(variant)
                    content = digest({k: v for k, v in row.items() if k != "availability"})
                    stock = digest(stock_row or {"availability": row["availability"]})
                    hashes[variant.id] = (content, stock)
                    before = known.get(variant.id)
                    if full or before is None or before[0] != content:
                        products.add(row)
                    elif before[1] != stock:
                        if stock_row is not None:
                            inventory.add(stock_row)
                        else:
                            products.add(row)
            removed = sorted(known.keys() - seen)
            for item_id in removed:
                products.add({"id": item_id, "delete": "true"})
            outcomes: list[str] = []
            failed = False
            for feed_type, mode, spool in (
                    ("product", "replace" if full else "upsert", products),
                    ("inventory", "upsert", inventory)):
                if not spool.rows:
                    continue
                ok = await self._send(ctx, feed_type, mode, spool,
                                      full=full and feed_type == "product")
                failed |= not ok
                outcomes.append(f"{feed_type}:{spool.rows}{'' if ok else ' failed'}")
        finally:
            products.close()
            inventory.close()
        if not failed:
            async def ack(db: AsyncSession) -> None:
                await repository.acknowledge_items(db, self.name, hashes)
                await repository.forget_items(db, self.name, removed)
            await _in_tx(ctx, ack)
        status = DeliveryStatus.failed if failed else DeliveryStatus.succeeded
        return Outcome(self.name, status, ", ".join(outcomes) or "nothing changed")

    async def _send(self, ctx: PublishContext, feed_type: str, mode: str, spool: CsvSpool,
                    *, full: bool) -> bool:
        size, sha256 = spool.finish()
        file = f"stripe-{feed_type}-{ctx.run_id}.csv"
        started = time.perf_counter()
        delivery_id = await _in_tx(ctx, lambda db: repository.start_delivery(
            db, destination=self.name, run_id=ctx.run_id,
            mode="full" if full else "incremental", file=file))
        outcome: dict[str, Any] = {"size_bytes": size, "checksum": sha256,
                                   "items_sent": spool.rows - spool.deleted,
                                   "items_deleted": spool.deleted}
        try:
            created = await self.client.create_import(
                feed_type, mode, idempotency_key=f"{ctx.run_id}-{feed_type}",
                metadata={"reelcart_run": ctx.run_id, "file_name": file})
            outcome["remote_ref"] = str(created["id"])
            await self.client.upload(created, spool, size)
            current = await self.client.retrieve(str(created["id"]))
            remote = str(current.get("status", "processing"))
            outcome["remote_status"] = remote
            ok = remote != "failed"
            outcome["status"] = DeliveryStatus.succeeded if ok else DeliveryStatus.failed
            if not ok:
                outcome["error"] = "Stripe reported the import failed"
            if remote in FINAL_STATUSES and remote != "failed":
                outcome["status"] = DeliveryStatus.succeeded
        except Exception as exc:
            ok = False
            outcome["status"] = DeliveryStatus.failed
            outcome["error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
        outcome["attempts"] = self.client.retries + 1
        outcome["duration_ms"] = int((time.perf_counter() - started) * 1000)
        await _in_tx(ctx, lambda db: repository.finish_delivery(db, delivery_id, **outcome))
        return ok

