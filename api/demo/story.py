"""The demo's story, as data: who sells what through which agent, which generated video
drove each sale, and what happened afterwards. Pure and deterministic: ``plan(today)``
draws every choice from one seeded ``random.Random``, so two loads on the same day tell the
same story (ids and wall-clock stamps aside). ``api.demo.loader`` plays it through the real
services.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from feeds.demo import demo_catalog

SEED = 20261202
DAYS = 90

Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class AgentSpec:
    name: str
    binding: str  # acp (REST) | mcp (ACP over MCP)
    versions: tuple[tuple[int, str], ...]  # (from day, ACP API-Version) — agents upgrade
    weight: float
    attributes: bool  # sends affiliate_attribution (ACP) / carries the video otherwise


AGENTS = (
    AgentSpec("ChatGPT", "acp", ((0, "2025-12-12"), (38, "2026-01-30"), (64, "2026-04-17")),
              0.46, True),
    AgentSpec("Microsoft Copilot", "acp", ((0, "2026-01-30"),), 0.17, True),
    AgentSpec("Perplexity", "acp", ((0, "2025-09-29"), (50, "2026-01-30")), 0.13, False),
    AgentSpec("Claude (MCP)", "mcp", ((0, "2026-04-17"),), 0.24, True),
)

PAYEES: list[Json] = [
    {"id": "ava-reyes", "name": "Ava Reyes", "kind": "creator",
     "connect_account": "acct_1DemoAvaReyes", "country": "US", "currency": "usd"},
    {"id": "mika-tanaka", "name": "Mika Tanaka", "kind": "creator",
     "connect_account": "acct_1DemoMikaTanaka", "country": "JP", "currency": "usd"},
    {"id": "cam-okafor", "name": "Cam Okafor (cameo)", "kind": "likeness",
     "connect_account": "acct_1DemoCamOkafor", "country": "GB", "currency": "usd"},
    {"id": "rio-studio", "name": "Rio Studio (remixer)", "kind": "creator", "country": "BR",
     "currency": "usd"},
    {"id": "northwind-films", "name": "Northwind Films", "kind": "rights_holder",
     "connect_account": "acct_1DemoNorthwind", "country": "US", "currency": "usd"},
]

# (id, title, generator, creator, platform, campaign, products, publish day, parent, appeal)
_VIDEOS: list[tuple[str, str, str, str, str, str, list[str], int, str | None, float]] = [
    ("rainy-denim", "Rainy-day denim", "sora-2", "ava-reyes", "tiktok", "fall-drop",
     ["denim-jacket", "wool-beanie"], 0, None, 1.3),
    ("denim-noir", "Denim noir (remix)", "veo-3.1", "rio-studio", "youtube", "fall-drop",
     ["denim-jacket"], 21, "rainy-denim", 1.0),
    ("denim-noir-60s", "Denim noir, 60s cut", "runway-gen-4", "rio-studio", "instagram",
     "fall-drop", ["denim-jacket", "sunglasses"], 47, "denim-noir", 0.9),
    ("morning-pour", "Slow morning pour-over", "veo-3.1", "mika-tanaka", "tiktok",
     "home-rituals", ["pour-over", "ceramic-mug"], 3, None, 1.2),
    ("mug-glaze-asmr", "Glaze ASMR", "kling-2.1", "mika-tanaka", "youtube", "home-rituals",
     ["ceramic-mug", "scented-candle"], 18, "morning-pour", 0.8),
    ("trail-dawn", "Trail at dawn", "veo-3.1", "ava-reyes", "youtube", "outdoors",
     ["trail-sneaker", "water-bottle", "backpack"], 6, None, 1.1),
    ("trail-dawn-vertical", "Trail at dawn (vertical)", "kling-2.1", "ava-reyes", "tiktok",
     "outdoors", ["trail-sneaker"], 30, "trail-dawn", 1.0),
    ("desk-glow", "Desk glow-up", "runway-gen-4", "cam-okafor", "instagram", "workspace",
     ["desk-lamp", "headphones"], 10, None, 1.0),
    ("desk-glow-night", "Desk glow-up, night edit", "sora-2", "rio-studio", "tiktok",
     "workspace", ["desk-lamp"], 55, "desk-glow", 0.8),
    ("cork-flow", "Cork flow yoga", "kling-2.1", "mika-tanaka", "instagram", "wellness",
     ["yoga-mat", "water-bottle"], 14, None, 0.9),
    ("chef-cut", "One knife, ten cuts", "sora-2", "northwind-films", "youtube", "kitchen",
     ["chef-knife"], 25, None, 0.9),
    ("chef-cut-short", "Ten cuts in ten seconds", "veo-3.1", "rio-studio", "tiktok",
     "kitchen", ["chef-knife"], 52, "chef-cut", 0.9),
    ("grade-like-a-pro", "Grade like a pro", "runway-gen-4", "ava-reyes", "youtube",
     "creator-tools", ["lut-pack", "preset-bundle"], 8, None, 1.1),
    ("shorts-101", "Shorts 101 teaser", "sora-2", "northwind-films", "youtube",
     "creator-tools", ["video-course", "ebook"], 33, None, 0.8),
    ("beat-drop", "Beat drop (licensed)", "kling-2.1", "northwind-films", "tiktok",
     "creator-tools", ["music-license"], 40, None, 0.7),
    ("summer-shades", "Summer shades", "veo-3.1", "cam-okafor", "tiktok", "summer-drop",
     ["sunglasses", "canvas-tote"], 60, None, 1.4),
    ("summer-shades-remix", "Summer shades, beach remix", "kling-2.1", "rio-studio",
     "instagram", "summer-drop", ["sunglasses"], 72, "summer-shades", 1.2),
    ("linen-light", "Linen in the light", "sora-2", "mika-tanaka", "instagram",
     "summer-drop", ["linen-shirt", "canvas-tote"], 66, None, 1.1),
    ("poster-wall", "Poster wall timelapse", "runway-gen-4", "cam-okafor", "youtube",
     "workspace", ["poster", "sticker-pack"], 44, None, 0.7),
    ("gift-guide", "Last-minute gift guide", "veo-3.1", "ava-reyes", "tiktok", "holiday",
     ["gift-card", "scented-candle", "ceramic-mug"], 78, None, 1.6),
    ("gift-guide-shorts", "Gift guide, 15 s", "sora-2", "rio-studio", "youtube", "holiday",
     ["gift-card", "wool-beanie"], 84, "gift-guide", 1.3),
]

_PROMPTS = {
    "sora-2": "Cinematic handheld shot, soft rain, 35mm film grain, product hero close-up",
    "veo-3.1": "Golden-hour tracking shot with native ambient audio, shallow depth of field",
    "runway-gen-4": "Consistent character across cuts, studio lighting, slow push-in",
    "kling-2.1": "Vertical 9:16, fast cuts on the beat, macro product details",
}

CONTRACTS: list[Json] = [
    {"id": "ava-creator", "name": "Ava Reyes: 10 % of her videos' sales", "scope": "creator",
     "scope_value": "ava-reyes", "rate_bps": 1000,
     "payees": [{"payee_id": "ava-reyes", "weight": 1}]},
    {"id": "mika-creator", "name": "Mika Tanaka: 12 % of her videos' sales",
     "scope": "creator", "scope_value": "mika-tanaka", "rate_bps": 1200,
     "payees": [{"payee_id": "mika-tanaka", "weight": 1}]},
    {"id": "desk-glow-cameo", "name": "Desk glow-up: cameo split (creator 3 : likeness 1)",
     "scope": "video", "scope_value": "desk-glow", "rate_bps": 1500,
     "payees": [{"payee_id": "cam-okafor", "weight": 3},
                {"payee_id": "ava-reyes", "weight": 1}]},
    {"id": "rio-remixes", "name": "Rio Studio: 8 % of remixes (20 % to the originals)",
     "scope": "creator", "scope_value": "rio-studio", "rate_bps": 800,
     "remix_share_bps": 2000, "payees": [{"payee_id": "rio-studio", "weight": 1}]},
    {"id": "summer-shades-cameo", "name": "Summer shades: likeness 10 %", "scope": "video",
     "scope_value": "summer-shades", "rate_bps": 1000,
     "payees": [{"payee_id": "cam-okafor", "weight": 1}]},
    {"id": "northwind-catalog", "name": "Northwind Films: 2 USD per unit of its titles",
     "scope": "creator", "scope_value": "northwind-films", "basis": "fixed_per_unit",
     "fixed_amount": 200, "currency": "usd",
     "payees": [{"payee_id": "northwind-films", "weight": 1}]},
]

_FIRST = ["Ada", "Ben", "Chloé", "Dev", "Elena", "Farah", "Gus", "Hana", "Ivan", "Jade",
          "Kofi", "Lena", "Mateo", "Nora", "Omar", "Priya", "Quinn", "Rosa", "Sam", "Tariq",
          "Uma", "Viktor", "Wen", "Ximena", "Yusuf", "Zoe"]
_LAST = ["Lovelace", "Okafor", "Martin", "Patel", "Rossi", "Haddad", "Nguyen", "Suzuki",
         "Petrov", "Moreau", "Mensah", "Schmidt", "García", "Kim", "Ali", "Sharma", "Byrne",
         "Silva", "Cohen", "Khan"]
# (city, state, country, postal code, street)
_PLACES = [
    ("San Francisco", "CA", "US", "94105", "Market St"), ("Los Angeles", "CA", "US", "90012",
                                                          "Spring St"),
    ("New York", "NY", "US", "10001", "W 34th St"), ("Brooklyn", "NY", "US", "11201",
                                                       "Court St"),
    ("Austin", "TX", "US", "78701", "Congress Ave"), ("Seattle", "WA", "US", "98101",
                                                        "Pike St"),
    ("Chicago", "IL", "US", "60601", "Lake St"), ("Denver", "CO", "US", "80202", "Blake St"),
    ("Portland", "OR", "US", "97205", "SW Morrison St"), ("Miami", "FL", "US", "33131",
                                                           "Brickell Ave"),
    ("Boston", "MA", "US", "02108", "Tremont St"), ("Toronto", "ON", "CA", "M5H 2N2",
                                                     "King St W"),
    ("Vancouver", "BC", "CA", "V6B 1A1", "Granville St"),
]
_CARRIERS = [("UPS", "1Z{:06X}A{:08d}", "https://www.ups.com/track?tracknum={}"),
             ("USPS", "9400{:06d}{:012d}", "https://tools.usps.com/go/TrackConfirmAction"
                                           "?tLabels={}"),
             ("FedEx", "{:06d}{:06d}", "https://www.fedex.com/fedextrack/?trknbr={}")]
# Buyers mostly order in the US evening: hour (UTC) weights.
_HOURS = [(h, w) for h, w in zip(range(24), [6, 5, 4, 3, 2, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4, 4,
                                               5, 5, 6, 6, 7, 8, 8, 7], strict=True)]


@dataclass(frozen=True, slots=True)
class VideoSpec:
    id: str
    title: str
    generator: str
    creator: str
    platform: str
    campaign: str
    products: list[str]
    day: int
    parent: str | None
    appeal: float

    def record(self, start: datetime) -> Json:
        published = start + timedelta(days=self.day, hours=15)
        return {
            "id": self.id, "title": self.title, "generator": self.generator,
            "prompt": f"{_PROMPTS[self.generator]}: {self.title.lower()}.",
            "source_url": f"https://cdn.shop.example.com/videos/{self.id}.mp4",
            "duration_seconds": 8 if self.generator == "veo-3.1" else 15 + len(self.id) % 20,
            "platform": self.platform,
            "published_url": f"https://{self.platform}.example.com/@reelcart/{self.id}",
            "published_at": published.isoformat(), "campaign": self.campaign,
            "creator": self.creator, "parent_video_id": self.parent,
            "products": [{"product_id": p} for p in self.products]}


VIDEOS = [VideoSpec(*v) for v in _VIDEOS]


@dataclass(slots=True)
class OrderPlan:
    """One buyer's journey: the agent's session, the touches, the payment, then what the
    merchant and the buyer did afterwards (each at its own time)."""

    index: int
    at: datetime  # session created (the first touch)
    agent: AgentSpec
    version: str
    lines: list[tuple[str, int]]
    buyer: Json
    address: Json
    first_video: str | None
    last_video: str | None
    complete_after: timedelta
    payment: str = "ok"  # ok | declined_then_ok | abandoned
    express: bool = False
    physical: bool = True
    ship_after: timedelta | None = None
    deliver_after: timedelta | None = None
    carrier: tuple[str, str, str] | None = None
    refund_after: timedelta | None = None
    refund_share: float | None = None  # None: full refund
    dispute: str | None = None  # won | lost | open
    events: list[Json] = field(default_factory=list)
    click: ClickPlan | None = None  # the shoppable-link click the buyer came through


@dataclass(frozen=True, slots=True)
class LinkPlan:
    """A shoppable link the merchant posts with a video (its platform, its first product),
    created as the video goes out."""

    video_id: str
    product_id: str
    channel: str
    at: datetime


@dataclass(frozen=True, slots=True)
class ClickPlan:
    """A person following a video's shoppable link; ``visitor`` is their ``rc_vid``
    cookie (drawn from the seed). Most clicks go no further; an order's click is passed
    back at checkout (its ``rc_click``)."""

    at: datetime
    video_id: str
    visitor: str


@dataclass(frozen=True, slots=True)
class ExperimentPlan:
    """A creative experiment the merchant starts when a remix of a video goes out."""

    name: str
    product_id: str
    video_ids: tuple[str, ...]
    starts_on: date
    at: datetime
    min_orders: int = 10  # a small shop's bar for a verdict (the default is 20)


@dataclass(slots=True)
class Story:
    start: datetime
    end: datetime
    orders: list[OrderPlan]
    views: list[tuple[str, date, str, int]]  # (video, day, source, views)
    payout_days: list[datetime]
    links: list[LinkPlan] = field(default_factory=list)
    clicks: list[ClickPlan] = field(default_factory=list)  # those that led to no order
    experiments: list[ExperimentPlan] = field(default_factory=list)


def _weighted(rng: random.Random, pairs: list[tuple[Any, float]]) -> Any:
    total = sum(w for _, w in pairs)
    pick = rng.random() * total
    for value, weight in pairs:
        pick -= weight
        if pick <= 0:
            return value
    return pairs[-1][0]


def _variants() -> dict[str, list[tuple[str, bool]]]:
    """product id → [(variant id, physical)]"""
    return {p.id: [(v.id, v.requires_shipping is not False) for v in p.variants]
            for p in demo_catalog()}


def _version(agent: AgentSpec, day: int) -> str:
    return [v for start, v in agent.versions if start <= day][-1]


def _touch_gap(rng: random.Random) -> timedelta:
    """Between seeing the video (session created) and paying: mostly minutes, a long tail
    of hours (sessions live six hours)."""
    r = rng.random()
    if r < 0.55:
        return timedelta(seconds=rng.randint(60, 15 * 60))
    if r < 0.9:
        return timedelta(seconds=rng.randint(15 * 60, 2 * 3600))
    return timedelta(seconds=rng.randint(2 * 3600, 5 * 3600))


def plan(now: datetime, seed: int = SEED) -> Story:
    """The last ``DAYS`` days up to ``now``, today so far included. The same day always
    draws the same story; how much of today has happened depends on the hour."""
    rng = random.Random(seed)
    end = now.astimezone(UTC)
    start = datetime.combine(end.date(), time(0), UTC) - timedelta(days=DAYS - 1)
    variants = _variants()
    products = list(variants)
    shipped = {vid: physical for options in variants.values() for vid, physical in options}
    orders: list[OrderPlan] = []
    for day in range(DAYS):
        live = [v for v in VIDEOS if v.day <= day]
        weekend = (start + timedelta(days=day)).weekday() >= 5
        # Growing sales, busier weekends, bumps while a new video is fresh.
        fresh = sum(v.appeal * max(0.0, 1 - (day - v.day) / 12) for v in live)
        expected = (1.1 + 2.1 * day / DAYS) * (1.25 if weekend else 1.0) + 0.6 * fresh
        count = int(expected + rng.random())
        for _ in range(count):
            hour = _weighted(rng, [(h, float(w)) for h, w in _HOURS])
            at = start + timedelta(days=day, hours=hour, minutes=rng.randint(0, 59),
                                   seconds=rng.randint(0, 59))
            agent = _weighted(rng, [(a, a.weight) for a in AGENTS])
            weights = [(v, v.appeal * (0.35 + max(0.0, 1 - (day - v.day) / 30)))
                       for v in live]
            video = _weighted(rng, weights) if live and rng.random() < 0.8 else None
            lines: list[tuple[str, int]] = []
            featured = video.products if video else [rng.choice(products)]
            main = rng.choice(featured[:2])
            lines.append((rng.choice(variants[main])[0], _weighted(rng, [(1, 80), (2, 15),
                                                                         (3, 5)])))
            if rng.random() < 0.28:
                extra = rng.choice(featured if video and len(featured) > 1 else products)
                variant = rng.choice(variants[extra])[0]
                if variant not in {v for v, _ in lines}:
                    lines.append((variant, 1))
            physical = any(shipped[vid] for vid, _ in lines)
            last = video.id if video else None
            if video is not None:  # some buyers come back through a remix (or its original)
                family = [v.id for v in live if v.parent == video.id or v.id == video.parent]
                if family and rng.random() < 0.3:
                    last = rng.choice(family)
            first_name, last_name = rng.choice(_FIRST), rng.choice(_LAST)
            city, state, country, postal, street = rng.choice(_PLACES)
            buyer = {"first_name": first_name, "last_name": last_name,
                     "email": f"{first_name.lower()}.{last_name.lower()}@example.com"
                     .replace("é", "e").replace("í", "i")}
            address = {"name": f"{first_name} {last_name}",
                       "line_one": f"{rng.randint(1, 2400)} {street}", "city": city,
                       "state": state, "country": country, "postal_code": postal}
            o = OrderPlan(index=len(orders), at=at, agent=agent, version=_version(agent, day),
                          lines=lines, buyer=buyer, address=address,
                          first_video=video.id if video else None, last_video=last,
                          complete_after=_touch_gap(rng), physical=physical,
                          express=rng.random() < 0.2)
            r = rng.random()
            o.payment = "abandoned" if r < 0.1 else ("declined_then_ok" if r < 0.13 else "ok")
            if o.payment != "abandoned":
                if physical:
                    o.ship_after = timedelta(hours=rng.randint(6, 60))
                    o.deliver_after = o.ship_after + timedelta(hours=rng.randint(36, 120))
                    o.carrier = rng.choice(_CARRIERS)
                r = rng.random()
                if r < 0.035:
                    o.refund_after = timedelta(days=rng.uniform(2, 20))
                elif r < 0.085:
                    o.refund_after = timedelta(days=rng.uniform(2, 20))
                    o.refund_share = rng.choice([0.25, 0.3, 0.5])
            orders.append(o)
    # Disputes: one won, one lost (both decided), one still open with evidence due.
    paid = [o for o in orders if o.payment != "abandoned" and o.refund_after is None]
    for wanted, day in (("won", 35), ("lost", 48), ("open", 82)):
        candidates = [o for o in paid if (o.at - start).days == day and o.dispute is None]
        if not candidates:
            candidates = [o for o in paid if abs((o.at - start).days - day) <= 3
                          and o.dispute is None]
        max(candidates, key=lambda o: sum(q for _, q in o.lines)).dispute = wanted
    # Today: what has not happened yet is left out; a buyer still deciding has an open
    # session.
    orders = [o for o in orders if o.at < end]
    for index, o in enumerate(orders):
        o.index = index
        if o.at + o.complete_after >= end:
            o.payment, o.express, o.dispute = "abandoned", False, None
    views: list[tuple[str, date, str, int]] = []
    for v in VIDEOS:
        for day in range(v.day, DAYS):
            age = day - v.day
            base = 4000 * v.appeal * (0.75 ** age if age < 10 else 0.05) + 120 * v.appeal
            n = base * rng.uniform(0.7, 1.3)
            if day == DAYS - 1:  # today so far
                n *= (end - datetime.combine(end.date(), time(0), UTC)) / timedelta(days=1)
            views.append((v.id, (start + timedelta(days=day)).date(), v.platform, int(n)))
    payout_days = [datetime.combine(d, time(9), UTC) for d in
                   ((start + timedelta(days=k)).date() for k in range(1, DAYS))
                   if d.day == 1]
    links, clicks = _links_and_clicks(random.Random(seed + CLICK_SEED_OFFSET), start, end,
                                      orders, views)
    return Story(start=start, end=end, orders=orders, views=views, payout_days=payout_days,
                 links=links, clicks=clicks, experiments=_experiments(start, end))


CLICK_SEED_OFFSET = 7  # the links' own generator: the orders above stay as they were
CLICK_SHARE = 0.35  # of the buyers a link can have brought, those who came through it
CLICKS_PER_1000_VIEWS = 1.2  # clicks that lead to no order


def _visitor(rng: random.Random) -> str:
    return f"demo-{rng.getrandbits(96):024x}"


def _links_and_clicks(rng: random.Random, start: datetime, end: datetime,
                      orders: list[OrderPlan], views: list[tuple[str, date, str, int]]
                      ) -> tuple[list[LinkPlan], list[ClickPlan]]:
    """Each video's link on its platform, the buyers who came through one (a click
    minutes before their session), and everyone else's clicks (about
    ``CLICKS_PER_1000_VIEWS`` of a day's views, spread over the day)."""
    links = {v.id: LinkPlan(v.id, v.products[0], v.platform,
                            start + timedelta(days=v.day, hours=10)) for v in VIDEOS}
    for o in orders:  # only a buyer whose agent passes something back can be joined
        carried = o.agent.attributes or o.version != "2025-09-29"
        link = links.get(o.first_video) if o.first_video and carried else None
        if link is None or rng.random() >= CLICK_SHARE:
            continue
        at = o.at - timedelta(seconds=rng.randint(40, 20 * 60))
        if at > link.at:
            o.click = ClickPlan(at, link.video_id, _visitor(rng))
    clicks: list[ClickPlan] = []
    for video_id, day, _, n in views:
        link = links[video_id]
        for _ in range(int(n * CLICKS_PER_1000_VIEWS / 1000 + rng.random())):
            at = datetime.combine(day, time(0), UTC) + timedelta(
                seconds=rng.randint(0, 24 * 3600 - 1))
            if link.at < at < end:
                clicks.append(ClickPlan(at, video_id, _visitor(rng)))
    return list(links.values()), sorted(clicks, key=lambda c: c.at)


def _experiments(start: datetime, end: datetime) -> list[ExperimentPlan]:
    """The original against its remix, on the product both feature, from the remix's day."""
    out = []
    for name, product, original, remix in (
            ("Rainy denim vs the noir remix", "denim-jacket", "rainy-denim", "denim-noir"),
            ("Summer shades vs the beach remix", "sunglasses", "summer-shades",
             "summer-shades-remix")):
        day = next(v.day for v in VIDEOS if v.id == remix)
        at = start + timedelta(days=day, hours=16)
        if at < end:
            out.append(ExperimentPlan(name, product, (original, remix),
                                      (start + timedelta(days=day)).date(), at))
    return out
