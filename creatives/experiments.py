"""Creative experiments: create, report (views from the platforms, orders and revenue from
the attribution ledger, statistics from :mod:`creatives.stats`) and promote the winner.

Promoting makes the video the product's featured video (``featured_videos``), which the
feed builders and the MCP catalog put first; promoting the same video again changes
nothing.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from creatives import repository
from creatives.errors import ExperimentNotFound, InvalidExperiment, NoWinner
from creatives.schemas import ExperimentIn
from creatives.stats import Arm, Metric, Report, Verdict, analyse
from feeds.refresh import request_refresh
from models import Experiment, Product, Video
from models.base import new_id, rfc3339, utc_now
from models.creative import ExperimentStatus


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


async def create_experiment(db: AsyncSession, data: ExperimentIn, *, default_currency: str
                            ) -> dict[str, Any]:
    if await db.get(Product, data.product_id) is None:
        raise InvalidExperiment(f"Unknown product {data.product_id!r}.", param="$.product_id")
    featuring = await repository.videos_featuring(db, data.product_id, data.video_ids)
    for index, video_id in enumerate(data.video_ids):
        if video_id not in featuring:
            known = await db.get(Video, video_id) is not None
            why = "does not feature the product" if known else "does not exist"
            raise InvalidExperiment(f"Video {video_id!r} {why}; every variant must be a "
                                    f"video featuring {data.product_id!r}.",
                                    param=f"$.video_ids[{index}]")
    experiment = Experiment(
        id=new_id("exp"), name=data.name, product_id=data.product_id,
        status=ExperimentStatus.running, metric=data.metric,
        attribution_model=data.attribution_model,
        currency=(data.currency or default_currency).lower(), view_source=data.view_source,
        starts_on=data.starts_on, ends_on=data.ends_on, min_views=data.min_views,
        min_orders=data.min_orders, threshold_bp=round(data.threshold * 10_000),
        created_at=utc_now())
    await repository.add_experiment(db, experiment, data.video_ids)
    return await report(db, experiment.id)


async def _get(db: AsyncSession, experiment_id: str, *, lock: bool = False) -> Experiment:
    experiment = await db.get(Experiment, experiment_id, with_for_update=lock)
    if experiment is None:
        raise ExperimentNotFound(experiment_id)
    return experiment


async def _analyse(db: AsyncSession, experiment: Experiment, video_ids: list[str]) -> Report:
    start = _midnight(experiment.starts_on)
    end = _midnight(experiment.ends_on + timedelta(days=1)) if experiment.ends_on else None
    views = await repository.views_by_video(db, video_ids, start=experiment.starts_on,
                                            end=experiment.ends_on,
                                            source=experiment.view_source)
    ledger = await repository.ledger_by_video(db, video_ids,
                                              model=experiment.attribution_model,
                                              currency=experiment.currency, start=start,
                                              end=end)
    arms = [Arm(v, views.get(v, 0), ledger[v][0], ledger[v][1]) for v in video_ids]
    # Monte Carlo draws are CPU work: off the event loop.
    return await asyncio.to_thread(
        partial(analyse, arms, metric=Metric(experiment.metric),
                min_views=experiment.min_views, min_orders=experiment.min_orders,
                threshold=experiment.threshold_bp / 10_000))


async def report(db: AsyncSession, experiment_id: str) -> dict[str, Any]:
    experiment = await _get(db, experiment_id)
    video_ids = (await repository.variants_of(db, [experiment_id]))[experiment_id]
    result = await _analyse(db, experiment, video_ids)
    titles: dict[str, str | None] = {}
    for video_id in video_ids:
        video = await db.get(Video, video_id)
        titles[video_id] = video.title if video else None
    return experiment_json(experiment, video_ids) | {
        "verdict": result.verdict.value,
        "winner_video_id": result.winner,
        "method": result.method,
        "variants": [{
            "video_id": arm.key,
            "title": titles.get(arm.key),
            "views": arm.views, "orders": arm.orders,
            "revenue": {"amount": arm.revenue, "currency": experiment.currency},
            "conversion": {"mean": arm.conversion, "low": arm.conversion_low,
                           "high": arm.conversion_high, "observed": (
                               arm.orders / arm.views if arm.views else None)},
            "revenue_per_1000_views": {"amount": arm.rpm, "low": arm.rpm_low,
                                       "high": arm.rpm_high,
                                       "currency": experiment.currency},
            "p_best": arm.p_best,
            "problem": arm.problem,
        } for arm in result.arms],
    }


def experiment_json(experiment: Experiment, video_ids: list[str]) -> dict[str, Any]:
    return {
        "id": experiment.id, "name": experiment.name, "product_id": experiment.product_id,
        "status": experiment.status, "metric": experiment.metric,
        "attribution_model": experiment.attribution_model, "currency": experiment.currency,
        "view_source": experiment.view_source,
        "starts_on": experiment.starts_on.isoformat(),
        "ends_on": experiment.ends_on.isoformat() if experiment.ends_on else None,
        "rules": {"min_views": experiment.min_views, "min_orders": experiment.min_orders,
                  "threshold": experiment.threshold_bp / 10_000},
        "video_ids": video_ids,
        "promoted_video_id": experiment.winner_video_id,
        "promoted_at": rfc3339(experiment.promoted_at) if experiment.promoted_at else None,
        "created_at": rfc3339(experiment.created_at),
    }


async def list_experiments(db: AsyncSession, *, product_id: str | None, limit: int,
                           offset: int) -> dict[str, Any]:
    found = await repository.experiments(db, product_id=product_id, limit=limit,
                                         offset=offset)
    variants = await repository.variants_of(db, [e.id for e in found])
    return {"data": [experiment_json(e, variants[e.id]) for e in found], "limit": limit,
            "offset": offset}


async def promote(db: AsyncSession, experiment_id: str, video_id: str | None
                  ) -> dict[str, Any]:
    """Make the declared winner (or the merchant's chosen variant) the product's video and
    queue a feeds refresh. Idempotent: promoting the video already promoted changes
    nothing."""
    experiment = await _get(db, experiment_id, lock=True)
    video_ids = (await repository.variants_of(db, [experiment_id]))[experiment_id]
    if video_id is None:
        result = await _analyse(db, experiment, video_ids)
        if result.verdict is not Verdict.winner or result.winner is None:
            raise NoWinner(f"No winner is declared ({result.verdict.value}); name a variant "
                           "in video_id to promote it anyway.",
                           extra={"verdict": result.verdict.value})
        video_id = result.winner
    elif video_id not in video_ids:
        raise InvalidExperiment(f"Video {video_id!r} is not a variant of this experiment.",
                                param="$.video_id")
    featured = await repository.featured(db, experiment.product_id, lock=True)
    changed = featured is None or featured.video_id != video_id or (
        experiment.winner_video_id != video_id)
    refresh = False
    if changed:
        now = utc_now()
        await repository.set_featured(db, experiment.product_id, video_id, experiment.id, now)
        experiment.status = ExperimentStatus.concluded
        experiment.winner_video_id = video_id
        experiment.promoted_at = now
        await db.flush()
        # The feeds carry the product's video: rebuild and publish them (outbox, worker).
        refresh = await request_refresh(db, "video_promoted")
    return {"experiment_id": experiment.id, "product_id": experiment.product_id,
            "video_id": video_id, "changed": changed, "feeds_refresh_queued": refresh,
            "promoted_at": rfc3339(experiment.promoted_at) if experiment.promoted_at else None}


async def featured_video(db: AsyncSession, product_id: str) -> str | None:
    found = await repository.featured(db, product_id)
    return found.video_id if found else None
