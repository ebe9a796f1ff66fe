"""Pure attribution: which videos get credit for an order, in integer minor units.

Every model returns credits that sum *exactly* to the amount (largest-remainder rounding:
no cent is created or lost), so ledger totals tie out to orders to the cent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction

from models.statuses import TouchType

MODELS = ("last_touch", "first_touch", "linear", "position_based")
UNATTRIBUTED = None  # credit that no eligible video earned


@dataclass(frozen=True, slots=True)
class Touch:
    video_id: str | None  # None: the touch named no video we know (kept, flagged)
    at: datetime
    type: str = TouchType.agent_claim  # click | view | agent_claim (``TouchType``)


@dataclass(frozen=True, slots=True)
class Windows:
    """A model's attribution windows in days (``None`` = lifetime): clicks (and agent
    claims) count within ``click_days``, views within ``view_days`` and only when no click
    does (click precedence, as TikTok Shop's 7-day click / 1-day view)."""

    click_days: int | None = 7
    view_days: int | None = 1

    def days(self, touch_type: str | None) -> int | None:
        return self.view_days if touch_type == TouchType.view else self.click_days


@dataclass(frozen=True, slots=True)
class Credit:
    """Who gets an order's credit under one model, and which touches earned it."""

    shares: dict[str | None, Fraction]
    touch_types: dict[str | None, str | None]  # per credited video: the type that earned it
    window_days: dict[str | None, int | None]  # per credited video: that type's window


def with_precedence(touches: Sequence[Touch], order_at: datetime, windows: Windows
                    ) -> list[Touch]:
    """The touches that may earn credit, oldest first: clicks and claims inside the click
    window; only when there are none, views inside the view window."""
    clicks = eligible([t for t in touches if t.type != TouchType.view], order_at,
                      windows.click_days)
    if clicks:
        return clicks
    return eligible([t for t in touches if t.type == TouchType.view], order_at,
                    windows.view_days)


def credit(model: str, touches: Sequence[Touch], order_at: datetime, windows: Windows, *,
           parents: dict[str, str] | None = None, remix_share: Fraction = Fraction(0)
           ) -> Credit:
    """``credit_weights`` over the touches that click precedence and the windows admit,
    plus the touch type (and its window) behind each credited video: the type of that
    video's latest admitted touch (a remix parent inherits its child's)."""
    admitted = with_precedence(touches, order_at, windows)
    shares = credit_weights(model, admitted, order_at, None, parents=parents,
                            remix_share=remix_share)
    latest: dict[str | None, str] = {}
    for touch in admitted:  # oldest first: the latest wins
        latest[touch.video_id] = touch.type
    types: dict[str | None, str | None] = {}
    for video_id in shares:
        kind = latest.get(video_id)
        if kind is None and video_id is not None and parents:
            kind = next((latest[child] for child, parent in parents.items()
                         if parent == video_id and child in latest), None)
        types[video_id] = kind
    return Credit(shares, types, {v: windows.days(t) if t else windows.click_days
                                  for v, t in types.items()})


def allocate(amount: int, weights: Sequence[Fraction | int]) -> list[int]:
    """Split ``amount`` by ``weights`` into integers that sum exactly to ``amount``.

    Largest remainder: floor every share, then hand the leftover units to the largest
    fractional parts (ties to the earliest), so the result is deterministic.
    """
    if not weights:
        raise ValueError("nothing to allocate to")
    if len(weights) == 1 and weights[0] > 0:  # one video, or none: no Fractions needed
        return [amount]
    total = sum(Fraction(w) for w in weights)
    if total <= 0 or any(Fraction(w) < 0 for w in weights):
        raise ValueError("weights must be non-negative and not all zero")
    sign = -1 if amount < 0 else 1
    magnitude = abs(amount)
    exact = [Fraction(magnitude) * Fraction(w) / total for w in weights]
    floors = [int(x) for x in exact]
    leftover = magnitude - sum(floors)
    order = sorted(range(len(exact)), key=lambda i: (-(exact[i] - floors[i]), i))
    for i in order[:leftover]:
        floors[i] += 1
    return [sign * f for f in floors]


def eligible(touches: Sequence[Touch], order_at: datetime, window_days: int | None
             ) -> list[Touch]:
    """Touches inside the window (``None`` = lifetime), oldest first."""
    start = None if window_days is None else order_at - timedelta(days=window_days)
    kept = [t for t in touches if t.at <= order_at and (start is None or t.at >= start)]
    return sorted(kept, key=lambda t: t.at)


def weights_for(model: str, count: int) -> list[Fraction]:
    if model == "last_touch":
        return [Fraction(0)] * (count - 1) + [Fraction(1)]
    if model == "first_touch":
        return [Fraction(1)] + [Fraction(0)] * (count - 1)
    if model == "linear":
        return [Fraction(1, count)] * count
    if model == "position_based":  # 40 / 20 / 40
        if count == 1:
            return [Fraction(1)]
        if count == 2:
            return [Fraction(1, 2), Fraction(1, 2)]
        middle = Fraction(1, 5) / (count - 2)
        return [Fraction(2, 5)] + [middle] * (count - 2) + [Fraction(2, 5)]
    raise ValueError(f"unknown attribution model {model!r}")


def credit_weights(model: str, touches: Sequence[Touch], order_at: datetime,
                   window_days: int | None, *, parents: dict[str, str] | None = None,
                   remix_share: Fraction = Fraction(0)) -> dict[str | None, Fraction]:
    """Each video's share of the order (shares sum to 1). A share of a remix's credit
    (``remix_share``) flows to the video it was remixed from."""
    touches = eligible(touches, order_at, window_days)
    if not touches:
        return {UNATTRIBUTED: Fraction(1)}
    shares: dict[str | None, Fraction] = {}
    for touch, weight in zip(touches, weights_for(model, len(touches)), strict=True):
        if weight:
            shares[touch.video_id] = shares.get(touch.video_id, Fraction(0)) + weight
    if remix_share and parents:
        for video_id, share in list(shares.items()):
            parent = parents.get(video_id) if video_id else None
            if parent and parent != video_id:
                moved = share * remix_share
                shares[video_id] -= moved
                shares[parent] = shares.get(parent, Fraction(0)) + moved
    return {v: s for v, s in shares.items() if s}


def split(amount: int, shares: dict[str | None, Fraction]) -> dict[str | None, int]:
    """Integer credits per video that sum exactly to ``amount``."""
    if len(shares) == 1:  # one video, or none (every unattributed sale): all of it
        ((only, share),) = shares.items()
        if share > 0:
            return {only: amount}
    keys = sorted(shares, key=lambda v: (v is None, v or ""))
    return dict(zip(keys, allocate(amount, [shares[k] for k in keys]), strict=True))
