"""SQL for creatives: view counts, experiments, the promoted video, provenance, consent."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import BigInteger, and_, cast, func, select, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from models import (
    Experiment,
    ExperimentVariant,
    FeaturedVideo,
    LedgerEntry,
    Video,
    VideoConsent,
    VideoProduct,
    VideoProvenance,
    VideoViewCount,
)

# ------------------------------------------------------------------------------ views


async def existing_videos(db: AsyncSession, ids: Iterable[str]) -> set[str]:
    wanted = list(set(ids))
    found: set[str] = set()
    for start in range(0, len(wanted), 500):
        found.update(await db.scalars(select(Video.id).where(
            Video.id.in_(wanted[start:start + 500]))))
    return found


async def current_counts(db: AsyncSession, source: str, keys: Sequence[tuple[str, date]]
                         ) -> dict[tuple[str, date], int]:
    if not keys:
        return {}
    rows = await db.execute(
        select(VideoViewCount.video_id, VideoViewCount.day, VideoViewCount.views)
        .where(VideoViewCount.source == source,
               tuple_(VideoViewCount.video_id, VideoViewCount.day).in_(list(keys))))
    return {(video_id, day): int(views) for video_id, day, views in rows}


async def upsert_counts(db: AsyncSession, source: str, rows: Sequence[tuple[str, date, int]],
                        at: datetime) -> None:
    """Insert or replace; an unchanged count keeps its ``updated_at``."""
    if not rows:
        return
    insert = pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = insert(VideoViewCount).values([
        {"video_id": video_id, "day": day, "source": source, "views": views, "updated_at": at}
        for video_id, day, views in rows])
    await db.execute(stmt.on_conflict_do_update(
        index_elements=["video_id", "day", "source"],
        set_={"views": stmt.excluded.views, "updated_at": stmt.excluded.updated_at},
        where=VideoViewCount.views != stmt.excluded.views))


async def view_counts(db: AsyncSession, *, video_id: str | None, start: date | None,
                      end: date | None, source: str | None, limit: int, offset: int
                      ) -> list[VideoViewCount]:
    stmt = select(VideoViewCount)
    if video_id:
        stmt = stmt.where(VideoViewCount.video_id == video_id)
    if start:
        stmt = stmt.where(VideoViewCount.day >= start)
    if end:
        stmt = stmt.where(VideoViewCount.day <= end)
    if source:
        stmt = stmt.where(VideoViewCount.source == source)
    stmt = stmt.order_by(VideoViewCount.video_id, VideoViewCount.day, VideoViewCount.source)
    return list(await db.scalars(stmt.limit(limit).offset(offset)))


async def views_by_video(db: AsyncSession, video_ids: Sequence[str], *, start: date,
                         end: date | None, source: str | None) -> dict[str, int]:
    stmt = (select(VideoViewCount.video_id,
                   cast(func.sum(VideoViewCount.views), BigInteger))
            .where(VideoViewCount.video_id.in_(list(video_ids)), VideoViewCount.day >= start)
            .group_by(VideoViewCount.video_id))
    if end is not None:
        stmt = stmt.where(VideoViewCount.day <= end)
    if source is not None:
        stmt = stmt.where(VideoViewCount.source == source)
    return {video_id: int(total or 0) for video_id, total in await db.execute(stmt)}


# ------------------------------------------------------------------------ experiments


async def videos_featuring(db: AsyncSession, product_id: str, video_ids: Sequence[str]
                           ) -> set[str]:
    return set(await db.scalars(select(VideoProduct.video_id).where(
        VideoProduct.product_id == product_id, VideoProduct.video_id.in_(list(video_ids)))))


async def add_experiment(db: AsyncSession, experiment: Experiment, video_ids: Sequence[str]
                         ) -> None:
    db.add(experiment)
    await db.flush()
    for position, video_id in enumerate(video_ids):
        db.add(ExperimentVariant(experiment_id=experiment.id, video_id=video_id,
                                 position=position))
    await db.flush()


async def variants_of(db: AsyncSession, experiment_ids: Sequence[str]
                      ) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {i: [] for i in experiment_ids}
    rows = await db.execute(select(ExperimentVariant.experiment_id, ExperimentVariant.video_id)
                            .where(ExperimentVariant.experiment_id.in_(list(experiment_ids)))
                            .order_by(ExperimentVariant.experiment_id,
                                      ExperimentVariant.position))
    for experiment_id, video_id in rows:
        out[experiment_id].append(video_id)
    return out


async def experiments(db: AsyncSession, *, product_id: str | None, limit: int, offset: int
                      ) -> list[Experiment]:
    stmt = select(Experiment)
    if product_id:
        stmt = stmt.where(Experiment.product_id == product_id)
    stmt = stmt.order_by(Experiment.created_at.desc(), Experiment.id)
    return list(await db.scalars(stmt.limit(limit).offset(offset)))


async def ledger_by_video(db: AsyncSession, video_ids: Sequence[str], *, model: str,
                          currency: str, start: datetime, end: datetime | None
                          ) -> dict[str, tuple[int, int]]:
    """video → (orders credited by a sale row, net revenue in ``currency`` after refunds
    and disputes), for orders placed in [start, end)."""
    where = [LedgerEntry.video_id.in_(list(video_ids)), LedgerEntry.model == model,
             LedgerEntry.order_at >= start]
    if end is not None:
        where.append(LedgerEntry.order_at < end)
    orders = await db.execute(
        select(LedgerEntry.video_id, func.count(func.distinct(LedgerEntry.order_id)))
        .where(*where, LedgerEntry.kind == "sale").group_by(LedgerEntry.video_id))
    revenue = await db.execute(
        select(LedgerEntry.video_id, cast(func.sum(LedgerEntry.net), BigInteger))
        .where(*where, LedgerEntry.currency == currency).group_by(LedgerEntry.video_id))
    counts = {video_id: int(n) for video_id, n in orders}
    sums = {video_id: int(total or 0) for video_id, total in revenue}
    return {v: (counts.get(v, 0), sums.get(v, 0)) for v in video_ids}


async def featured(db: AsyncSession, product_id: str, *, lock: bool = False
                   ) -> FeaturedVideo | None:
    return await db.get(FeaturedVideo, product_id, with_for_update=lock)


async def set_featured(db: AsyncSession, product_id: str, video_id: str,
                       experiment_id: str | None, at: datetime) -> None:
    """Insert or replace the product's promoted video (one row per product)."""
    insert = pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = insert(FeaturedVideo).values(product_id=product_id, video_id=video_id,
                                        experiment_id=experiment_id, promoted_at=at)
    await db.execute(stmt.on_conflict_do_update(
        index_elements=["product_id"],
        set_={"video_id": stmt.excluded.video_id, "experiment_id": stmt.excluded.experiment_id,
              "promoted_at": stmt.excluded.promoted_at},
        where=FeaturedVideo.video_id != stmt.excluded.video_id))


# ------------------------------------------------------------------------- provenance


async def consents_of(db: AsyncSession, video_ids: Sequence[str]
                      ) -> dict[str, list[VideoConsent]]:
    out: dict[str, list[VideoConsent]] = {v: [] for v in video_ids}
    rows = await db.scalars(select(VideoConsent)
                            .where(VideoConsent.video_id.in_(list(video_ids)))
                            .order_by(VideoConsent.video_id, VideoConsent.created_at,
                                      VideoConsent.id))
    for consent in rows:
        out[consent.video_id].append(consent)
    return out


async def provenance_page(db: AsyncSession, *, flagged_only: bool, limit: int, offset: int
                          ) -> list[tuple[Video, VideoProvenance | None]]:
    """Videos with their provenance record (None: never checked), newest first."""
    stmt = (select(Video, VideoProvenance)
            .outerjoin(VideoProvenance, VideoProvenance.video_id == Video.id))
    if flagged_only:
        stmt = stmt.where(and_(
            VideoProvenance.status.is_(None) | VideoProvenance.status.in_(
                ["missing", "invalid"])))
    stmt = stmt.order_by(Video.created_at.desc(), Video.id).limit(limit).offset(offset)
    return [(video, record) for video, record in (await db.execute(stmt)).all()]


def as_dicts(rows: Iterable[Any]) -> list[dict[str, Any]]:
    return [dict(row._mapping) for row in rows]
