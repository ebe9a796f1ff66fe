"""Pure attribution: which videos get credit for an order, in integer minor units.

Every model returns credits that sum *exactly* to the amount (largest-remainder rounding:
no cent is created or lost), so ledger totals tie out to orders to the cent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction

MODELS = ("last_touch", "first_touch", "linear", "position_based")
UNATTRIBUTED = None  # credit that no eligible video earned


@dataclass(frozen=True, slots=True)
class Touch:
    video_id: str | None  # None: the touch named no video we know (kept, flagged)
    at: datetime


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
    keys = sorted(shares, key=lambda v: (v is None, v or ""))
    return dict(zip(keys, allocate(amount, [shares[k] for k in keys]), strict=True))
