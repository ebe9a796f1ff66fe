"""Dashboard: the per-video funnel (views → clicks → checkouts → orders → net revenue),
charts drawn as SVG on the server, a CSV of the same rows."""

from __future__ import annotations

from datetime import date
from html import escape
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from api.dashboard import charts
from api.dashboard.routes import ViewerDep, page
from api.exports import csv_response
from api.routes.links import funnel_range
from links import funnel
from links.schemas import VIDEO_ID_PATTERN
from models.errors import AppError

router = APIRouter(prefix="/dashboard", include_in_schema=False)
MODELS = ("last_touch", "first_touch", "linear", "position_based")


def count_chart(points: list[tuple[str, int]], *, title: str) -> str:
    """The funnel's stages in order as horizontal bars of counts, each with its share of
    the first; drawn like the dashboard's other bar charts (label above the bar, widths in
    percent, so it reads on a phone)."""
    if not points or not points[0][1]:
        return f'<p class="muted">No data for {escape(title.lower())}.</p>'
    top = max(max(v for _, v in points), 1)
    first = points[0][1]
    row = 46
    bars = []
    for i, (label, value) in enumerate(points):
        y = 2 + i * row
        width = 70 * max(value, 0) / top  # the value's text fits in the last 30 %
        share = f" ({value / first:.1%})" if i else ""
        bars.append(
            f'<g><title>{escape(label)}: {value:,}</title>'
            f'<text x="0" y="{y + 15}" class="label">{escape(label)}</text>'
            f'<rect class="bar" x="0" y="{y + 22}" width="{max(width, 0.4):.2f}%" '
            f'height="16" rx="3"/>'
            f'<text x="{width:.2f}%" dx="6" y="{y + 35}" class="value">{value:,}{share}'
            f"</text></g>")
    return (f'<svg class="chart bars" width="100%" height="{row * len(points) + 4}" '
            f'role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>'
            f'{"".join(bars)}</svg>')


def _parse(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


@router.get("/funnel")
async def funnel_page(
    request: Request, who: ViewerDep,
    start: Annotated[str | None, Query(alias="from", max_length=10)] = None,
    end: Annotated[str | None, Query(alias="to", max_length=10)] = None,
    model: Annotated[str, Query(max_length=20)] = "last_touch",
    video: Annotated[str | None, Query(max_length=100, pattern=VIDEO_ID_PATTERN)] = None,
    format: Annotated[str, Query(max_length=4)] = "html",
) -> Response:
    model = model if model in MODELS else "last_touch"
    notice = None
    try:
        first, last = funnel_range(_parse(start), _parse(end))
    except AppError as exc:
        notice = exc.message
        first, last = funnel_range(None, None)
    async with who.runtime.read_sessionmaker() as db:
        rows = await funnel.funnel(db, start=first, end=last, model=model,
                                   video_id=video or None)
    if format == "csv":
        return csv_response(f"funnel-{first}-{last}.csv", funnel.CSV_HEADER,
                            funnel.csv_rows(rows))
    currency = who.runtime.profile.currencies[0]
    total = funnel.totals(rows)
    subject = rows[0] if video and rows else total
    stages = [("Views", subject.views), ("Clicks", subject.clicks),
              ("Checkouts", subject.checkouts), ("Completed", subject.completed)]
    sold = [r for r in rows if r.net_revenue.get(currency)]
    revenue = sorted(((r.title or r.video_id, r.net_revenue[currency]) for r in sold),
                     key=lambda p: -p[1])[:10]
    per_mille = sorted(((r.title or r.video_id,
                         funnel.rates(r)["revenue_per_1000_views"][currency])
                        for r in sold if r.views), key=lambda p: -p[1])[:10]
    return page(request, "dashboard/funnel.html", who,
                rows=[funnel.row_json(r) for r in rows], totals=funnel.row_json(total),
                funnel_chart=count_chart(stages, title="Funnel"),
                revenue_chart=charts.bar_chart(revenue, currency,
                                               title="Net revenue by video"),
                rpm_chart=charts.bar_chart(per_mille, currency,
                                           title="Revenue per 1,000 views"),
                params={"from": first.isoformat(), "to": last.isoformat(), "model": model,
                        "video": video or ""},
                models=MODELS, currency=currency, notice=notice)
