"""``reelcart experiments …``: creative experiments (videos promoting one product)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Annotated, Any

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from api.cli import common

app = typer.Typer(help="Creative experiments: compare the videos promoting a product and "
                       "promote the winner.", no_args_is_help=True)


def _run(work: Callable[[AsyncSession], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
    from models.errors import AppError

    try:
        return common.in_transaction(work)
    except AppError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from None


@app.command("create")
def create(
    name: Annotated[str, typer.Argument()],
    product: Annotated[str, typer.Option(help="The product the videos promote")],
    video: Annotated[list[str], typer.Option(help="A variant (repeat: at least two)")],
    starts_on: Annotated[str, typer.Option(help="First day counted (YYYY-MM-DD)")],
    ends_on: Annotated[str | None, typer.Option(help="Last day counted")] = None,
    metric: Annotated[str, typer.Option(help="conversion or revenue")] = "conversion",
    min_views: Annotated[int, typer.Option()] = 1000,
    min_orders: Annotated[int, typer.Option()] = 20,
    threshold: Annotated[float, typer.Option()] = 0.95,
    view_source: Annotated[str | None, typer.Option(help="Count only this source")] = None,
) -> None:
    """Create an experiment; prints its report."""
    from pydantic import ValidationError

    from creatives.experiments import create_experiment
    from creatives.schemas import ExperimentIn

    try:
        data = ExperimentIn(name=name, product_id=product, video_ids=video,
                            starts_on=date.fromisoformat(starts_on),
                            ends_on=date.fromisoformat(ends_on) if ends_on else None,
                            metric=metric, min_views=min_views, min_orders=min_orders,
                            threshold=threshold, view_source=view_source)
    except (ValidationError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    default = common.settings().merchant_profile().currencies[0]
    typer.echo(json.dumps(_run(lambda db: create_experiment(db, data,
                                                            default_currency=default)),
                          indent=2))


@app.command("list")
def list_(product: Annotated[str | None, typer.Option()] = None) -> None:
    from creatives.experiments import list_experiments

    found = _run(lambda db: list_experiments(db, product_id=product, limit=200, offset=0))
    for x in found["data"]:
        promoted = f" promoted={x['promoted_video_id']}" if x["promoted_video_id"] else ""
        typer.echo(f"{x['id']}  {x['product_id']}  {x['name']}  "
                   f"variants={len(x['video_ids'])}{promoted}")


@app.command("report")
def report(experiment_id: str) -> None:
    """Each variant's views, orders, conversion with 95 % credible interval, revenue per
    1,000 views and probability to be best; the verdict."""
    from creatives.experiments import report as build

    found = _run(lambda db: build(db, experiment_id))
    typer.echo(f"{found['name']} ({found['product_id']}): {found['verdict']}"
               + (f", winner {found['winner_video_id']}" if found["winner_video_id"] else ""))
    for v in found["variants"]:
        c = v["conversion"]
        typer.echo(f"  {v['video_id']}: {v['views']} views, {v['orders']} orders, "
                   f"conversion {c['mean']:.3%} [{c['low']:.3%}, {c['high']:.3%}], "
                   f"P(best) {v['p_best']:.3f}")


@app.command("promote")
def promote(experiment_id: str,
            video: Annotated[str | None, typer.Option(help="Promote this variant although "
                                                           "no winner is declared")] = None
            ) -> None:
    """Make the winner the product's video in feeds and catalog results (idempotent)."""
    from creatives.experiments import promote as run

    result = _run(lambda db: run(db, experiment_id, video))
    state = "promoted" if result["changed"] else "already promoted"
    typer.echo(f"{result['video_id']} {state} for {result['product_id']}")
