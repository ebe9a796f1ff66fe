"""The attribution ledger: per order, per video, per model; append-only.

A sale splits every money component (gross, discount, tax, shipping, commissionable
base, fee, net) across the credited videos with the model's shares, in integers that sum
exactly. A refund or dispute appends negative rows: each component is reduced by the
refunded fraction, computed cumulatively so that refunds adding up to the whole order
reverse it exactly, cent for cent.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from attribution.rules import MODELS, Credit, Touch, Windows, allocate, credit, split
from links import repository as link_repository
from models import AttributionTouch, LedgerEntry, Order, Video
from models.base import utc_now
from models.statuses import TouchType

LEDGER = cast(Table, LedgerEntry.__table__)
_INSERT_LEDGER = insert(LEDGER)  # built once: every sale appends rows
_SESSION_TOUCHES = (  # a session's touches with the videos they name, in one statement
    select(AttributionTouch, Video)
    .outerjoin(Video, Video.id == AttributionTouch.video_id)
    .where(AttributionTouch.checkout_session_id == bindparam("session_id")))
COMPONENTS = ("gross", "discount", "tax", "shipping", "commissionable", "fee", "net")


SaleListener = Callable[[AsyncSession, Order, list[dict[str, Any]]], Awaitable[None]]
ReversalListener = Callable[..., Awaitable[None]]
# Domains that append their own rows where this ledger appends (commissions): registered by
# name (idempotent), called in the same transaction, after this ledger's rows.
_SALE_LISTENERS: dict[str, SaleListener] = {}
_REVERSAL_LISTENERS: dict[str, ReversalListener] = {}


def listen(name: str, *, on_sale: SaleListener, on_reversal: ReversalListener) -> None:
    """``on_sale(db, order, rows)``; ``on_reversal(db, order, before=, after=, kind=,
    reference=, reason=)`` with the order's reversed total moving from before to after."""
    _SALE_LISTENERS[name] = on_sale
    _REVERSAL_LISTENERS[name] = on_reversal


@dataclass(frozen=True, slots=True)
class LedgerPolicy:
    """``window_days`` is the click window (clicks and agent claims), ``view_window_days``
    the view window; ``model_windows`` overrides both for named models."""

    window_days: int | None = 28
    remix_share: Fraction = Fraction(0)
    view_window_days: int | None = 1
    model_windows: tuple[tuple[str, Windows], ...] = ()

    def windows(self, model: str) -> Windows:
        for name, windows in self.model_windows:
            if name == model:
                return windows
        return Windows(self.window_days, self.view_window_days)

    @property
    def horizon_days(self) -> int | None:
        """How far back any model looks (None: lifetime)."""
        days = [d for m in MODELS for d in (self.windows(m).click_days,
                                            self.windows(m).view_days)]
        return None if any(d is None for d in days) else max(d for d in days if d is not None)


def components(order: Order, fee: int) -> dict[str, int]:
    totals = {t["type"]: t["amount"] for t in order.totals}
    discount = totals.get("discount", 0) + totals.get("items_discount", 0)
    commissionable = totals.get("items_base_amount", 0) - discount  # paid price, no tax/ship
    return {"gross": order.total_amount, "discount": discount, "tax": totals.get("tax", 0),
            "shipping": totals.get("fulfillment", 0), "commissionable": commissionable,
            "fee": fee, "net": order.total_amount - fee}


def _touch_type(row: AttributionTouch) -> str:
    if row.touch_type:
        return row.touch_type
    # Rows from before touch types: a web journey (a link carrying the video) is a click.
    return TouchType.click if row.touchpoint == "web" else TouchType.agent_claim


async def _touches(db: AsyncSession, session_id: str, order_at: datetime,
                   horizon_days: int | None) -> tuple[list[Touch], dict[str, Video]]:
    """The session's touches, plus every click and pixel view of the visitors it is joined
    to (through a claimed click or the web journey's visitor cookie); and the videos the
    session's own touches name, read in the same statement."""
    rows: list[AttributionTouch] = []
    videos: dict[str, Video] = {}
    for row, video in await db.execute(_SESSION_TOUCHES, {"session_id": session_id}):
        rows.append(row)
        if video is not None:
            videos[video.id] = video
    out = [Touch(r.video_id, r.touched_at, _touch_type(r)) for r in rows
           if r.video_id is not None or not r.visitor]  # a visitor-only row adds no touch
    claimed_clicks = {r.click_id for r in rows if r.click_id}
    after = order_at - timedelta(days=horizon_days) if horizon_days is not None else None
    for visitor in sorted({r.visitor for r in rows if r.visitor}):
        for touch in await link_repository.visitor_touches(db, visitor, before=order_at,
                                                           after=after):
            if touch.id not in claimed_clicks:
                out.append(Touch(touch.video_id, touch.touched_at, touch.kind))
    return out, videos


async def _shares(db: AsyncSession, order: Order, policy: LedgerPolicy, touched: bool = True
                  ) -> tuple[dict[str, Credit], dict[str | None, datetime], dict[str, Video]]:
    """(credit per model, latest touch per video, the touched videos as loaded).
    ``touched=False``: the caller knows the session has no touches (nor, then, visitors)."""
    plain, loaded = await _touches(db, order.checkout_session_id, order.created_at,
                                   policy.horizon_days) if touched else ([], {})
    # Videos only a visitor's clicks or views name (web journeys): one more look-up.
    loaded.update(await _video_facts(
        db, {t.video_id for t in plain if t.video_id} - loaded.keys()))
    parents = {v.id: v.parent_video_id for v in loaded.values() if v.parent_video_id}
    shares = {model: credit(model, plain, order.created_at, policy.windows(model),
                            parents=parents, remix_share=policy.remix_share)
              for model in MODELS}
    latest_touch: dict[str | None, datetime] = {}
    for t in plain:
        latest_touch[t.video_id] = max(latest_touch.get(t.video_id, t.at), t.at)
    return shares, latest_touch, loaded


async def _video_facts(db: AsyncSession, video_ids: set[str]) -> dict[str, Video]:
    if not video_ids:
        return {}
    return {v.id: v for v in await db.scalars(select(Video).where(Video.id.in_(video_ids)))}


async def _append(db: AsyncSession, order: Order, policy: LedgerPolicy, kind: str,
                  amounts: dict[str, int], *, reference: str | None = None,
                  reason: str | None = None, has_touches: bool = True
                  ) -> list[dict[str, Any]]:
    shares, touched, videos = await _shares(db, order, policy, has_touches)
    # Credited videos were loaded with the touches; only remix parents (credited through
    # their remixes) may still be missing: one look-up for those, none usually.
    credited = {v for s in shares.values() for v in s.shares if v}
    videos = {**videos, **await _video_facts(db, credited - videos.keys())}
    now = utc_now()
    rows = []
    for model, model_credit in shares.items():
        model_shares = model_credit.shares
        per_component = {c: split(amounts[c], model_shares) for c in COMPONENTS}
        for video_id in model_shares:
            video = videos.get(video_id) if video_id else None
            rows.append(dict(
                order_id=order.id, video_id=video_id, model=model,
                window_days=model_credit.window_days[video_id],
                touch_type=model_credit.touch_types[video_id],
                kind=kind, reason=reason, reference=reference,
                currency=order.currency, **{c: per_component[c][video_id] for c in COMPONENTS},
                campaign=video.campaign if video else None,
                creator=video.creator if video else None,
                generator=video.generator if video else None, agent_id=order.agent_id,
                order_at=order.created_at, touch_at=touched.get(video_id), created_at=now))
    await _insert(db, rows)
    return rows


async def _insert(db: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Append rows with one executemany: nothing reads them back as entities, and the
    ORM would insert them one statement at a time (it needs each generated id)."""
    if rows:
        await db.execute(_INSERT_LEDGER, rows)


async def record_sale(db: AsyncSession, order: Order, fee: int | None,
                      policy: LedgerPolicy, *, touched: bool = True) -> None:
    """``touched=False``: the caller read, in this transaction, that the order's session
    has no attribution touches (the sale is credited to no video; no look-up needed)."""
    rows = await _append(db, order, policy, "sale", components(order, fee or 0),
                         has_touches=touched)
    for on_sale in _SALE_LISTENERS.values():
        await on_sale(db, order, rows)


async def _sale_rows(db: AsyncSession, order_id: str) -> dict[str, list[LedgerEntry]]:
    rows = await db.scalars(select(LedgerEntry).where(
        LedgerEntry.order_id == order_id, LedgerEntry.kind == "sale")
        .order_by(LedgerEntry.id))
    by_model: dict[str, list[LedgerEntry]] = {}
    for row in rows:
        by_model.setdefault(row.model, []).append(row)
    return by_model


async def _append_like_sale(db: AsyncSession, order: Order, kind: str,
                            amounts: dict[str, int], *, reference: str | None,
                            reason: str | None) -> None:
    """Adjustments are split the way the sale was credited (its rows are the weights)."""
    now = utc_now()
    new_rows = []
    for model, rows in (await _sale_rows(db, order.id)).items():
        weights = [r.gross for r in rows]
        if sum(weights) <= 0:
            weights = [1] * len(rows)
        parts = {c: allocate(amounts[c], weights) for c in COMPONENTS}
        for index, sale in enumerate(rows):
            new_rows.append(dict(
                order_id=order.id, video_id=sale.video_id, model=model,
                window_days=sale.window_days, touch_type=sale.touch_type, kind=kind,
                reason=reason, reference=reference,
                currency=order.currency, **{c: parts[c][index] for c in COMPONENTS},
                campaign=sale.campaign, creator=sale.creator, generator=sale.generator,
                agent_id=sale.agent_id, order_at=sale.order_at, touch_at=sale.touch_at,
                created_at=now))
    await _insert(db, new_rows)


async def record_fee(db: AsyncSession, order: Order, fee: int) -> None:
    """The provider's fee became known after the sale (Stripe balance transaction)."""
    amounts = dict.fromkeys(COMPONENTS, 0)
    amounts.update(fee=fee, net=-fee)
    await _append_like_sale(db, order, "fee", amounts, reference=None, reason="processing_fee")


def reversed_portion(component: int, reversed_amount: int, total: int) -> int:
    """How much of ``component`` is reversed once ``reversed_amount`` of ``total`` is.
    Differences of this function give each refund's share; they telescope, so refunds that
    add up to the total reverse the component exactly."""
    if total <= 0 or reversed_amount <= 0:
        return 0
    if reversed_amount >= total:
        return component
    return allocate(component, [reversed_amount, total - reversed_amount])[0]


async def _reversed_so_far(db: AsyncSession, order_id: str) -> int:
    total = await db.scalar(select(func.coalesce(func.sum(LedgerEntry.gross), 0)).where(
        LedgerEntry.order_id == order_id, LedgerEntry.model == MODELS[0],
        LedgerEntry.kind.in_(("refund", "refund_failed", "dispute", "dispute_won",
                              "capture_release"))))
    return -int(total or 0)


async def record_reversal(db: AsyncSession, order: Order, amount: int, *, kind: str,
                          reference: str, reason: str | None) -> None:
    """Rows for a refund/dispute of ``amount``: positive reverses, negative reinstates
    (a dispute won). Cumulative rounding: reversals of the whole order net to zero."""
    sale = components(order, 0)
    total = order.total_amount
    before = await _reversed_so_far(db, order.id)
    after = min(max(before + amount, 0), total)

    amounts = {c: -(reversed_portion(sale[c], after, total)
                    - reversed_portion(sale[c], before, total))
               for c in ("gross", "discount", "tax", "shipping", "commissionable")}
    amounts["fee"] = 0  # the processing fee is not returned on refunds
    amounts["net"] = amounts["gross"]
    await _append_like_sale(db, order, kind, amounts, reference=reference, reason=reason)
    for on_reversal in _REVERSAL_LISTENERS.values():
        await on_reversal(db, order, before=before, after=after, kind=kind,
                          reference=reference, reason=reason)
