"""The redirect's buffered insert: clicks and pixel views are queued in memory and written
by one background task every ``interval`` seconds (or at ``max_batch`` rows), in one
transaction per batch (an idempotent multi-row INSERT of the touches plus one upsert per
video and day of the ``pixel`` view counts).

Why not one INSERT per click: at thousands of clicks per second, a transaction per click
is a commit (PostgreSQL: a WAL flush) per click, and on SQLite it takes the single write
lock the checkout path also needs; batches make that a few dozen commits per second and
keep the redirect off the database entirely (bench/links_redirect.py).

What survives what:
* a graceful stop (SIGTERM, deploy) flushes what is queued (``close``, called by
  ``Runtime.close``);
* a database outage loses nothing: a failed batch stays queued and is retried with the
  next, up to ``max_pending`` touches (then the oldest are dropped, counted and logged:
  memory stays bounded and redirects never fail or wait);
* a hard crash (SIGKILL, power loss) loses at most the last ``interval`` (50 ms) of
  touches. That is attribution evidence, not money: the buyer was still redirected.
* a batch whose commit was lost in transit is retried; touch ids make the INSERT
  idempotent (``ON CONFLICT DO NOTHING``).
Nothing is shared between processes: each API process flushes its own queue.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from datetime import date, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from links import repository

log = logging.getLogger("reelcart.links")


class TouchBuffer:
    def __init__(self, engine: AsyncEngine, *, interval: float = 0.05, max_batch: int = 2000,
                 max_pending: int = 100_000) -> None:
        self.engine = engine
        self.interval = interval
        self.max_batch = max_batch
        self.max_pending = max_pending
        self.dropped = 0
        self._touches: list[dict[str, Any]] = []
        self._views: Counter[tuple[str, date]] = Counter()
        self._views_at: datetime | None = None
        self._task: asyncio.Task[None] | None = None
        self._wakeup = asyncio.Event()
        self._lock = asyncio.Lock()

    @property
    def pending(self) -> int:
        return len(self._touches)

    def add(self, touch: dict[str, Any], *, view_of: tuple[str, date] | None = None) -> None:
        """Queue a touch (and a pixel view of ``(video_id, day)``); never waits."""
        self._touches.append(touch)
        if view_of is not None:
            self._views[view_of] += 1
            self._views_at = touch["touched_at"]
        if len(self._touches) > self.max_pending:
            overflow = len(self._touches) - self.max_pending
            del self._touches[:overflow]
            self.dropped += overflow
            log.error("link touches dropped: the database is not taking them",
                      extra={"dropped": overflow, "dropped_total": self.dropped})
        if len(self._touches) >= self.max_batch:
            self._wakeup.set()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def flush(self) -> int:
        """Write what is queued now, in one transaction; returns the touches written. On
        failure everything stays queued (and the error propagates)."""
        async with self._lock:
            touches, views = self._touches[:], Counter(self._views)
            views_at = self._views_at
            if not touches and not views:
                return 0
            async with self.engine.begin() as conn:
                await repository.insert_touches(conn, touches)
                for (video_id, day), count in sorted(views.items()):
                    await repository.count_pixel_views(conn, video_id, day, count,
                                                       views_at or touches[-1]["touched_at"])
            del self._touches[:len(touches)]
            self._views.subtract(views)
            self._views = +self._views  # drop zero counts
            return len(touches)

    async def _run(self) -> None:
        backoff = self.interval
        while True:
            try:
                await asyncio.wait_for(self._wakeup.wait(), timeout=backoff)
            except TimeoutError:
                pass
            self._wakeup.clear()
            try:
                await self.flush()
                backoff = self.interval
            except asyncio.CancelledError:
                raise
            except Exception:  # the database is down: keep the touches, retry later
                log.exception("writing link touches failed; retrying",
                              extra={"pending": self.pending})
                backoff = min(backoff * 2, 5.0)

    async def close(self) -> None:
        """Stop the writer and flush what is left (a graceful stop loses nothing)."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
            self._task = None
        try:
            await self.flush()
        except Exception:
            log.exception("link touches could not be written at shutdown",
                          extra={"lost": self.pending})
