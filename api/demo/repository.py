"""The demo's one direct write: daily view counts per video (what the platforms' view-count
import would bring in), upserted per (video, day, source)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Table, delete, insert
from sqlalchemy.ext.asyncio import AsyncSession

from models.base import utc_now
from models.video import VideoViewCount

VIEWS: Table = VideoViewCount.__table__  # type: ignore[assignment]


async def record_daily_views(db: AsyncSession, rows: list[tuple[str, date, str, int]]) -> int:
    """Replace the counts of the given (video, day, source) keys. Returns rows written."""
    now = utc_now()
    for video_id in {r[0] for r in rows}:
        days = [r[1] for r in rows if r[0] == video_id]
        await db.execute(delete(VIEWS).where(VIEWS.c.video_id == video_id,
                                             VIEWS.c.day.in_(days)))
    if rows:
        await db.execute(insert(VIEWS), [
            {"video_id": v, "day": d, "source": s, "views": n, "updated_at": now}
            for v, d, s, n in rows])
    return len(rows)
