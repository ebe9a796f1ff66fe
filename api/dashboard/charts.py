"""Charts as inline SVG, rendered on the server: no JavaScript to fail, crisp at any
width, and readable in a screenshot.

Responsive without scaling the type: the SVGs have no viewBox; horizontal positions are
percentages of the chart's width and vertical ones pixels, so a 390 px phone and a wide
desktop card both get 12-13 px labels and the drawing stretches to fit. Every data point
is an element a test can count: ``circle.point`` in line charts, ``rect.bar`` in bars."""

from __future__ import annotations

from datetime import date, timedelta
from html import escape

from models.money import format_minor


def _none(title: str) -> str:
    return f'<p class="muted">No data for {escape(title.lower())}.</p>'


def _short(amount: int, currency: str) -> str:
    """Axis labels: whole major units (``1,234 USD``), exact (integers only)."""
    number, _, code = format_minor(amount, currency).partition(" ")
    whole = number.split(".")[0]
    sign = "-" if whole.startswith("-") else ""
    digits = whole.lstrip("-")
    return f"{sign}{int(digits):,} {code}" if digits.isdigit() else f"{whole} {code}"


def _pct(value: float) -> str:
    return f"{value:.2f}%"


def bar_chart(points: list[tuple[str, int]], currency: str, *, title: str,
              flagged: frozenset[str] = frozenset()) -> str:
    """Horizontal bars (label, amount in minor units), largest first. Each row puts the
    label above its bar, so long labels (video titles) stay readable on a phone.
    Labels in ``flagged`` are marked (e.g. a creative that is not in the video catalog)."""
    if not points:
        return _none(title)
    points = sorted(points, key=lambda p: (-p[1], p[0]))
    top = max(max(v for _, v in points), 1)
    row = 46
    height = row * len(points) + 4
    bars = []
    for i, (label, value) in enumerate(points):
        y = 2 + i * row
        share = 70 * max(value, 0) / top  # the value's text fits in the last 30 %
        mark = " (unknown creative)" if label in flagged else ""
        text = label if len(label) <= 42 else label[:41] + "…"
        bars.append(
            f'<g class="{"flagged" if mark else "known"}"><title>{escape(label + mark)}: '
            f'{escape(format_minor(value, currency))}</title>'
            f'<text x="0" y="{y + 15}" class="label">{escape(text + mark)}</text>'
            f'<rect class="bar" x="0" y="{y + 22}" width="{_pct(max(share, 0.4))}" '
            f'height="16" rx="3"/>'
            f'<text x="{_pct(share)}" dx="6" y="{y + 35}" class="value">'
            f"{escape(format_minor(value, currency))}</text></g>")
    return (f'<svg class="chart bars" width="100%" height="{height}" role="img" '
            f'aria-label="{escape(title)}"><title>{escape(title)}</title>{"".join(bars)}</svg>')


def line_chart(points: list[tuple[str, int]], currency: str, *, title: str) -> str:
    """A time series (period label, amount in minor units), oldest first: a line with a
    point per period, the maximum on the y axis, and first/middle/last period labels."""
    if not points:
        return _none(title)
    height, top_pad, bottom = 220, 28, 30
    inner_h = height - top_pad - bottom
    top = max(max(v for _, v in points), 1)
    left, right = 1.5, 98.5  # percent: room for the end points' radius
    step = (right - left) / max(len(points) - 1, 1)
    coords = [(left + i * step if len(points) > 1 else 50.0,
               top_pad + inner_h - inner_h * max(v, 0) / top)
              for i, (_, v) in enumerate(points)]
    segments = "".join(
        f'<line class="line" x1="{_pct(x1)}" y1="{y1:.1f}" x2="{_pct(x2)}" y2="{y2:.1f}"/>'
        for (x1, y1), (x2, y2) in zip(coords, coords[1:], strict=False))
    radius = 4 if len(points) <= 35 else 2.5
    dots = "".join(f'<circle class="point" cx="{_pct(x)}" cy="{y:.1f}" r="{radius}"><title>'
                   f'{escape(label)}: {escape(format_minor(v, currency))}</title></circle>'
                   for (x, y), (label, v) in zip(coords, points, strict=True))
    base = top_pad + inner_h
    labels = [(0, "start", "0%")]
    if len(points) > 4:
        labels.append((len(points) // 2, "middle", _pct(coords[len(points) // 2][0])))
    if len(points) > 1:
        labels.append((len(points) - 1, "end", "100%"))
    ticks = "".join(f'<text x="{x}" y="{height - 8}" text-anchor="{anchor}">'
                    f"{escape(points[i][0])}</text>" for i, anchor, x in labels)
    return (f'<svg class="chart line" width="100%" height="{height}" role="img" '
            f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
            f'<line x1="0" y1="{top_pad}" x2="100%" y2="{top_pad}" class="grid"/>'
            f'<line x1="0" y1="{base}" x2="100%" y2="{base}" class="axis"/>'
            f'<text x="0" y="{top_pad - 9}" class="value">max '
            f'{escape(_short(top, currency))}</text>{segments}{dots}{ticks}</svg>')


def daily(points: list[tuple[str, int]], start: date, end: date) -> list[tuple[str, int]]:
    """One point per day from ``start`` to ``end`` (exclusive): missing days are zero."""
    values = dict(points)
    out = []
    day = start
    while day < end:
        out.append((day.isoformat(), values.get(day.isoformat(), 0)))
        day += timedelta(days=1)
    return out


def weekly(days: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """Daily points summed per ISO week, labelled by the week's Monday (``wk 2026-11-30``)."""
    weeks: dict[str, int] = {}
    for label, value in days:
        monday = date.fromisoformat(label) - timedelta(days=date.fromisoformat(label).weekday())
        key = f"wk {monday.isoformat()}"
        weeks[key] = weeks.get(key, 0) + value
    return list(weeks.items())


def over_time(points: list[tuple[str, int]], start: date, end: date
              ) -> tuple[list[tuple[str, int]], str]:
    """Days for up to ~6 weeks, weeks beyond (a 90-day chart of days is unreadable on a
    phone). Returns the series and its unit (``day`` or ``week``)."""
    days = daily(points, start, end)
    if len(days) > 45:
        return weekly(days), "week"
    return days, "day"
