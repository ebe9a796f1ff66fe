"""Pure commission computation, in integer minor units.

A sale's commissions are computed from its attribution-ledger credits (per video, per
model: the commissionable base the ledger already split exactly) and the contracts in
force at the order time. Every split reuses the attribution allocation rule
(largest remainder), so shares always sum exactly to what is split:

- a contract's amount for one credited video is split among its payees by weight;
- a fixed amount per unit is split across the credited videos by their credit;
- a product/category scope takes the matching lines' part of a video's base;
- a remix's commission gives ``remix_share_bps`` of itself to the payees of the video it
  was remixed from (their own contract weights), the rest stays with the remix's payees;
- a refund or dispute claws back each commission row cumulatively (like the ledger), so
  refunds adding up to the order reverse it cent for cent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from attribution.rules import allocate
from models.money import apply_rate_bps


class Scope(StrEnum):
    video = "video"
    remixes = "remixes"
    campaign = "campaign"
    product = "product"
    category = "category"
    creator = "creator"


class Basis(StrEnum):
    percent = "percent"
    fixed_per_unit = "fixed_per_unit"


class EntryKind(StrEnum):
    sale = "sale"
    refund = "refund"
    capture_release = "capture_release"  # the part of an authorisation not captured
    dispute = "dispute"
    dispute_won = "dispute_won"
    payout = "payout"
    payout_reversal = "payout_reversal"


class EntryStatus(StrEnum):
    pending = "pending"
    locked = "locked"
    in_payout = "in_payout"
    paid = "paid"


@dataclass(frozen=True, slots=True)
class Credit:
    """One attribution-ledger sale row: a video's credit for the order under a model."""

    video_id: str | None
    model: str
    commissionable: int


@dataclass(frozen=True, slots=True)
class Line:
    product_id: str
    quantity: int
    commissionable: int  # line base minus its discount
    categories: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class VideoFacts:
    id: str
    campaign: str | None = None
    creator: str | None = None
    lineage: tuple[str, ...] = ()  # ancestors, nearest first


@dataclass(frozen=True, slots=True)
class Terms:
    contract_id: str
    scope: Scope
    scope_value: str
    basis: Basis
    model: str
    payees: tuple[tuple[str, int], ...]  # (payee id, weight)
    rate_bps: int = 0
    fixed_amount: int = 0
    currency: str | None = None
    remix_share_bps: int = 0
    effective_from: datetime | None = None
    effective_to: datetime | None = None

    def in_force(self, at: datetime) -> bool:
        return ((self.effective_from is None or self.effective_from <= at)
                and (self.effective_to is None or at < self.effective_to))


@dataclass(frozen=True, slots=True)
class Share:
    """One payee's commission on one credited video under one contract."""

    contract_id: str
    payee_id: str
    video_id: str  # the credited video (the sale's)
    earned_on_video_id: str  # the video whose payee earns it (the parent, for lineage)
    model: str
    amount: int
    base_amount: int
    units: int
    weight: int
    basis: Basis
    rate_bps: int
    fixed_amount: int


@dataclass(slots=True)
class Sale:
    order_at: datetime
    currency: str
    credits: Sequence[Credit]
    lines: Sequence[Line]
    videos: dict[str, VideoFacts] = field(default_factory=dict)


def split_by_weight(amount: int, payees: Sequence[tuple[str, int]]) -> list[tuple[str, int, int]]:
    """(payee, weight, share) with shares summing exactly to ``amount``."""
    weights = [w for _, w in payees]
    return [(p, w, part) for (p, w), part in zip(payees, allocate(amount, weights), strict=True)]


def matches(terms: Terms, video: VideoFacts | None, video_id: str, lines: Sequence[Line]
            ) -> bool:
    value = terms.scope_value
    if terms.scope == Scope.video:
        return video_id == value
    if terms.scope == Scope.remixes:
        return video is not None and value in video.lineage
    if terms.scope == Scope.campaign:
        return video is not None and video.campaign == value
    if terms.scope == Scope.creator:
        return video is not None and video.creator == value
    if terms.scope == Scope.product:
        return any(ln.product_id == value for ln in lines)
    return any(value in ln.categories for ln in lines)


def _scoped_lines(terms: Terms, lines: Sequence[Line]) -> list[Line]:
    if terms.scope == Scope.product:
        return [ln for ln in lines if ln.product_id == terms.scope_value]
    if terms.scope == Scope.category:
        return [ln for ln in lines if terms.scope_value in ln.categories]
    return list(lines)


def _part(amount: int, part: int, whole: int) -> int:
    """``amount × part / whole`` by the allocation rule (exact complement)."""
    if whole <= 0 or part <= 0:
        return 0
    if part >= whole:
        return amount
    return allocate(amount, [part, whole - part])[0]


def contract_amounts(terms: Terms, sale: Sale) -> list[tuple[str, int, int, int]]:
    """(credited video, amount, base, units) for every credited video the contract covers."""
    credits = [c for c in sale.credits if c.model == terms.model]
    if not credits:
        return []
    scoped = _scoped_lines(terms, sale.lines)
    units = sum(ln.quantity for ln in scoped)
    lines_base = sum(ln.commissionable for ln in sale.lines)
    scoped_base = sum(ln.commissionable for ln in scoped)
    covered = [(i, c) for i, c in enumerate(credits) if c.video_id is not None and matches(
        terms, sale.videos.get(c.video_id), c.video_id, sale.lines)]
    if not covered:
        return []
    out: list[tuple[str, int, int, int]] = []
    if terms.basis == Basis.fixed_per_unit:
        if terms.currency and terms.currency != sale.currency:
            return []
        weights = [max(c.commissionable, 0) for c in credits]
        if sum(weights) <= 0:
            return []
        per_video = allocate(terms.fixed_amount * units, weights)
        for i, c in covered:
            base = _part(c.commissionable, scoped_base, lines_base)
            out.append((str(c.video_id), per_video[i], base, units))
        return out
    for _, c in covered:
        base = _part(c.commissionable, scoped_base, lines_base)
        out.append((str(c.video_id), apply_rate_bps(base, terms.rate_bps) if base > 0 else 0,
                    base, units))
    return out


def compute_sale(sale: Sale, contracts: Sequence[Terms],
                 parent_payees: dict[str, tuple[tuple[str, int], ...]] | None = None
                 ) -> list[Share]:
    """Every payee's share of the sale, under every contract in force at the order time.

    ``parent_payees``: for a video, the weighted payees of its own video-scoped
    contracts; a remix's ``remix_share_bps`` flows to those of its parent.
    """
    parents = parent_payees or {}
    shares: list[Share] = []
    for terms in contracts:
        if not terms.in_force(sale.order_at) or not terms.payees:
            continue
        for video_id, amount, base, units in contract_amounts(terms, sale):
            if amount == 0:
                continue
            video = sale.videos.get(video_id)
            parent = video.lineage[0] if video and video.lineage else None
            upstream = parents.get(parent, ()) if parent else ()
            moved = apply_rate_bps(amount, terms.remix_share_bps) if upstream else 0

            def add(payees: Sequence[tuple[str, int]], total: int, earned_on: str,
                    terms: Terms = terms, video_id: str = video_id, base: int = base,
                    units: int = units) -> None:
                for payee_id, weight, part in split_by_weight(total, payees):
                    if part:
                        shares.append(Share(
                            terms.contract_id, payee_id, video_id, earned_on, terms.model,
                            part, base, units, weight, terms.basis, terms.rate_bps,
                            terms.fixed_amount))

            add(terms.payees, amount - moved, video_id)
            if moved and parent:
                add(upstream, moved, parent)
    return shares


def clawback(amount: int, before: int, after: int, total: int) -> int:
    """What a commission row of ``amount`` loses when the order's reversed total moves from
    ``before`` to ``after`` (of ``total``). Negative reverses, positive reinstates; the
    differences telescope, so reversing the whole order returns the row to zero."""
    def portion(reversed_amount: int) -> int:
        if total <= 0 or reversed_amount <= 0:
            return 0
        if reversed_amount >= total:
            return amount
        return allocate(amount, [reversed_amount, total - reversed_amount])[0]

    return -(portion(after) - portion(before))


def video_payees(contracts: Sequence[Terms], at: datetime
                 ) -> dict[str, tuple[tuple[str, int], ...]]:
    """Each video's weighted payees under its own video-scoped contracts in force (the
    payees a remix's lineage share flows to)."""
    out: dict[str, dict[str, int]] = {}
    for terms in contracts:
        if terms.scope == Scope.video and terms.in_force(at):
            merged = out.setdefault(terms.scope_value, {})
            for payee_id, weight in terms.payees:
                merged[payee_id] = merged.get(payee_id, 0) + weight
    return {video: tuple(sorted(p.items())) for video, p in out.items()}
