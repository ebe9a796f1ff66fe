"""Platform view counts per video, day and source: parsing (pure) and the idempotent import.

A count names one (video, UTC day, source); importing it again replaces the stored count.
The report says how many rows were inserted, updated (a different count) or unchanged.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from datetime import date, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from creatives import repository
from creatives.errors import InvalidViewCounts
from creatives.schemas import MAX_VIEWS, ViewImportIn, ViewImportReport, ViewRow
from models.base import utc_now

CHUNK = 500
CSV_COLUMNS = ("video_id", "day", "views")


def rows_from_json(body: ViewImportIn) -> list[ViewRow]:
    return [ViewRow(c.video_id, c.day, c.views, f"$.counts[{i}]")
            for i, c in enumerate(body.counts)]


def parse_csv(lines: Iterable[str]) -> tuple[list[ViewRow], list[dict[str, Any]]]:
    """CSV with a header naming ``video_id``, ``day`` (YYYY-MM-DD) and ``views`` (other
    columns are ignored). Returns the good rows and a problem per bad line."""
    reader = csv.DictReader(lines)
    missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        return [], [{"ref": "line 1", "param": "header",
                     "message": f"The header must name {', '.join(CSV_COLUMNS)} "
                                f"(missing: {', '.join(missing)})."}]
    rows: list[ViewRow] = []
    problems: list[dict[str, Any]] = []
    for record in reader:
        ref = f"line {reader.line_num}"
        video_id = (record.get("video_id") or "").strip()
        raw_day = (record.get("day") or "").strip()
        raw_views = (record.get("views") or "").strip()
        if not video_id or len(video_id) > 100:
            problems.append(_problem(ref, "video_id", "video_id is empty or too long."))
            continue
        try:
            day = date.fromisoformat(raw_day)
            if len(raw_day) != 10:
                raise ValueError
        except ValueError:
            problems.append(_problem(ref, "day", f"day {raw_day!r} is not a date "
                                                 "(YYYY-MM-DD)."))
            continue
        try:
            views = int(raw_views)
        except ValueError:
            problems.append(_problem(ref, "views", f"views {raw_views!r} is not a whole "
                                                   "number."))
            continue
        if views < 0 or views > MAX_VIEWS:
            problems.append(_problem(ref, "views", f"views {views} is negative or too large."))
            continue
        rows.append(ViewRow(video_id, day, views, ref))
    return rows, problems


def csv_lines(data: bytes) -> Iterator[str]:
    text = data.decode("utf-8-sig")
    yield from io.StringIO(text, newline="")


def _problem(ref: str, param: str, message: str) -> dict[str, Any]:
    where = f"{ref}.{param}" if ref.startswith("$") else f"{ref}: {param}"
    return {"ref": ref, "param": where, "message": message}


async def import_views(db: AsyncSession, source: str, rows: list[ViewRow], *,
                       all_or_nothing: bool, today: date | None = None) -> ViewImportReport:
    """Store the counts. Unknown videos, days after tomorrow (UTC) and a (video, day)
    given twice are problems: with ``all_or_nothing`` (the API) any problem refuses the
    whole batch (:class:`InvalidViewCounts`); otherwise (CSV files) the good rows are
    stored and the problems reported."""
    report = ViewImportReport()
    latest = (today or utc_now().date()) + timedelta(days=1)
    known = await repository.existing_videos(db, (r.video_id for r in rows))
    seen: dict[tuple[str, date], str] = {}
    good: list[ViewRow] = []
    for row in rows:
        key = (row.video_id, row.day)
        if row.video_id not in known:
            report.rejected.append(_problem(row.ref, "video_id",
                                            f"Unknown video {row.video_id!r}."))
        elif row.day > latest:
            report.rejected.append(_problem(row.ref, "day",
                                            f"day {row.day.isoformat()} is in the future."))
        elif key in seen:
            report.rejected.append(_problem(
                row.ref, "day", f"{row.video_id} on {row.day.isoformat()} is also given at "
                                f"{seen[key]}."))
        else:
            seen[key] = row.ref
            good.append(row)
    if report.rejected and all_or_nothing:
        raise InvalidViewCounts(report.rejected)
    now = utc_now()
    for start in range(0, len(good), CHUNK):
        chunk = good[start:start + CHUNK]
        current = await repository.current_counts(db, source, [(r.video_id, r.day)
                                                              for r in chunk])
        for row in chunk:
            before = current.get((row.video_id, row.day))
            if before is None:
                report.inserted += 1
            elif before == row.views:
                report.unchanged += 1
            else:
                report.updated += 1
        await repository.upsert_counts(db, source, [(r.video_id, r.day, r.views)
                                                    for r in chunk], now)
    await db.flush()
    return report
