"""Charts as inline SVG, rendered on the server: no JavaScript to fail, crisp at any
width, and readable in a screenshot."""

from __future__ import annotations

from html import escape

from models.money import format_minor


def bar_chart(points: list[tuple[str, int]], currency: str, *, title: str) -> str:
    """Horizontal bars (label, amount in minor units)."""
    if not points:
        return f'<p class="muted">No data for {escape(title.lower())}.</p>'
    top = max(max(v for _, v in points), 1)
    row, label_w, width = 28, 160, 640
    height = row * len(points) + 10
    bars = []
    for i, (label, value) in enumerate(points):
        y = 5 + i * row
        w = max(0, int((width - label_w - 110) * max(value, 0) / top))
        bars.append(
            f'<text x="{label_w - 8}" y="{y + 18}" text-anchor="end">{escape(label[:24])}</text>'
            f'<rect x="{label_w}" y="{y + 4}" width="{w}" height="{row - 10}" rx="3"/>'
            f'<text x="{label_w + w + 6}" y="{y + 18}">{escape(format_minor(value, currency))}'
            f"</text>")
    return (f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="{escape(title)}"><title>{escape(title)}</title>{"".join(bars)}</svg>')


def line_chart(points: list[tuple[str, int]], currency: str, *, title: str) -> str:
    """A time series (date label, amount in minor units), oldest first."""
    if not points:
        return f'<p class="muted">No data for {escape(title.lower())}.</p>'
    width, height, pad = 640, 220, 40
    top = max(max(v for _, v in points), 1)
    step = (width - 2 * pad) / max(len(points) - 1, 1)
    coords = [(pad + i * step, height - pad - (height - 2 * pad) * max(v, 0) / top)
              for i, (_, v) in enumerate(points)]
    path = " ".join(f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}" for i, (x, y) in
                    enumerate(coords))
    dots = "".join(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3"><title>{escape(label)}: '
                   f'{escape(format_minor(v, currency))}</title></circle>'
                   for (x, y), (label, v) in zip(coords, points, strict=True))
    return (f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
            f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" '
            f'class="axis"/><path d="{path}" class="line"/>{dots}'
            f'<text x="{pad}" y="{height - 12}">{escape(points[0][0])}</text>'
            f'<text x="{width - pad}" y="{height - 12}" text-anchor="end">'
            f"{escape(points[-1][0])}</text>"
            f'<text x="{pad}" y="20">{escape(format_minor(top, currency))}</text></svg>')
