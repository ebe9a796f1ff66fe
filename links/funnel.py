"""The per-video funnel: views (``video_view_counts``, every source) → clicks (shoppable
link clicks) → checkouts created (sessions a touch ties to the video) → completed → net
revenue (the attribution ledger, one model), with conversion rates, revenue per 1,000 views
and the agents' cancellation reasons (ACP ``intent_trace.reason_code``) per video.

A session is a checkout of every video one of its attribution touches names (a touch
through a shoppable link or click carries the link's video; a claim naming no known video
or link names none), once per video (README "Funnel").

The reads are here; the arithmetic (``rates``) is a pure function.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from fractions import Fraction
from typing import Any

from sqlalchemy import BigInteger, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import AttributionTouch, CheckoutSession, LedgerEntry, LinkTouch, Video
from models import VideoViewCount as Views
from models.statuses import CheckoutStatus, TouchType

NO_REASON = "unspecified"


@dataclass
class FunnelRow:
    video_id: str
    title: str | None = None
    views: int = 0
    views_by_source: dict[str, int] = field(default_factory=dict)
    clicks: int = 0
    checkouts: int = 0
    completed: int = 0
    net_revenue: dict[str, int] = field(default_factory=dict)  # currency → minor units
    orders: int = 0
    cancellations: dict[str, int] = field(default_factory=dict)  # reason_code → sessions


def _ratio(part: int, whole: int) -> float | None:
    return round(float(Fraction(part, whole)), 4) if whole else None


def rates(row: FunnelRow) -> dict[str, Any]:
    """Conversion rates (None where the step before is empty) and revenue per 1,000
    views in integer minor units per currency (rounded down)."""
    return {
        "click_through_rate": _ratio(row.clicks, row.views),
        "checkout_rate": _ratio(row.checkouts, row.clicks),
        "completion_rate": _ratio(row.completed, row.checkouts),
        "view_to_order_rate": _ratio(row.completed, row.views),
        "revenue_per_1000_views": {c: (amount * 1000) // row.views
                                   for c, amount in row.net_revenue.items()}
        if row.views else {},
    }


def row_json(row: FunnelRow) -> dict[str, Any]:
    return {"video_id": row.video_id, "title": row.title, "views": row.views,
            "views_by_source": dict(sorted(row.views_by_source.items())),
            "clicks": row.clicks, "checkouts_created": row.checkouts,
            "checkouts_completed": row.completed, "orders_credited": row.orders,
            "net_revenue": dict(sorted(row.net_revenue.items())), **rates(row),
            "cancellation_reasons": dict(sorted(row.cancellations.items(),
                                                key=lambda kv: (-kv[1], kv[0])))}


def _bounds(start: date, end: date) -> tuple[datetime, datetime]:
    return (datetime.combine(start, time.min, UTC), datetime.combine(end, time.min, UTC))


async def funnel(db: AsyncSession, *, start: date, end: date, model: str,
                 video_id: str | None = None) -> list[FunnelRow]:
    """Rows for every video (or one), ``start`` ≤ day < ``end``; videos with activity
    first (by views, then clicks)."""
    lo, hi = _bounds(start, end)
    videos = select(Video.id, Video.title)
    if video_id:
        videos = videos.where(Video.id == video_id)
    rows = {vid: FunnelRow(vid, title) for vid, title in await db.execute(videos)}
    if not rows:
        return []

    def only(column: Any) -> Any:
        return column == video_id if video_id else column.is_not(None)

    for vid, source, views in await db.execute(
            select(Views.video_id, Views.source, cast(func.sum(Views.views), BigInteger))
            .where(Views.day >= start, Views.day < end, only(Views.video_id))
            .group_by(Views.video_id, Views.source)):
        if vid in rows:
            rows[vid].views_by_source[source] = int(views)
            rows[vid].views += int(views)
    for vid, clicks in await db.execute(
            select(LinkTouch.video_id, func.count()).where(
                LinkTouch.kind == TouchType.click, LinkTouch.touched_at >= lo,
                LinkTouch.touched_at < hi, only(LinkTouch.video_id))
            .group_by(LinkTouch.video_id)):
        if vid in rows:
            rows[vid].clicks = int(clicks)
    sessions: dict[str, set[str]] = {}
    touched = (select(AttributionTouch.video_id, CheckoutSession.id, CheckoutSession.status,
                      CheckoutSession.cancel_reason)
               .join(CheckoutSession, CheckoutSession.id == AttributionTouch.checkout_session_id)
               .where(CheckoutSession.created_at >= lo, CheckoutSession.created_at < hi,
                      only(AttributionTouch.video_id)))
    for vid, session_id, status, reason in await db.execute(touched):
        if vid not in rows or session_id in sessions.setdefault(vid, set()):
            continue
        sessions[vid].add(session_id)
        row = rows[vid]
        row.checkouts += 1
        if status == CheckoutStatus.completed:
            row.completed += 1
        elif status == CheckoutStatus.canceled:
            code = reason.get("reason_code") if isinstance(reason, dict) else None
            key = str(code)[:64] if code else NO_REASON
            row.cancellations[key] = row.cancellations.get(key, 0) + 1
    for credited, currency, net, orders in await db.execute(
            select(LedgerEntry.video_id, LedgerEntry.currency,
                   cast(func.sum(LedgerEntry.net), BigInteger),
                   func.count(func.distinct(LedgerEntry.order_id)))
            .where(LedgerEntry.model == model, LedgerEntry.order_at >= lo,
                   LedgerEntry.order_at < hi, only(LedgerEntry.video_id))
            .group_by(LedgerEntry.video_id, LedgerEntry.currency)):
        if credited in rows:
            rows[credited].net_revenue[currency] = int(net)
            rows[credited].orders += int(orders)
    return sorted(rows.values(), key=lambda r: (-r.views, -r.clicks, r.video_id))


def totals(rows: list[FunnelRow]) -> FunnelRow:
    total = FunnelRow("total")
    reasons: Counter[str] = Counter()
    revenue: Counter[str] = Counter()
    sources: Counter[str] = Counter()
    for row in rows:
        total.views += row.views
        total.clicks += row.clicks
        total.checkouts += row.checkouts
        total.completed += row.completed
        total.orders += row.orders
        reasons.update(row.cancellations)
        revenue.update(row.net_revenue)
        sources.update(row.views_by_source)
    total.cancellations, total.net_revenue = dict(reasons), dict(revenue)
    total.views_by_source = dict(sources)
    return total


CSV_HEADER = ("video_id", "title", "views", "clicks", "checkouts_created",
              "checkouts_completed", "click_through_rate", "checkout_rate", "completion_rate",
              "view_to_order_rate", "currency", "net_revenue", "revenue_per_1000_views",
              "cancellation_reasons")


def csv_rows(rows: list[FunnelRow]) -> list[list[Any]]:
    """One line per video and currency (one line with no currency when it sold nothing)."""
    out: list[list[Any]] = []
    for row in rows:
        r = rates(row)
        reasons = ";".join(f"{k}={v}" for k, v in sorted(row.cancellations.items()))
        for currency in sorted(row.net_revenue) or [""]:
            out.append([row.video_id, row.title or "", row.views, row.clicks, row.checkouts,
                        row.completed, r["click_through_rate"], r["checkout_rate"],
                        r["completion_rate"], r["view_to_order_rate"], currency,
                        row.net_revenue.get(currency, ""),
                        r["revenue_per_1000_views"].get(currency, ""), reasons])
    return out
