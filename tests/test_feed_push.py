"""Pushing to an agent-hosted ACP Feed API (faked at the HTTP layer): only changed
products on the second push, retries through 429 and 503, each push recorded."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from pytest_httpx import HTTPXMock
from sqlalchemy import select, update

from api.runtime import Runtime, build_runtime
from feeds.feed_api_client import FeedApiClient
from feeds.push import push_feed
from models import Agent, FeedPush, Variant
from tests.acp_schema import assert_valid
from tests.conftest import make_settings, reset_database

BASE = "https://agent.test/acp"


@dataclass
class FakeFeedApi:
    feeds: dict[str, dict[str, Any]] = field(default_factory=dict)
    products: dict[str, dict[str, Any]] = field(default_factory=dict)
    patches: list[list[str]] = field(default_factory=list)
    faults: list[int] = field(default_factory=list)
    auth: list[str | None] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.auth.append(request.headers.get("Authorization"))
        assert request.headers["API-Version"] == "2026-04-17"
        if self.faults:
            status = self.faults.pop(0)
            return httpx.Response(status, headers={"Retry-After": "1"} if status == 429
                                  else {}, json={"type": "service_unavailable",
                                                 "code": "busy", "message": "try later"})
        path = request.url.path.removeprefix("/acp")
        if request.method == "POST" and path == "/feeds":
            feed = {"id": f"feed_{len(self.feeds) + 1}",
                    "target_country": json.loads(request.content).get("target_country")}
            self.feeds[feed["id"]] = feed
            return httpx.Response(201, json=feed)
        match = re.fullmatch(r"/feeds/([^/]+)(/products)?", path)
        assert match, path
        if match.group(1) not in self.feeds:
            return httpx.Response(404, json={"type": "invalid_request",
                                             "code": "feed_not_found", "message": "no"})
        if request.method == "GET":
            return httpx.Response(200, json=self.feeds[match.group(1)])
        products = json.loads(request.content)["products"]
        for product in products:
            assert_valid(product, "Product", "schema.feed.json")
            self.products[product["id"]] = product
        self.patches.append([p["id"] for p in products])
        return httpx.Response(200, json={"id": match.group(1), "accepted": True})


@pytest.fixture
def feed_api(httpx_mock: HTTPXMock) -> FakeFeedApi:
    fake = FakeFeedApi()
    httpx_mock.add_callback(fake, url=re.compile(rf"{re.escape(BASE)}/.*"), is_reusable=True,
                            is_optional=True)
    return fake


async def runtime_with_feed_api(database_url: str, settings: dict[str, Any] | None = None,
                                **agent_columns: Any) -> Runtime:
    """A fresh shop whose development agent has a Feed API at the fake's address."""
    await reset_database(database_url)
    rt = build_runtime(make_settings(database_url, **(settings or {})))
    await rt.ensure_dev_agent()
    async with rt.sessionmaker() as db, db.begin():
        await db.execute(update(Agent).where(Agent.name == "development").values(
            feed_api_url=BASE, **agent_columns))
    return rt


async def test_second_push_sends_only_changed_products_and_survives_429_and_503(
        database_url: str, feed_api: FakeFeedApi, backend: str) -> None:
    rt = await runtime_with_feed_api(database_url, feed_api_token="feed-token",
                                     feed_target_country="US")
    waits: list[float] = []

    async def no_wait(seconds: float) -> None:
        waits.append(seconds)

    def client(url: str, token: str | None) -> FeedApiClient:
        return FeedApiClient(rt.outbound_http, url, token, sleep=no_wait)

    config = rt.settings.feed_config()
    feed_api.faults = [429, 503]  # the first request (create feed) meets both
    first = await push_feed(rt.sessionmaker, client, "development", config, batch_size=10)
    assert first.status == "succeeded", first.error
    assert first.products_sent == first.products_total == len(feed_api.products) > 20
    assert first.retries == 2
    assert waits[0] == 1.0  # Retry-After honoured
    assert feed_api.auth[0] == "Bearer feed-token"
    assert all(len(batch) <= 10 for batch in feed_api.patches)
    # Change one variant's price: the next push sends exactly that product.
    async with rt.sessionmaker() as db, db.begin():
        await db.execute(update(Variant).where(Variant.id == "ceramic-mug-sand")
                         .values(price_amount=2600))
    feed_api.patches.clear()
    second = await push_feed(rt.sessionmaker, client, "development", config)
    assert second.status == "succeeded"
    assert feed_api.patches == [["ceramic-mug"]]
    assert second.products_sent == 1
    sand = next(v for v in feed_api.products["ceramic-mug"]["variants"]
                if v["id"] == "ceramic-mug-sand")
    assert sand["price"]["amount"] == 2600
    third = await push_feed(rt.sessionmaker, client, "development", config)
    assert third.products_sent == 0
    async with rt.read_sessionmaker() as db:
        pushes = list(await db.scalars(select(FeedPush).order_by(FeedPush.started_at)))
        agent = await db.scalar(select(Agent).where(Agent.name == "development"))
    assert [p.products_sent for p in pushes] == [first.products_sent, 1, 0]
    assert agent.feed_id == "feed_1"
    assert len(feed_api.feeds) == 1  # the feed was created once
    await rt.close()


async def test_a_push_that_keeps_failing_is_recorded_as_failed(
        database_url: str, feed_api: FakeFeedApi, backend: str) -> None:
    rt = await runtime_with_feed_api(database_url)

    async def no_wait(seconds: float) -> None:
        return None

    feed_api.faults = [503] * 5
    report = await push_feed(rt.sessionmaker,
                             lambda u, t: FeedApiClient(rt.outbound_http, u, t, sleep=no_wait),
                             "development", rt.settings.feed_config())
    assert report.status == "failed"
    assert "HTTP 503" in (report.error or "")
    async with rt.read_sessionmaker() as db:
        push = await db.scalar(select(FeedPush))
    assert push.status == "failed"
    assert push.error
    await rt.close()


async def test_refresh_request_rebuilds_files_and_pushes_in_the_worker(
        database_url: str, feed_api: FakeFeedApi, tmp_path, backend: str) -> None:
    from api.worker import run_once
    from feeds.refresh import request_refresh

    rt = await runtime_with_feed_api(database_url, settings={"feeds_dir": tmp_path})
    async with rt.sessionmaker() as db, db.begin():
        assert await request_refresh(db, "catalog_import")
        assert not await request_refresh(db, "catalog_import")  # one is already waiting
    await run_once(rt, wait=60)  # the build runs in a process of its own
    assert (tmp_path / "acp" / "products-00001.jsonl").is_file()
    assert json.loads((tmp_path / "report.json").read_text())["variants"] >= 72
    assert len(feed_api.products) >= 24
    await rt.close()


async def test_a_feed_api_answering_200_without_id_fails_that_agent_only(
        database_url: str, feed_api: FakeFeedApi, httpx_mock: HTTPXMock, tmp_path,
        backend: str) -> None:
    """Issue 12: the broken agent gets a clear failure; the refresh completes; no push row
    stays `running`; the healthy agent is not pushed again by a retry."""
    from api.worker import run_once
    from feeds.refresh import request_refresh
    from models import OutboxMessage
    from models.base import new_id

    broken_calls: list[str] = []

    def broken(request: httpx.Request) -> httpx.Response:
        broken_calls.append(f"{request.method} {request.url.path}")
        return httpx.Response(200, json={"target_country": "US"})  # FeedMetadata.id missing

    httpx_mock.add_callback(broken, url=re.compile(r"https://broken\.test/.*"),
                            is_reusable=True)
    rt = await runtime_with_feed_api(database_url, settings={"feeds_dir": tmp_path})
    async with rt.sessionmaker() as db, db.begin():
        db.add(Agent(id=new_id("agt"), name="broken-agent",
                     feed_api_url="https://broken.test/acp"))
        assert await request_refresh(db, "catalog_import")
    await run_once(rt, wait=60)
    async with rt.read_sessionmaker() as db:
        pushes = list(await db.scalars(select(FeedPush)))
        agents = {a.id: a.name for a in await db.scalars(select(Agent))}
        message = await db.scalar(select(OutboxMessage).where(
            OutboxMessage.topic == "feeds_refresh"))
    by_agent = {agents[p.agent_id]: p for p in pushes}
    assert by_agent["broken-agent"].status == "failed"
    assert "without a feed id" in (by_agent["broken-agent"].error or "")
    assert by_agent["development"].status == "succeeded"
    assert all(p.status != "running" for p in pushes)
    assert message.status == "delivered"  # not retried: no re-push to the healthy agent
    patches_after_first = len(feed_api.patches)
    assert patches_after_first > 0
    assert broken_calls == ["POST /acp/feeds"]
    await run_once(rt)  # nothing due: the refresh is not redelivered
    assert len(feed_api.patches) == patches_after_first
    await rt.close()
