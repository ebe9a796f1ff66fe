"""Charts as inline SVG, rendered on the server: no JavaScript to fail, crisp at any
width, and readable in a screenshot.

The viewBoxes are narrow (480 units) and the type large (15 units), so that a chart
shrunk to a 390 px phone still has ~11 px labels. Every data point is an element a test
can count: ``circle.point`` in line charts, ``rect.bar`` in bar charts."""

from __future__ import annotations

from datetime import date, timedelta
from html import escape

from models.money import format_minor

WIDTH = 480


def _none(title: str) -> str:
    return f'<p class="muted">No data for {escape(title.lower())}.</p>'


def _short(amount: int, currency: str) -> str:
    """Axis labels: whole major units (``1,234 USD``), exact (integers only)."""
    text = format_minor(amount, currency)
    number, _, code = text.partition(" ")
    whole = number.split(".")[0]
    sign = "-" if whole.startswith("-") else ""
    digits = whole.lstrip("-")
    grouped = f"{int(digits):,}" if digits.isdigit() else digits
    return f"{sign}{grouped} {code}"


def bar_chart(points: list[tuple[str, int]], currency: str, *, title: str,
              flagged: frozenset[str] = frozenset()) -> str:
    """Horizontal bars (label, amount in minor units), largest first. Each row puts the
    label above its bar, so long labels (video titles) stay readable on a phone.
    Labels in ``flagged`` are marked (e.g. a creative that is not in the video catalog)."""
    if not points:
        return _none(title)
    points = sorted(points, key=lambda p: (-p[1], p[0]))
    top = max(max(v for _, v in points), 1)
    row, width = 44, WIDTH
    height = row * len(points) + 4
    value_w = 120
    bars = []
    for i, (label, value) in enumerate(points):
        y = 2 + i * row
        w = max(2, int((width - value_w) * max(value, 0) / top))
        mark = " (unknown creative)" if label in flagged else ""
        text = label if len(label) <= 48 else label[:47] + "…"
        bars.append(
            f'<g class="{"flagged" if mark else ""}"><title>{escape(label + mark)}: '
            f'{escape(format_minor(value, currency))}</title>'
            f'<text x="0" y="{y + 15}">{escape(text + mark)}</text>'
            f'<rect class="bar" x="0" y="{y + 21}" width="{w}" height="16" rx="3"/>'
            f'<text x="{w + 6}" y="{y + 34}" class="value">'
            f"{escape(format_minor(value, currency))}</text></g>")
    return (f'<svg class="chart bars" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="{escape(title)}"><title>{escape(title)}</title>{"".join(bars)}</svg>')


def line_chart(points: list[tuple[str, int]], currency: str, *, title: str) -> str:
    """A time series (period label, amount in minor units), oldest first: a line with a
    point per period, the maximum and zero on the y axis, and first/middle/last labels."""
    if not points:
        return _none(title)
    width, height = WIDTH, 240
    left, right, top_pad, bottom = 8, 8, 30, 34
    top = max(max(v for _, v in points), 1)
    inner_w, inner_h = width - left - right, height - top_pad - bottom
    step = inner_w / max(len(points) - 1, 1)
    coords = [(left + (i * step if len(points) > 1 else inner_w / 2),
               top_pad + inner_h - inner_h * max(v, 0) / top)
              for i, (_, v) in enumerate(points)]
    path = " ".join(f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}"
                    for i, (x, y) in enumerate(coords))
    radius = 3.5 if len(points) <= 40 else 2.2
    dots = "".join(f'<circle class="point" cx="{x:.1f}" cy="{y:.1f}" r="{radius}"><title>'
                   f'{escape(label)}: {escape(format_minor(v, currency))}</title></circle>'
                   for (x, y), (label, v) in zip(coords, points, strict=True))
    base = top_pad + inner_h
    labels = [(0, "start")] + ([(len(points) // 2, "middle")] if len(points) > 4 else []) \
        + ([(len(points) - 1, "end")] if len(points) > 1 else [])
    ticks = "".join(f'<text x="{coords[i][0]:.1f}" y="{height - 10}" text-anchor="{anchor}">'
                    f"{escape(points[i][0])}</text>" for i, anchor in labels)
    return (f'<svg class="chart line" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
            f'<line x1="{left}" y1="{top_pad}" x2="{width - right}" y2="{top_pad}" '
            f'class="grid"/>'
            f'<line x1="{left}" y1="{base}" x2="{width - right}" y2="{base}" class="axis"/>'
            f'<text x="{left}" y="{top_pad - 8}" class="value">max '
            f'{escape(_short(top, currency))}</text>'
            f'<path d="{path}" class="line"/>{dots}{ticks}</svg>')


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
