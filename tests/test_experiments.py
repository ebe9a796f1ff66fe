"""Creative experiments end to end: platform views + orders credited in the attribution
ledger by real agent checkouts → the report (posterior intervals, probability to be
best, verdict) → promoting the winner makes it the product's video in the feeds and in
MCP catalog results (idempotently)."""

from __future__ import annotations

import gzip
import json
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import BigInteger, cast, func, select

from api.runtime import Runtime
from creatives.stats import prob_b_beats_a
from models import LedgerEntry
from models.base import utc_now
from tests.conftest import US_ADDRESS, Agent
from tests.mcp_client import call, mcp_session, serving

MERCHANT = {"Authorization": "Bearer merchant-key"}
TODAY = utc_now().date()
# vid-old is the older video: the feeds would pick vid-new (newest first) until promoted.
VIDEOS = [{"id": "vid-old", "title": "Old cut", "published_url": "https://tiktok.test/old",
           "published_at": "2026-10-01T10:00:00Z",
           "products": [{"product_id": "spec-items"}]},
          {"id": "vid-new", "title": "New cut", "published_url": "https://tiktok.test/new",
           "published_at": "2026-11-01T10:00:00Z",
           "products": [{"product_id": "spec-items"}]},
          {"id": "vid-other", "title": "Elsewhere", "published_url": "https://tiktok.test/x",
           "products": [{"product_id": "scarce"}]}]


async def merchant_post(client: httpx.AsyncClient, path: str, body: dict, key: str
                        ) -> httpx.Response:
    return await client.post(path, json=body, headers={**MERCHANT, "Idempotency-Key": key})


@pytest.fixture
async def shop(seller: Agent, merchant_runtime: Runtime):
    for video in VIDEOS:
        resp = await merchant_post(seller.http, "/videos", video, f"v-{video['id']}")
        assert resp.status_code == 201, resp.text
    return seller, merchant_runtime


async def sell(agent: Agent, video_id: str) -> None:
    """A real agent checkout crediting ``video_id`` (ACP affiliate_attribution)."""
    session = (await agent.create(
        line_items=[{"id": "item_123"}], fulfillment_details={"address": US_ADDRESS},
        affiliate_attribution={"provider": "tiktok", "token": "atp_test_token_1",
                               "creative_id": video_id})).json()
    done = await agent.complete(session["id"])
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "completed"


async def views(client: httpx.AsyncClient, per_video: dict[str, int], key: str) -> None:
    counts = [{"video_id": v, "day": (TODAY - timedelta(days=1)).isoformat(), "views": n}
              for v, n in per_video.items()]
    resp = await merchant_post(client, "/video-views", {"source": "tiktok", "counts": counts},
                               key)
    assert resp.status_code == 200, resp.text


def experiment(**extra: object) -> dict:
    return {"name": "Old vs new", "product_id": "spec-items",
            "video_ids": ["vid-new", "vid-old"],
            "starts_on": (TODAY - timedelta(days=3)).isoformat(), **extra}


async def ledger_net(rt: Runtime, video_id: str) -> int:
    async with rt.sessionmaker() as db:
        return int(await db.scalar(select(cast(func.sum(LedgerEntry.net), BigInteger)).where(
            LedgerEntry.video_id == video_id, LedgerEntry.model == "last_touch")) or 0)


async def refreshes_queued(rt: Runtime) -> int:
    from feeds.refresh import FEEDS_REFRESH
    from models import OutboxMessage

    async with rt.sessionmaker() as db:
        return int(await db.scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.topic == FEEDS_REFRESH)) or 0)


async def test_experiment_report_promote_feeds_and_mcp(shop, backend: str,
                                                       tmp_path: Path) -> None:
    agent, rt = shop
    client = agent.http
    for _ in range(6):
        await sell(agent, "vid-old")
    await views(client, {"vid-old": 2000, "vid-new": 2000}, "views-1")

    created = await merchant_post(client, "/experiments",
                                  experiment(min_views=1000, min_orders=5), "x1")
    assert created.status_code == 201, created.text
    report = created.json()
    arms = {v["video_id"]: v for v in report["variants"]}
    assert (arms["vid-old"]["views"], arms["vid-old"]["orders"]) == (2000, 6)
    assert (arms["vid-new"]["views"], arms["vid-new"]["orders"]) == (2000, 0)
    net = await ledger_net(rt, "vid-old")
    assert net > 0
    assert arms["vid-old"]["revenue"] == {"amount": net, "currency": "usd"}
    assert arms["vid-old"]["revenue_per_1000_views"]["amount"] == round(net * 1000 / 2000)
    # The exact two-arm probability of Beta(7, 1995) beating Beta(1, 2001).
    assert report["method"] == "exact"
    assert arms["vid-old"]["p_best"] == pytest.approx(prob_b_beats_a(1, 2001, 7, 1995))
    assert arms["vid-old"]["p_best"] > 0.95
    c = arms["vid-old"]["conversion"]
    assert c["low"] < 6 / 2000 < c["high"]
    assert c["mean"] == pytest.approx(7 / 2002)
    assert report["verdict"] == "winner"
    assert report["winner_video_id"] == "vid-old"

    # Before promotion the feeds and MCP pick the newest video.
    async def featured() -> tuple[str, str, str]:
        from feeds.publish import build_feeds

        await build_feeds(rt.sessionmaker, tmp_path, rt.settings.feed_config(),
                          openai_formats=("jsonl",))
        with gzip.open(tmp_path / "openai/products-00001.jsonl.gz") as f:
            item = next(json.loads(line) for line in f
                        if json.loads(line).get("group_id") == "spec-items")
        acp = next(json.loads(line) for line in
                   (tmp_path / "acp/products-00001.jsonl").read_text().splitlines()
                   if json.loads(line)["id"] == "spec-items")
        acp_video = next(m["url"] for m in acp["media"] if m["type"] == "video")
        async with serving(rt) as app, mcp_session(app) as session:
            detail, _ = await call(session, "get_product", {"product_id": "spec-items"})
        return item["video_url"], acp_video, detail["videos"][0]["id"]

    assert await featured() == ("https://tiktok.test/new", "https://tiktok.test/new",
                                "vid-new")

    promoted = await merchant_post(client, f"/experiments/{report['id']}/promote", {}, "p1")
    assert promoted.status_code == 200, promoted.text
    assert promoted.json()["video_id"] == "vid-old"
    assert promoted.json()["changed"] is True
    assert await refreshes_queued(rt) == 1  # the feeds carry the product's video
    again = await merchant_post(client, f"/experiments/{report['id']}/promote", {}, "p2")
    assert again.json()["changed"] is False  # idempotent
    assert again.json()["promoted_at"] == promoted.json()["promoted_at"]

    assert await featured() == ("https://tiktok.test/old", "https://tiktok.test/old",
                                "vid-old")
    got = (await client.get(f"/experiments/{report['id']}", headers=MERCHANT)).json()
    assert got["status"] == "concluded"
    assert got["promoted_video_id"] == "vid-old"
    listed = (await client.get("/experiments?product_id=spec-items", headers=MERCHANT)).json()
    assert [x["id"] for x in listed["data"]] == [report["id"]]


async def test_no_winner_on_a_small_sample_and_promotion_needs_one(shop, backend: str) -> None:
    agent, _ = shop
    client = agent.http
    for _ in range(3):
        await sell(agent, "vid-old")
    await views(client, {"vid-old": 60, "vid-new": 60}, "views-s")
    report = (await merchant_post(client, "/experiments", experiment(), "x2")).json()
    old = next(v for v in report["variants"] if v["video_id"] == "vid-old")
    assert old["p_best"] > 0.9  # leaning, on 60 views each …
    assert report["verdict"] == "insufficient_views"
    assert report["winner_video_id"] is None
    refused = await merchant_post(client, f"/experiments/{report['id']}/promote", {}, "p3")
    assert refused.status_code == 409
    assert refused.json()["code"] == "no_winner"
    # The merchant may still choose a variant explicitly; a non-variant is refused.
    chosen = await merchant_post(client, f"/experiments/{report['id']}/promote",
                                 {"video_id": "vid-new"}, "p4")
    assert chosen.status_code == 200
    assert chosen.json()["video_id"] == "vid-new"
    other = await merchant_post(client, f"/experiments/{report['id']}/promote",
                                {"video_id": "vid-other"}, "p5")
    assert other.status_code == 400
    assert other.json()["param"] == "$.video_id"


@pytest.mark.parametrize(("body", "param", "words"), [
    (experiment(video_ids=["vid-new", "vid-other"]), "$.video_ids[1]",
     "does not feature the product"),
    (experiment(video_ids=["vid-new", "vid-ghost"]), "$.video_ids[1]", "does not exist"),
    (experiment(product_id="nope"), "$.product_id", "Unknown product"),
])
async def test_variants_must_promote_the_product(shop, backend: str, body: dict, param: str,
                                                 words: str) -> None:
    agent, _ = shop
    resp = await merchant_post(agent.http, "/experiments", body, "bad")
    assert resp.status_code == 400, resp.text
    assert resp.json()["param"] == param
    assert words in resp.json()["message"]
    one = await merchant_post(agent.http, "/experiments", experiment(video_ids=["vid-new"]),
                              "one")
    assert one.status_code == 400
    missing = await agent.http.get("/experiments/exp_nope", headers=MERCHANT)
    assert missing.status_code == 404
    assert missing.json()["code"] == "experiment_not_found"


async def test_cli_create_report_promote(shop, backend: str, database_url: str) -> None:
    import asyncio

    from tests.test_catalog_import import run_cli

    agent, _ = shop
    for _ in range(6):
        await sell(agent, "vid-old")
    await views(agent.http, {"vid-old": 2000, "vid-new": 2000}, "views-cli")

    def cli(*args: str) -> tuple[int, str, str]:
        done = run_cli("experiments", *args, db_url=database_url)
        return done.returncode, done.stdout, done.stderr

    code, out, err = await asyncio.to_thread(
        cli, "create", "Old vs new", "--product", "spec-items", "--video", "vid-new",
        "--video", "vid-old", "--starts-on", (TODAY - timedelta(days=3)).isoformat(),
        "--min-orders", "5")
    assert code == 0, err
    created = json.loads(out)
    assert created["verdict"] == "winner"
    code, out, _ = await asyncio.to_thread(cli, "report", created["id"])
    assert "Old vs new (spec-items): winner, winner vid-old" in out
    assert "vid-old: 2000 views, 6 orders" in out
    code, out, _ = await asyncio.to_thread(cli, "promote", created["id"])
    assert out.strip() == "vid-old promoted for spec-items"
    code, out, _ = await asyncio.to_thread(cli, "promote", created["id"])
    assert out.strip() == "vid-old already promoted for spec-items"
    code, _, err = await asyncio.to_thread(cli, "report", "exp_missing")
    assert code == 1
    assert "does not exist" in err
