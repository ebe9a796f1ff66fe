"""The home page's arithmetic, pure: the chosen period and the one before it, rates and
changes as exact fractions (integers in, display strings out; no floats anywhere)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

PRESETS = (7, 30, 90)
MAX_DAYS = 366


class Trend(StrEnum):
    up = "up"
    down = "down"
    flat = "flat"
    new = "new"  # nothing in the previous period to compare with


@dataclass(frozen=True, slots=True)
class Period:
    start: date  # first day, inclusive
    end: date  # the day after the last one (exclusive)
    label: str  # "7", "30", "90" or "custom"

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    @property
    def since(self) -> datetime:
        return datetime.combine(self.start, time(), UTC)

    @property
    def until(self) -> datetime:
        return datetime.combine(self.end, time(), UTC)

    def previous(self) -> Period:
        return Period(self.start - timedelta(days=self.days), self.start, "previous")


def choose_period(today: date, period: str | None, start: str | None, end: str | None
                  ) -> tuple[Period, str | None]:
    """``period`` is 7, 30 or 90 (days up to and including today) or ``custom`` with
    ``start``/``end`` dates (both inclusive). A bad custom range falls back to 30 days
    and says why."""
    if period == "custom":
        try:
            first = date.fromisoformat(start or "")
            last = date.fromisoformat(end or "")
        except ValueError:
            return _preset(today, 30), "Choose both dates of a custom period (YYYY-MM-DD)."
        if last < first:
            return _preset(today, 30), "The custom period ends before it starts."
        if (last - first).days + 1 > MAX_DAYS:
            return _preset(today, 30), f"A custom period is at most {MAX_DAYS} days."
        return Period(first, last + timedelta(days=1), "custom"), None
    days = int(period) if period in {str(p) for p in PRESETS} else 30
    return _preset(today, days), None


def _preset(today: date, days: int) -> Period:
    end = today + timedelta(days=1)
    return Period(end - timedelta(days=days), end, str(days))


def percent(numerator: int, denominator: int) -> str | None:
    """``numerator / denominator`` as a percentage with one decimal (``12.5%``)."""
    if denominator <= 0:
        return None
    value = (Decimal(numerator) * 100 / Decimal(denominator)).quantize(
        Decimal("0.1"), rounding=ROUND_HALF_UP)
    return f"{value}%"


def change(current: int, previous: int) -> tuple[Trend, str]:
    """The change from the previous period: a trend and its label (``+12.5%``)."""
    if previous == 0:
        return (Trend.flat, "no change") if current == 0 else (Trend.new, "new")
    delta = (Decimal(current - previous) * 100 / Decimal(abs(previous))).quantize(
        Decimal("0.1"), rounding=ROUND_HALF_UP)
    if delta == 0:
        return Trend.flat, "0.0%"
    return (Trend.up, f"+{delta}%") if delta > 0 else (Trend.down, f"{delta}%")


def rate_change(current: tuple[int, int], previous: tuple[int, int]) -> tuple[Trend, str]:
    """The change of a rate (n/d) in percentage points: ``+1.2 pp``."""
    if current[1] <= 0 or previous[1] <= 0:
        return Trend.new, "new" if current[1] > 0 else "no change"
    points = ((Decimal(current[0]) / Decimal(current[1])
               - Decimal(previous[0]) / Decimal(previous[1])) * 100).quantize(
        Decimal("0.1"), rounding=ROUND_HALF_UP)
    if points == 0:
        return Trend.flat, "0.0 pp"
    return (Trend.up, f"+{points} pp") if points > 0 else (Trend.down, f"{points} pp")


def average(total: int, count: int) -> int:
    """An average amount in minor units, rounded half up (integers only)."""
    if count <= 0:
        return 0
    quotient, remainder = divmod(total, count)
    return quotient + (1 if remainder * 2 >= count else 0)
