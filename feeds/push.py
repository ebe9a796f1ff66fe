"""Pushing the catalog to an agent's Feed API: only what changed since the last
acknowledged push (a content hash per product), in batches, recorded per run."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from feeds.builder import FeedConfig, acp_product
from feeds.feed_api_client import FeedApiClient, FeedApiRejected, FeedApiUnavailable
from feeds.publish import catalog_rows
from models import Agent, FeedPush, FeedPushItem
from models.base import new_id, utc_now
from models.errors import InvalidRequest, NotFound
from models.statuses import DeliveryStatus

log = logging.getLogger("reelcart.feeds")


@dataclass
class PushReport:
    push_id: str
    feed_id: str
    products_total: int
    products_sent: int
    batches: int
    retries: int
    status: str
    error: str | None
    seconds: float


def content_hash(product: dict[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(product, option=orjson.OPT_SORT_KEYS)).hexdigest()


async def _acknowledge(db: AsyncSession, agent_id: str, hashes: dict[str, str]) -> None:
    insert = pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
    now = utc_now()
    stmt = insert(FeedPushItem).values([
        {"agent_id": agent_id, "product_id": pid, "content_hash": h, "pushed_at": now}
        for pid, h in hashes.items()])
    await db.execute(stmt.on_conflict_do_update(
        index_elements=["agent_id", "product_id"],
        set_={"content_hash": stmt.excluded.content_hash,
              "pushed_at": stmt.excluded.pushed_at}))


async def push_feed(sessionmaker: async_sessionmaker[AsyncSession],
                    client_factory: Callable[[str, str | None], FeedApiClient],
                    agent_name: str, config: FeedConfig, *, batch_size: int = 100
                    ) -> PushReport:
    async with sessionmaker() as db, db.begin():
        agent = await db.scalar(select(Agent).where(Agent.name == agent_name))
        if agent is None:
            raise NotFound(f"No agent named {agent_name!r}.", code="agent_not_found")
        if not agent.feed_api_url:
            raise InvalidRequest(f"Agent {agent_name!r} has no Feed API configured.",
                                 code="feed_api_not_configured")
        agent_id, feed_id = agent.id, agent.feed_id
        country = agent.feed_target_country or config.target_country
        client = client_factory(agent.feed_api_url, agent.feed_api_token)
        push = FeedPush(id=new_id("fp"), agent_id=agent_id, feed_id=feed_id,
                        status=DeliveryStatus.running, started_at=utc_now())
        db.add(push)
    started = time.perf_counter()
    total = sent = batches = 0
    error: str | None = None
    try:
        if not feed_id:  # first push: the agent creates the feed and gives us its id
            created = await client.create_feed(country)
            new_id_ = created.get("id") if isinstance(created, dict) else None
            if not isinstance(new_id_, str) or not new_id_:
                raise FeedApiRejected("POST /feeds answered without a feed id "
                                      "(FeedMetadata.id is required)")
            feed_id = new_id_
            async with sessionmaker() as db, db.begin():
                stored = await db.get(Agent, agent_id)
                assert stored is not None
                stored.feed_id = feed_id
        pending: dict[str, tuple[dict[str, Any], str]] = {}

        async def flush() -> None:
            nonlocal sent, batches
            answer = await client.upsert_products(feed_id or "", [p for p, _ in
                                                                  pending.values()])
            if not isinstance(answer, dict) or answer.get("accepted") is not True:
                raise FeedApiRejected("the Feed API did not accept the batch "
                                      "(UpsertProductsResponse.accepted is not true)")
            async with sessionmaker() as db, db.begin():
                await _acknowledge(db, agent_id, {pid: h for pid, (_, h) in pending.items()})
            sent += len(pending)
            batches += 1
            pending.clear()

        known: dict[str, str] = {}
        async with sessionmaker() as db:
            known = dict((await db.execute(select(
                FeedPushItem.product_id, FeedPushItem.content_hash).where(
                FeedPushItem.agent_id == agent_id))).tuples().all())
        async for product_row in catalog_rows(sessionmaker):
            total += 1
            product = acp_product(product_row, config)
            digest = content_hash(product)
            if known.get(product_row.id) == digest:
                continue
            pending[product_row.id] = (product, digest)
            if len(pending) >= batch_size:
                await flush()
        if pending:
            await flush()
        await client.get_feed(feed_id)  # verify the feed exists and answers
        status = DeliveryStatus.succeeded
    except (FeedApiUnavailable, FeedApiRejected) as exc:
        status, error = DeliveryStatus.failed, str(exc)[:2000]
    except Exception as exc:  # any other fault ends this push as failed, never `running`
        log.exception("feed push failed", extra={"agent_id": agent_id})
        status, error = DeliveryStatus.failed, f"{type(exc).__name__}: {str(exc)[:300]}"
    seconds = time.perf_counter() - started
    async with sessionmaker() as db, db.begin():
        record = await db.get(FeedPush, push.id)
        assert record is not None
        record.feed_id, record.status, record.error = feed_id, status, error
        record.products_total, record.products_sent, record.batches = total, sent, batches
        record.retries = client.retries
        record.duration_ms = int(seconds * 1000)
        record.finished_at = utc_now()
    return PushReport(push.id, feed_id or "", total, sent, batches, client.retries, status,
                      error, seconds)
