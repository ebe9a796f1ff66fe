"""Shoppable links (issue 19): the redirect and its click touch, bots and prefetchers,
pixel views, link tokens joined at checkout, click/view windows with click precedence,
and the touch type and window on every ledger row."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select, update

from api.runtime import Runtime
from links.service import visitor_hash
from models import AttributionTouch, LedgerEntry, LinkTouch, VideoViewCount
from models.base import utc_now
from tests.conftest import US_ADDRESS, Agent, free_port
from tests.test_agent_webhooks import Receiver, configure

MERCHANT = {"Authorization": "Bearer merchant-key"}
BROWSER = {"User-Agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) "
           "AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"}
VIDEOS = [{"id": "vid-click", "campaign": "fall", "products": [{"product_id": "denim-jacket"}]},
          {"id": "vid-view", "products": [{"product_id": "linen-shirt"}]}]


@pytest.fixture
async def shop(seller: Agent, merchant_runtime: Runtime) -> tuple[Agent, Runtime, dict]:
    for video in VIDEOS:
        resp = await seller.http.post("/videos", json=video, headers={
            **MERCHANT, "Idempotency-Key": f"v-{video['id']}"})
        assert resp.status_code == 201, resp.text
    links = {}
    for video_id, product_id, channel in (("vid-click", "denim-jacket", "tiktok"),
                                          ("vid-view", "linen-shirt", "web")):
        links[video_id] = await make_link(seller, video_id=video_id, product_id=product_id,
                                          channel=channel)
    return seller, merchant_runtime, links


async def make_link(agent: Agent, **body: object) -> dict:
    resp = await agent.http.post("/links", json=body, headers={
        **MERCHANT, "Idempotency-Key": f"l-{sorted(body.items())}"})
    assert resp.status_code == 201, resp.text
    return resp.json()


async def link_touches(rt: Runtime) -> list[LinkTouch]:
    await rt.touch_buffer.flush()  # what the writer does every 50 ms
    async with rt.read_sessionmaker() as db:
        return list(await db.scalars(select(LinkTouch).order_by(LinkTouch.touched_at)))


async def buy(rt: Runtime, agent: Agent, **extra: object) -> dict:
    await rt.touch_buffer.flush()  # the clicks are written 50 ms after the redirect
    session = (await agent.create(line_items=[{"id": "item_123"}],
                                  fulfillment_details={"address": US_ADDRESS}, **extra)).json()
    resp = await agent.complete(session["id"])
    assert resp.status_code == 200, resp.text
    return resp.json()


async def sale_rows(rt: Runtime, order_id: str, model: str = "last_touch") -> list[LedgerEntry]:
    async with rt.read_sessionmaker() as db:
        return list(await db.scalars(select(LedgerEntry).where(
            LedgerEntry.order_id == order_id, LedgerEntry.model == model,
            LedgerEntry.kind == "sale")))


async def age(rt: Runtime, touch_id: str, by: timedelta) -> None:
    """The touch happened ``by`` earlier (time passing, without waiting)."""
    async with rt.sessionmaker() as db, db.begin():
        touch = await db.get(LinkTouch, touch_id)
        assert touch is not None
        await db.execute(update(LinkTouch).where(LinkTouch.id == touch_id)
                         .values(touched_at=touch.touched_at - by))


async def test_create_and_list_links(shop, backend: str) -> None:
    agent, rt, links = shop
    link = links["vid-click"]
    assert link["url"] == f"https://shop.test/v/{link['code']}"
    assert link["pixel_url"] == f"https://shop.test/v/{link['code']}/i.gif"
    # The same (video, product, channel) keeps its code; a destination can be set.
    again = await make_link(agent, video_id="vid-click", product_id="denim-jacket",
                            channel="tiktok", destination_url="https://chatgpt.com/?q=denim")
    assert again["code"] == link["code"]
    assert again["destination_url"] == "https://chatgpt.com/?q=denim"
    listed = (await agent.http.get("/links?video_id=vid-click", headers=MERCHANT)).json()
    assert [x["code"] for x in listed["data"]] == [link["code"]]
    got = await agent.http.get(f"/links/{link['code']}", headers=MERCHANT)
    assert got.json()["channel"] == "tiktok"
    assert (await agent.http.get("/links/NOPE0000", headers=MERCHANT)).status_code == 404
    # Bad input: clear 400s in the flat error shape.
    for body, param in (
            ({"video_id": "nope", "product_id": "denim-jacket", "channel": "x"}, "$.video_id"),
            ({"video_id": "vid-click", "product_id": "nope", "channel": "x"}, "$.product_id"),
            ({"video_id": "vid-click", "product_id": "spec-items", "channel": "x"},
             "$.destination_url"),  # no product URL and no destination
            ({"video_id": "vid-click", "product_id": "denim-jacket", "channel": "x",
              "destination_url": "https://10.0.0.5/admin"}, "$.destination_url"),
            ({"video_id": "vid-click", "product_id": "denim-jacket", "channel": "x",
              "destination_url": "https://localhost/x"}, "$.destination_url")):
        resp = await agent.http.post("/links", json=body, headers={
            **MERCHANT, "Idempotency-Key": f"bad-{param}-{body.get('destination_url')}"})
        assert resp.status_code == 400, (body, resp.text)
        assert resp.json()["param"] == param
    resp = await agent.http.post("/links", json={
        "video_id": "vid-click", "product_id": "denim-jacket", "channel": "x",
        "destination_url": "javascript:alert(1)"}, headers={**MERCHANT, "Idempotency-Key": "js"})
    assert resp.status_code == 400


async def test_redirect_records_a_click_with_a_hashed_visitor(shop, backend: str) -> None:
    agent, rt, links = shop
    code = links["vid-click"]["code"]
    resp = await agent.http.get(f"/v/{code}", headers=BROWSER)
    assert resp.status_code == 302
    assert resp.headers["cache-control"].startswith("no-store")
    location = urlsplit(resp.headers["location"])
    assert (location.scheme, location.netloc, location.path) == (
        "https", "shop.example.com", "/products/denim-jacket")
    params = parse_qs(location.query)
    assert params["rc_video"] == ["vid-click"]
    assert params["rc_link"] == [code]
    assert params["utm_source"] == ["tiktok"]
    assert params["utm_campaign"] == ["fall"]
    cookie = resp.cookies["rc_vid"]
    [touch] = await link_touches(rt)
    assert (touch.id, touch.kind, touch.video_id, touch.channel, touch.link_code) == (
        params["rc_click"][0], "click", "vid-click", "tiktok", code)
    assert touch.visitor == visitor_hash(cookie) != cookie
    # The same visitor again: same cookie, a second click.
    agent.http.cookies.set("rc_vid", cookie)
    again = await agent.http.get(f"/v/{code}", headers=BROWSER)
    assert "rc_vid" not in again.cookies
    touches = await link_touches(rt)
    assert len(touches) == 2
    assert touches[0].visitor == touches[1].visitor
    # A merchant's own parameters on a configured destination are kept.
    deep = await make_link(agent, video_id="vid-click", product_id="denim-jacket",
                           channel="openai",
                           destination_url="https://chatgpt.com/?q=denim&utm_source=mine")
    moved = urlsplit((await agent.http.get(f"/v/{deep['code']}", headers=BROWSER))
                     .headers["location"])
    assert moved.netloc == "chatgpt.com"
    assert parse_qs(moved.query)["utm_source"] == ["mine"]
    assert parse_qs(moved.query)["q"] == ["denim"]
    assert (await agent.http.get("/v/NOPE0000", headers=BROWSER)).status_code == 404
    assert (await agent.http.get("/v/bad!code", headers=BROWSER)).status_code in (400, 404)


@pytest.mark.parametrize("headers", [
    {"User-Agent": "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"},
    {"User-Agent": "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)"},
    {"User-Agent": "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"},
    {"User-Agent": "curl/8.5.0"},
    {"User-Agent": ""},
    {**BROWSER, "Sec-Purpose": "prefetch"},
    {**BROWSER, "Sec-Purpose": "prefetch;prerender"},
    {**BROWSER, "Purpose": "prefetch"},
    {**BROWSER, "X-Purpose": "preview"},
], ids=["googlebot", "facebook", "slack", "curl", "no-agent", "sec-purpose", "prerender",
        "purpose", "safari-preview"])
async def test_bots_and_prefetchers_get_the_redirect_but_no_touch(shop, headers,
                                                                   backend: str) -> None:
    agent, rt, links = shop
    code = links["vid-click"]["code"]
    resp = await agent.http.get(f"/v/{code}", headers=headers)
    assert resp.status_code == 302
    params = parse_qs(urlsplit(resp.headers["location"]).query)
    assert params["rc_video"] == ["vid-click"]
    assert "rc_click" not in params
    assert "rc_vid" not in resp.cookies
    pixel = await agent.http.get(f"/v/{code}/i.gif", headers=headers)
    assert pixel.status_code == 200
    assert pixel.content.startswith(b"GIF89a")
    assert await link_touches(rt) == []
    async with rt.read_sessionmaker() as db:
        assert list(await db.scalars(select(VideoViewCount))) == []


async def test_head_requests_are_not_clicks(shop, backend: str) -> None:
    agent, rt, links = shop
    resp = await agent.http.head(f"/v/{links['vid-click']['code']}", headers=BROWSER)
    assert resp.status_code == 302
    assert "rc_click" not in resp.headers["location"]
    assert await link_touches(rt) == []


async def test_pixel_views_count_per_visitor_and_day(shop, backend: str) -> None:
    agent, rt, links = shop
    code = links["vid-view"]["code"]
    first = await agent.http.get(f"/v/{code}/i.gif", headers=BROWSER)
    assert first.headers["content-type"] == "image/gif"
    agent.http.cookies.set("rc_vid", first.cookies["rc_vid"])
    await agent.http.get(f"/v/{code}/i.gif", headers=BROWSER)
    assert (await agent.http.post(f"/v/{code}/beacon", headers=BROWSER)).status_code == 204
    touches = await link_touches(rt)
    assert [t.kind for t in touches] == ["view"] * 3
    assert len({t.visitor for t in touches}) == 1
    async with rt.read_sessionmaker() as db:
        [count] = list(await db.scalars(select(VideoViewCount)))
    assert (count.video_id, count.source, count.views, count.day) == (
        "vid-view", "pixel", 3, utc_now().date())


async def test_link_click_then_agent_checkout_with_the_link_token(shop, backend: str) -> None:
    """Acceptance: link click → touch → agent checkout with the link token → ledger row
    credited as click-through."""
    agent, rt, links = shop
    code = links["vid-click"]["code"]
    resp = await agent.http.get(f"/v/{code}", headers=BROWSER)
    click_id = parse_qs(urlsplit(resp.headers["location"]).query)["rc_click"][0]
    # The agent passes the link code back as the ACP affiliate_attribution token.
    by_code = await buy(rt, agent, affiliate_attribution={"provider": "reelcart", "token": code})
    [row] = await sale_rows(rt, by_code["order"]["id"])
    assert (row.video_id, row.touch_type, row.window_days) == ("vid-click", "click", 7)
    # ... or the click id it found on the landing URL (rc_click), as creative_id: the very
    # click is joined (its time is the touch's time).
    by_click = await buy(rt, agent, affiliate_attribution={
        "provider": "reelcart", "publisher_id": "tiktok", "creative_id": click_id})
    [row] = await sale_rows(rt, by_click["order"]["id"])
    assert (row.video_id, row.touch_type) == ("vid-click", "click")
    [click] = await link_touches(rt)
    assert row.touch_at == click.touched_at
    async with rt.read_sessionmaker() as db:
        touch = await db.scalar(select(AttributionTouch).where(
            AttributionTouch.checkout_session_id == by_click["id"]))
    assert (touch.click_id, touch.link_code, touch.visitor) == (click_id, code, click.visitor)
    # An ordinary claim naming the video is an agent claim.
    claimed = await buy(rt, agent, affiliate_attribution={"provider": "impact.com",
                                                      "token": "secret-token-1",
                                                      "creative_id": "vid-view"})
    [row] = await sale_rows(rt, claimed["order"]["id"])
    assert (row.video_id, row.touch_type) == ("vid-view", "agent_claim")
    # No touch at all: unattributed, no touch type.
    [row] = await sale_rows(rt, (await buy(rt, agent))["order"]["id"])
    assert (row.video_id, row.touch_type) == (None, None)


async def test_ucp_attribution_joins_the_click(shop, backend: str) -> None:
    from protocols.ucp.attribution import to_claim

    claim = to_claim({"rc_click": "clk_X", "rc_link": "abc"}, "gemini.test", "first")
    assert (claim.token, claim.creative_id) == ("clk_X", "abc")


async def test_view_only_touch_credits_inside_the_view_window_only(shop, backend: str) -> None:
    agent, rt, links = shop
    code = links["vid-view"]["code"]
    pixel = await agent.http.get(f"/v/{code}/i.gif", headers=BROWSER)
    visitor = pixel.cookies["rc_vid"]
    # The merchant's web checkout carries the visitor cookie in the session metadata.
    inside = await buy(rt, agent, metadata={"rc_visitor": visitor})
    [row] = await sale_rows(rt, inside["order"]["id"])
    assert (row.video_id, row.touch_type, row.window_days) == ("vid-view", "view", 1)
    [view] = await link_touches(rt)
    await age(rt, view.id, timedelta(hours=25))  # past the 1-day view window
    outside = await buy(rt, agent, metadata={"rc_visitor": visitor})
    [row] = await sale_rows(rt, outside["order"]["id"])
    assert (row.video_id, row.touch_type) == (None, None)


async def test_click_beats_a_later_view(shop, backend: str) -> None:
    agent, rt, links = shop
    click = await agent.http.get(f"/v/{links['vid-click']['code']}", headers=BROWSER)
    visitor = click.cookies["rc_vid"]
    agent.http.cookies.set("rc_vid", visitor)
    [clicked] = await link_touches(rt)
    await age(rt, clicked.id, timedelta(days=3))  # inside the 7-day click window
    await agent.http.get(f"/v/{links['vid-view']['code']}/i.gif", headers=BROWSER)
    order = await buy(rt, agent, metadata={"rc_visitor": visitor})
    for model in ("last_touch", "first_touch", "linear", "position_based"):
        [row] = await sale_rows(rt, order["order"]["id"], model)
        assert (row.video_id, row.touch_type, row.window_days) == ("vid-click", "click", 7)
    # Once the click is out of its window, the view (inside its window) earns the credit.
    await age(rt, clicked.id, timedelta(days=5))
    later = await buy(rt, agent, metadata={"rc_visitor": visitor})
    [row] = await sale_rows(rt, later["order"]["id"])
    assert (row.video_id, row.touch_type, row.window_days) == ("vid-view", "view", 1)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(free_port())
    yield r
    r.stop()


async def test_visitor_cookie_is_used_then_never_stored_or_echoed(
        shop, receiver: Receiver, caplog: pytest.LogCaptureFixture, backend: str) -> None:
    """``metadata.rc_visitor`` (the raw first-party cookie) joins the visitor's touches and
    is then dropped: the session keeps the rest of its metadata, the touch keeps only the
    SHA-256, and the raw value is in no table, response, webhook or log line."""
    from api.logs import JsonFormatter
    from api.worker import run_once
    from models import Base

    caplog.set_level(logging.DEBUG)
    agent, rt, links = shop
    receiver.start()
    await configure(agent, f"http://127.0.0.1:{receiver.port}/hook")
    pixel = await agent.http.get(f"/v/{links['vid-view']['code']}/i.gif", headers=BROWSER)
    visitor = pixel.cookies["rc_vid"]
    agent.http.cookies.clear()  # the agent's own requests do not carry the buyer's cookie
    await rt.touch_buffer.flush()
    created = await agent.create(line_items=[{"id": "item_123"}],
                                 fulfillment_details={"address": US_ADDRESS},
                                 metadata={"rc_visitor": visitor, "campaign": "fall"})
    assert created.status_code == 201, created.text
    session = created.json()
    assert session["metadata"] == {"campaign": "fall"}
    fetched = await agent.get(f"/checkout_sessions/{session['id']}")
    completed = await agent.complete(session["id"])
    assert completed.status_code == 200, completed.text
    while await run_once(rt):
        pass
    [row] = await sale_rows(rt, completed.json()["order"]["id"])
    assert (row.video_id, row.touch_type) == ("vid-view", "view")
    async with rt.read_sessionmaker() as db:
        [touch] = list(await db.scalars(select(AttributionTouch)))
        assert touch.visitor == visitor_hash(visitor)
        stored = []
        for table in Base.metadata.sorted_tables:
            stored += [repr(tuple(r)) for r in (await db.execute(select(table))).all()]
    assert receiver.received
    sent = [created.text, fetched.text, completed.text,
            *(r["body"].decode() for r in receiver.received),
            *(JsonFormatter().format(r) for r in caplog.records)]
    assert visitor not in "\n".join(stored + sent)


async def test_touch_buffer_keeps_touches_through_a_database_outage(tmp_path,
                                                                     backend: str) -> None:
    """A batch the database refuses stays queued and is written once it is back; closing
    the buffer (a graceful stop) writes what is left."""
    from links.buffer import TouchBuffer
    from models.db import create_engine
    from models.migrate import upgrade_async

    url = f"sqlite+aiosqlite:///{tmp_path / 'later.db'}"
    engine = create_engine(url)
    buffer = TouchBuffer(engine, interval=3600)  # no timed flush: only ours
    at = utc_now()
    buffer.add({"id": "clk_1", "kind": "click", "link_code": "abcdefgh", "video_id": "v",
                "channel": "tiktok", "visitor": "h" * 64, "touched_at": at})
    with pytest.raises(Exception, match="link_touches"):
        await buffer.flush()  # no tables yet: the database "is down"
    assert buffer.pending == 1
    await upgrade_async(url)  # it is back
    buffer.add({"id": "imp_2", "kind": "view", "link_code": "abcdefgh", "video_id": "v",
                "channel": "tiktok", "visitor": "h" * 64, "touched_at": at},
               view_of=("v", at.date()))
    await buffer.close()
    assert buffer.pending == 0
    async with engine.connect() as conn:
        from sqlalchemy import text
        ids = (await conn.execute(text("SELECT id FROM link_touches ORDER BY id"))).scalars()
        assert list(ids) == ["clk_1", "imp_2"]
    await engine.dispose()


async def test_links_appear_in_the_feeds_of_their_channel(shop, tmp_path, backend: str) -> None:
    import gzip
    import json
    from dataclasses import replace

    from feeds.publish import build_feeds
    from tests.test_feeds import CONFIG

    agent, rt, links = shop
    by_channel = {channel: await make_link(agent, video_id="vid-click",
                                           product_id="denim-jacket", channel=channel)
                  for channel in ("openai", "acp", "google")}
    await build_feeds(rt.read_sessionmaker, tmp_path,
                      replace(CONFIG, short_link_base="https://shop.test"))
    acp = [json.loads(line) for line in
           (tmp_path / "acp/products-00001.jsonl").read_text().splitlines()]
    jacket = next(p for p in acp if p["id"] == "denim-jacket")
    assert jacket["url"] == by_channel["acp"]["url"]
    assert {v["url"] for v in jacket["variants"]} == {by_channel["acp"]["url"]}
    with gzip.open(tmp_path / "openai/products-00001.jsonl.gz", "rb") as f:
        items = [json.loads(line) for line in f if line.strip()]
    jacket_items = [i for i in items if i["item_id"].startswith("denim-jacket")]
    assert jacket_items
    assert {i["url"] for i in jacket_items} == {by_channel["openai"]["url"]}
    google = (tmp_path / "google/products-00001.tsv").read_text()
    assert by_channel["google"]["url"] in google
    # A product without a link keeps its URL with the tracking parameters.
    shirt = next(p for p in acp if p["id"] == "linen-shirt")
    assert shirt["url"].startswith("https://shop.example.com/products/linen-shirt?")


async def test_mcp_catalog_results_carry_the_link_token(shop, backend: str) -> None:
    from tests.mcp_client import call, mcp_session, serving

    agent, rt, links = shop
    code = links["vid-click"]["code"]
    async with serving(rt) as app, mcp_session(app) as session:
        product, _ = await call(session, "get_product", {"product_id": "denim-jacket"})
        [video] = [v for v in product["videos"] if v["id"] == "vid-click"]
        assert video["shoppable_link"] == {"code": code,
                                           "url": f"https://shop.test/v/{code}"}
        assert video["affiliate_attribution"]["token"] == code
        listed, _ = await call(session, "list_shoppable_videos", {"product_id": "denim-jacket"})
        [entry] = [v for v in listed["videos"] if v["id"] == "vid-click"]
        assert entry["products"][0]["shoppable_link"]["token"] == code
    # Passing that attribution back unchanged credits the video through its link.
    order = await buy(rt, agent, affiliate_attribution=video["affiliate_attribution"])
    [row] = await sale_rows(rt, order["order"]["id"])
    assert (row.video_id, row.touch_type) == ("vid-click", "click")


def test_click_precedence_and_windows_are_pure_rules() -> None:
    from datetime import UTC, datetime

    from attribution.rules import Touch, Windows, credit

    order_at = datetime(2026, 12, 2, 12, tzinfo=UTC)

    def at(hours: float) -> datetime:
        return order_at - timedelta(hours=hours)

    week = Windows(7, 1)
    click, view = Touch("a", at(72), "click"), Touch("b", at(2), "view")
    result = credit("last_touch", [click, view], order_at, week)
    assert result.shares == {"a": 1}
    assert result.touch_types == {"a": "click"}
    assert result.window_days == {"a": 7}
    # Views alone: inside the view window they credit; outside they do not.
    assert credit("last_touch", [view], order_at, week).touch_types == {"b": "view"}
    late = credit("last_touch", [Touch("b", at(25), "view")], order_at, week)
    assert late.shares == {None: 1}
    assert late.touch_types == {None: None}
    assert late.window_days == {None: 7}
    # An agent claim is click-class; a click past its window falls back to views.
    claim = credit("linear", [Touch("c", at(1), "agent_claim"), view], order_at, week)
    assert claim.touch_types == {"c": "agent_claim"}
    stale = credit("first_touch", [Touch("a", at(8 * 24), "click"), view], order_at, week)
    assert stale.touch_types == {"b": "view"}
    # A longer click window for one model.
    assert credit("first_touch", [Touch("a", at(8 * 24), "click")], order_at,
                  Windows(28, 1)).touch_types == {"a": "click"}


def test_window_settings(tmp_path) -> None:
    from pydantic import ValidationError

    from api.runtime import ledger_policy
    from attribution.rules import Windows
    from tests.conftest import make_settings

    url = f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"
    policy = ledger_policy(make_settings(url, attribution_model_windows="first_touch=28/0"))
    assert policy.windows("last_touch") == Windows(7, 1)
    assert policy.windows("first_touch") == Windows(28, None)  # 0 = lifetime
    assert policy.horizon_days is None
    legacy = ledger_policy(make_settings(url, attribution_window_days=28))
    assert legacy.windows("linear") == Windows(28, 1)
    with pytest.raises(ValidationError):
        make_settings(url, attribution_model_windows="newest_touch=1/1")
