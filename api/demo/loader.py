"""Plays ``api.demo.story`` through the real services, as of the days it happened.

Every sale is an agent's checkout over the in-process HTTP API (ACP REST in the agent's
API version, or ACP over MCP on ``/mcp``), paid through the sandbox provider; the merchant
ships, refunds and fights disputes through the merchant API; commissions are locked and
paid by the payout service on the first of each month. Nothing is inserted into order,
payment or ledger tables by hand.

Time: the services stamp ``models.base.utc_now()``; the loader runs them under
``clock_override`` with a ``DemoClock`` it moves along the story, so every row carries the
time it would have had (ids keep their wall-clock prefix). The only direct write is the
daily view counts (``attribution.views.record_daily_views``), standing in for the
platforms' view-count import.
"""

from __future__ import annotations

import time as timer
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.app import create_app
from api.auth import create_agent_key, create_merchant_key
from api.demo.repository import record_daily_views
from api.demo.story import (
    AGENTS,
    CONTRACTS,
    DAYS,
    PAYEES,
    VIDEOS,
    AgentSpec,
    ClickPlan,
    ExperimentPlan,
    LinkPlan,
    OrderPlan,
    Story,
    plan,
)
from api.runtime import Runtime
from commissions import service as commission_service
from commissions.ledger import lock_due
from commissions.payouts import run_payouts
from commissions.schemas import ContractIn, PayeeIn
from feeds.demo import demo_catalog
from feeds.schemas import ImportReport, ProductRecord
from feeds.service import upsert_products
from fulfillment import service as fulfillment_service
from models import Fulfillment, Order, Video
from models.base import clock_override
from models.video import VideoViewCount
from orders import repository as order_repository

Json = dict[str, Any]
LEGACY_PAYMENT = frozenset({"2025-09-29", "2025-12-12", "2026-01-16"})
WAREHOUSE = "user:demo"  # who ships: the dashboard's demo user
WAREHOUSE_STOCK = 400  # units per physical variant while the history plays
# The clicks come from phones: a person's browser, not a bot (links/bots.py).
BROWSER_AGENT = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15"
                 " (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1")


class DemoError(RuntimeError):
    """A service refused a step of the story (a bug in the story or a regression)."""


@dataclass
class DemoClock:
    """What ``utc_now()`` answers while the story plays."""

    at: datetime

    def __call__(self) -> datetime:
        return self.at


@dataclass
class Summary:
    orders: int = 0
    abandoned: int = 0
    declined: int = 0
    shipments: int = 0
    refunds: int = 0
    disputes: int = 0
    payout_runs: int = 0
    links: int = 0
    clicks: int = 0
    experiments: int = 0
    by_channel: dict[str, int] = field(default_factory=dict)


async def existing_history(runtime: Runtime) -> int | None:
    """Orders of a demo history already loaded (its first video exists), else None."""
    async with runtime.sessionmaker() as db:
        if await db.get(Video, VIDEOS[0].id) is None:
            return None
        return int(await db.scalar(select(func.count()).select_from(Order)) or 0)


def _stocked(records: list[ProductRecord], extra: int) -> list[ProductRecord]:
    return [replace(r, variants=[
        replace(v, stock=v.stock + extra, availability="in_stock")
        if v.stock is not None else v for v in r.variants]) for r in records]


async def _import_catalog(runtime: Runtime, records: list[ProductRecord]) -> None:
    async with runtime.sessionmaker() as db, db.begin():
        await upsert_products(db, records, ImportReport(), list(range(1, len(records) + 1)))


class Player:
    def __init__(self, runtime: Runtime, story: Story, clock: DemoClock,
                 http: httpx.AsyncClient) -> None:
        self.runtime = runtime
        self.story = story
        self.clock = clock
        self.http = http
        self.keys: dict[str, str] = {}
        self.merchant: dict[str, str] = {}
        self.order_ids: dict[int, str] = {}
        self.disputes: dict[int, str] = {}
        self.shipments: dict[int, str] = {}
        self.link_codes: dict[str, str] = {}  # video → its shoppable link's code
        self.click_ids: dict[int, str] = {}  # order index → the click it came through
        self.summary = Summary()
        self._rpc = 0

    # ------------------------------------------------------------------ set-up
    async def setup(self) -> None:
        async with self.runtime.sessionmaker() as db, db.begin():
            for agent in AGENTS:
                _, key = await create_agent_key(db, agent.name)
                self.keys[agent.name] = key
            merchant_key = await create_merchant_key(db, "demo back office")
            for payee in PAYEES:
                await commission_service.upsert_payee(db, PayeeIn.model_validate(payee))
            since = self.story.start.isoformat()
            for contract in CONTRACTS:
                await commission_service.create_contract(
                    db, ContractIn.model_validate({**contract, "effective_from": since}),
                    self.runtime.commission_policy)
        self.merchant = {"Authorization": f"Bearer {merchant_key}"}

    # ------------------------------------------------------------------ HTTP helpers
    async def _post(self, path: str, body: Json, headers: dict[str, str], key: str,
                    ok: tuple[int, ...] = (200, 201)) -> Json:
        resp = await self.http.post(path, json=body, headers={**headers, "Idempotency-Key": key})
        if resp.status_code not in ok:
            raise DemoError(f"POST {path} → {resp.status_code}: {resp.text[:500]}")
        data: Json = resp.json()
        return data

    async def _mcp(self, agent: AgentSpec, tool: str, arguments: Json) -> Json:
        self._rpc += 1
        resp = await self.http.post("/mcp", json={
            "jsonrpc": "2.0", "id": self._rpc, "method": "tools/call",
            "params": {"name": tool, "arguments": arguments}}, headers={
            "Authorization": f"Bearer {self.keys[agent.name]}",
            "Accept": "application/json, text/event-stream"})
        data = resp.json() if resp.status_code == 200 else {}
        result = data.get("result")
        if not isinstance(result, dict) or result.get("isError"):
            raise DemoError(f"MCP {tool} → {resp.status_code}: {resp.text[:500]}")
        out: Json = result["structuredContent"]
        return out

    # ------------------------------------------------------------------ a buyer's journey
    @staticmethod
    def _claim(video_id: str | None, touchpoint: str) -> Json | None:
        if video_id is None:
            return None
        video = next(v for v in VIDEOS if v.id == video_id)
        return {"provider": "reelcart-video", "publisher_id": video.creator,
                "campaign_id": video.campaign, "creative_id": video.id,
                "sub_id": f"{video.platform}-{touchpoint}",
                "source": {"type": "url", "url": f"https://{video.platform}.example.com"
                                                 f"/@reelcart/{video.id}"}}

    def _create_body(self, o: OrderPlan) -> Json:
        legacy = o.version in LEGACY_PAYMENT
        body: Json = {}
        if legacy:
            body["items"] = [{"id": v, "quantity": q} for v, q in o.lines]
        else:
            body.update(currency="usd", capabilities={},
                        line_items=[{"id": v} for v, q in o.lines for _ in range(q)])
        if o.version == "2025-09-29":
            body["fulfillment_address"] = o.address
        else:
            body["fulfillment_details"] = {"name": o.address["name"],
                                           "email": o.buyer["email"], "address": o.address}
        body["buyer"] = o.buyer
        click_id = self.click_ids.get(o.index)
        if o.agent.attributes:
            claim = self._claim(o.first_video, "first")
            if claim is not None:
                if click_id is not None:  # the link's click id, as the agent received it
                    claim["token"] = click_id
                body["affiliate_attribution"] = claim
        elif o.first_video is not None and o.version != "2025-09-29":
            body["metadata"] = {"video_id": o.first_video}
            if click_id is not None:  # the landing URL's rc_click, carried by the web flow
                body["metadata"]["rc_click"] = click_id
        return body

    def _complete_body(self, o: OrderPlan, token: str) -> Json:
        body: Json
        if o.version in LEGACY_PAYMENT:
            body = {"payment_data": {"token": token, "provider": "stripe"}}
        else:
            body = {"payment_data": {"handler_id": "card_tokenized", "instrument": {
                "type": "card", "credential": {"type": "spt", "token": token}}}}
        if o.agent.attributes and o.version != "2025-09-29":
            claim = self._claim(o.last_video, "last")
            if claim is not None:
                body["affiliate_attribution"] = claim
        return body

    async def _checkout(self, o: OrderPlan, op: str, body: Json, session_id: str | None,
                        key: str, ok: tuple[int, ...] = (200, 201)) -> Json:
        if o.agent.binding == "mcp":
            tool = {"create": "create_checkout_session", "update": "update_checkout_session",
                    "complete": "complete_checkout_session"}[op]
            arguments: Json = {"meta": {"api_version": o.version, "idempotency_key": key},
                               "payload": body}
            if session_id is not None:
                arguments["id"] = session_id
            return await self._mcp(o.agent, tool, arguments)
        headers = {"Authorization": f"Bearer {self.keys[o.agent.name]}",
                   "API-Version": o.version}
        path = "/checkout_sessions" + (f"/{session_id}" if session_id else "") + (
            "/complete" if op == "complete" else "")
        return await self._post(path, body, headers, key, ok)

    async def journey(self, o: OrderPlan) -> None:
        key = f"demo-{o.index}"
        self.clock.at = o.at
        session = await self._checkout(o, "create", self._create_body(o), None, f"{key}-c")
        channel = f"{o.agent.name} · {'MCP' if o.agent.binding == 'mcp' else 'ACP'} {o.version}"
        self.summary.by_channel[channel] = self.summary.by_channel.get(channel, 0) + 1
        if o.express and o.physical and o.version not in LEGACY_PAYMENT:
            options = [f for f in session.get("fulfillment_options", [])
                       if f.get("type") == "shipping"]
            if len(options) > 1:
                best = max(options, key=lambda f: f["totals"][-1]["amount"])
                self.clock.at = o.at + o.complete_after / 3
                items = [line["item"]["id"] for line in session["line_items"]]
                session = await self._checkout(o, "update", {"selected_fulfillment_options": [
                    {"type": "shipping", "option_id": best["id"], "item_ids": items}]},
                    session["id"], f"{key}-u")
        if o.payment == "abandoned":
            self.summary.abandoned += 1
            return
        self.clock.at = o.at + o.complete_after
        if o.payment == "declined_then_ok":
            await self._checkout(o, "complete", self._complete_body(o, "spt_test_declined"),
                                 session["id"], f"{key}-d", ok=(200, 201, 402))
            self.summary.declined += 1
            self.clock.at += timedelta(minutes=2)
        done = await self._checkout(o, "complete", self._complete_body(o, "spt_test_success"),
                                    session["id"], f"{key}-p")
        order = done.get("order") or {}
        if done.get("status") != "completed" or not order.get("id"):
            raise DemoError(f"order {o.index} did not complete: {str(done)[:400]}")
        self.order_ids[o.index] = order["id"]
        self.summary.orders += 1

    # ------------------------------------------------------------------ afterwards
    async def ship(self, o: OrderPlan, db: AsyncSession) -> None:
        """The warehouse marks the order shipped (the fulfilment service behind the
        dashboard's "mark shipped" and the merchant API)."""
        order_id = self.order_ids.get(o.index)
        if order_id is None or o.carrier is None:
            return
        carrier, pattern, url = o.carrier
        number = pattern.format(o.index * 7919 % 10**6, o.index * 104729 % 10**8)
        order = await order_repository.lock_order(db, order_id)
        assert order is not None
        shipment = await fulfillment_service.ship_manually(
            db, order, carrier=carrier, tracking_number=number,
            tracking_url=url.format(number), line_items=None, actor=WAREHOUSE)
        self.shipments[o.index] = shipment.id
        self.summary.shipments += 1

    async def deliver(self, o: OrderPlan, db: AsyncSession) -> None:
        """The carrier's scan: delivered."""
        order_id, shipment_id = self.order_ids.get(o.index), self.shipments.get(o.index)
        if order_id is None or shipment_id is None:
            return
        order = await order_repository.lock_order(db, order_id)
        shipment = await db.get(Fulfillment, shipment_id)
        assert order is not None
        assert shipment is not None
        await fulfillment_service.record_fulfillment(
            db, order, status="delivered", actor=WAREHOUSE, existing=shipment)

    async def warehouse_day(self, steps: list[tuple[datetime, WarehouseStep]]) -> None:
        """A day's shipments and deliveries, each at its own time, in one transaction (the
        warehouse's end-of-day batch; it keeps the load fast)."""
        async with self.runtime.sessionmaker() as db, db.begin():
            for when, step in sorted(steps, key=lambda s: s[0]):
                self.clock.at = when
                await step(db)

    async def refund(self, o: OrderPlan) -> None:
        order_id = self.order_ids.get(o.index)
        if order_id is None:
            return
        body: Json = {"reason": "requested_by_customer"}
        if o.refund_share is not None:
            resp = await self.http.get(f"/orders/{order_id}", headers=self.merchant)
            total = int(resp.json()["total_amount"])
            body["amount"] = max(100, int(total * o.refund_share) // 100 * 100)
        await self._post(f"/orders/{order_id}/refunds", body, self.merchant,
                         f"demo-{o.index}-refund", ok=(201,))
        self.summary.refunds += 1

    async def open_dispute(self, o: OrderPlan) -> None:
        order_id = self.order_ids.get(o.index)
        if order_id is None:
            return
        reason = "product_not_received" if o.dispute == "won" else "fraudulent"
        data = await self._post(f"/orders/{order_id}/sandbox-dispute", {"reason": reason},
                                self.merchant, f"demo-{o.index}-dispute", ok=(201,))
        self.disputes[o.index] = data["disputes"][-1]["id"]
        self.summary.disputes += 1

    async def close_dispute(self, o: OrderPlan) -> None:
        order_id, dispute_id = self.order_ids.get(o.index), self.disputes.get(o.index)
        if order_id is None or dispute_id is None:
            return
        await self._post(f"/orders/{order_id}/sandbox-dispute/{dispute_id}/close",
                         {"outcome": o.dispute}, self.merchant, f"demo-{o.index}-decided")

    async def publish(self, record: Json) -> None:
        await self._post("/videos", record, self.merchant, f"demo-video-{record['id']}")

    async def create_link(self, link: LinkPlan) -> None:
        data = await self._post("/links", {"video_id": link.video_id,
                                           "product_id": link.product_id,
                                           "channel": link.channel},
                                self.merchant, f"demo-link-{link.video_id}")
        self.link_codes[link.video_id] = data["code"]
        self.summary.links += 1

    async def click(self, click: ClickPlan, order: OrderPlan | None = None) -> None:
        """A person follows the link (``GET /v/{code}``, their cookie, a phone's browser).
        A buyer's click is written at once: their agent passes it back minutes later."""
        code = self.link_codes[click.video_id]
        resp = await self.http.get(f"/v/{code}", headers={
            "User-Agent": BROWSER_AGENT, "Cookie": f"rc_vid={click.visitor}"})
        click_ids = parse_qs(urlsplit(resp.headers.get("location", "")).query).get("rc_click")
        if resp.status_code != 302 or not click_ids:
            raise DemoError(f"GET /v/{code} → {resp.status_code}: no click recorded")
        self.summary.clicks += 1
        if order is not None:
            self.click_ids[order.index] = click_ids[0]
            await self.runtime.touch_buffer.flush()

    async def experiment(self, e: ExperimentPlan) -> None:
        await self._post("/experiments", {
            "name": e.name, "product_id": e.product_id, "video_ids": list(e.video_ids),
            "starts_on": e.starts_on.isoformat(), "min_orders": e.min_orders}, self.merchant,
            f"demo-experiment-{e.product_id}", ok=(201,))
        self.summary.experiments += 1

    async def month_end(self, at: datetime) -> None:
        """Finance's month end: lock commissions past the return window, pay them out."""
        async with self.runtime.sessionmaker() as db, db.begin():
            await lock_due(db)
        await run_payouts(self.runtime.sessionmaker, self.runtime.transfers, dry_run=False,
                          run_id=f"demo-{at:%Y-%m}", minimum=1)
        self.summary.payout_runs += 1

    async def statements(self) -> None:
        months = sorted({commission_service.month_of(self.story.start + timedelta(days=d))
                         for d in range(0, (self.story.end - self.story.start).days + 1)})
        async with self.runtime.sessionmaker() as db, db.begin():
            for payee in PAYEES:
                for start, end in months:
                    await commission_service.ensure_statement(db, str(payee["id"]), start,
                                                              end)


Step = Callable[[], Awaitable[None]]
WarehouseStep = Callable[[AsyncSession], Awaitable[None]]


def _timeline(player: Player, story: Story) -> list[tuple[datetime, int, Step]]:
    events: list[tuple[datetime, int, Step]] = []
    warehouse: dict[date, list[tuple[datetime, WarehouseStep]]] = {}

    def at(when: datetime, step: Step) -> None:
        if when < story.end:
            events.append((when, len(events), step))

    def in_warehouse(when: datetime, step: WarehouseStep) -> None:
        if when < story.end:
            warehouse.setdefault(when.date(), []).append((when, step))

    for video in VIDEOS:
        record = video.record(story.start)
        at(datetime.fromisoformat(record["published_at"]) - timedelta(hours=6),
           partial(player.publish, record))
    for link in story.links:
        at(link.at, partial(player.create_link, link))
    for click in story.clicks:
        at(click.at, partial(player.click, click))
    for e in story.experiments:
        at(e.at, partial(player.experiment, e))
    for o in story.orders:
        if o.click is not None:
            at(o.click.at, partial(player.click, o.click, o))
        at(o.at, partial(player.journey, o))
        if o.payment == "abandoned":
            continue
        paid = o.at + o.complete_after
        if o.ship_after is not None:
            in_warehouse(paid + o.ship_after, partial(player.ship, o))
        if o.deliver_after is not None:
            in_warehouse(paid + o.deliver_after, partial(player.deliver, o))
        if o.refund_after is not None:
            at(paid + o.refund_after, partial(player.refund, o))
        if o.dispute is not None:
            # The issuer's notice comes days later, its decision weeks after that.
            opened = paid + timedelta(days=6 if o.dispute == "open" else 9, hours=5,
                                      minutes=o.index % 60)
            at(opened, partial(player.open_dispute, o))
            if o.dispute != "open":
                at(opened + timedelta(days=24, hours=-3, minutes=17),
                   partial(player.close_dispute, o))
    for payout_day in story.payout_days:
        at(payout_day, partial(player.month_end, payout_day))
    for day, steps in warehouse.items():  # after the day's orders exist
        closing = datetime.combine(day, time(23, 59, 59), UTC)
        at(min(closing, story.end - timedelta(seconds=1)), partial(player.warehouse_day, steps))
    events.sort(key=lambda e: (e[0], e[1]))
    return events


async def load_history(runtime: Runtime, now: datetime | None = None) -> str:
    """Load the demo history into ``runtime``'s database (catalog already imported), or say
    it is there already. Returns a one-paragraph summary."""
    existing = await existing_history(runtime)
    if existing is not None:
        async with runtime.sessionmaker() as db:  # the views are written last
            finished = await db.scalar(select(VideoViewCount.video_id).limit(1))
        if finished is None:
            return (f"an interrupted demo history is in this database ({existing} orders): "
                    "delete the database (reelcart.db) and run reelcart demo again")
        return f"demo history already loaded ({existing} orders)"
    started = timer.perf_counter()
    story = plan(now or datetime.now(UTC))
    clock = DemoClock(story.start - timedelta(days=1))
    with clock_override(clock):
        await _import_catalog(runtime, _stocked(demo_catalog(), WAREHOUSE_STOCK))
        app = create_app(runtime)
        async with app.router.lifespan_context(app), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://demo.internal",
                timeout=60) as http:
            player = Player(runtime, story, clock, http)
            await player.setup()
            for when, _, step in _timeline(player, story):
                clock.at = when
                await step()
            clock.at = story.end - timedelta(minutes=5)
            await runtime.touch_buffer.flush()
            async with runtime.sessionmaker() as db, db.begin():
                await record_daily_views(db, story.views)
            await player.statements()
        # Today's stock take: the catalog as documented (low and sold-out variants).
        await _import_catalog(runtime, demo_catalog())
    s = player.summary
    channels = ", ".join(f"{name}: {n}" for name, n in sorted(s.by_channel.items()))
    return (f"demo history: {s.orders} orders over {DAYS} days "
            f"({s.abandoned} abandoned checkouts, {s.declined} declined first tries), "
            f"{len(VIDEOS)} videos, {s.shipments} shipments, {s.refunds} refunds, "
            f"{s.disputes} disputes (won, lost, open), {s.payout_runs} commission payout runs,"
            f" {s.links} shoppable links with {s.clicks} clicks, {s.experiments} experiments;"
            f" sessions by agent: {channels} — loaded in {timer.perf_counter() - started:.1f} s")
