"""``reelcart feeds …``: build, validate and push product feeds."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.cli import common
from models.statuses import DeliveryStatus

app = typer.Typer(help="Build, validate and publish product feeds.", no_args_is_help=True)


@app.command("build")
def feeds_build(
    out: Annotated[Path | None, typer.Option(help="Output folder (REELCART_FEEDS_DIR)")] = None,
    formats: Annotated[str, typer.Option(help="OpenAI formats: jsonl,csv,tsv")] = "jsonl,csv,tsv",
) -> None:
    """Write the ACP feed (acp/products-*.jsonl + metadata.json) and the OpenAI flat-file feed
    (openai/products-*.{jsonl,csv,tsv}.gz), streamed, sharded, atomic."""
    from feeds.openai_spec import spec_for
    from feeds.publish import run_build

    settings = common.migrated()
    chosen = tuple(f.strip() for f in formats.split(",") if f.strip())
    if not set(chosen) <= {"jsonl", "csv", "tsv"}:
        raise typer.BadParameter("--formats takes jsonl, csv, tsv")
    out_dir = out or settings.feeds_dir

    # No event loop to keep free here: the build runs in this process (and, with
    # REELCART_FEED_BUILD_PROCESSES > 1, in as many processes over key ranges), reading
    # through read connections of its own.
    with typer.progressbar(length=1, label="building feeds",
                           hidden=not sys.stderr.isatty()) as bar:
        def tick(n: int) -> None:
            bar.length = (bar.length or 0) + n
            bar.update(n)
        report = run_build(settings.database_url, out_dir, settings.feed_config(),
                           openai_formats=chosen, progress=tick,
                           spec=spec_for(settings.openai_feed_spec_version),
                           processes=settings.feed_build_processes).as_dict()
    typer.echo(f"{report['products']} products, {report['variants']} variants in "
               f"{report['seconds']} s ({report['items_per_second']} items/s) → {out_dir}")
    for name, files in report["files"].items():
        typer.echo(f"  {name}: {', '.join(files)}")
    _print_validation(report["validation"])


def _print_validation(validation: dict) -> None:
    typer.echo(f"validation (OpenAI spec {validation.get('spec_version')}): "
               f"{validation['valid']} of {validation['items']} items valid")
    for problem in validation["problems"][:20]:
        examples = ", ".join(str(e["item_id"]) for e in problem["examples"][:3])
        typer.echo(f"  {problem['count']:>8}  {problem['problem']}  (e.g. {examples})")


@app.command("push")
def feeds_push(agent: Annotated[str, typer.Option(help="Agent name")]) -> None:
    """Push changed products to the agent's ACP Feed API (create the feed the first time)."""
    from feeds.feed_api_client import FeedApiClient
    from feeds.push import push_feed
    from models.outbound import outbound_client

    settings = common.migrated()

    async def run(sessionmaker: async_sessionmaker[AsyncSession]) -> Any:
        async with outbound_client(settings.outbound_policy()) as http:
            return await push_feed(sessionmaker,
                                   lambda url, token: FeedApiClient(http, url, token), agent,
                                   settings.feed_config())

    report = common.with_database(run, settings)
    typer.echo(f"feed {report.feed_id}: {report.products_sent} of {report.products_total} "
               f"products sent in {report.batches} batches, {report.retries} retries, "
               f"{report.seconds:.1f} s: {report.status}")
    if report.status != DeliveryStatus.succeeded:
        typer.echo(report.error, err=True)
        raise typer.Exit(1)


@app.command("validate")
def feeds_validate() -> None:
    """Check every catalog item against the OpenAI feed rules; exit 1 if any fails."""
    from feeds.builder import ValidationReport, openai_items, validate_openai_item
    from feeds.openai_spec import spec_for
    from feeds.publish import catalog_rows

    settings = common.migrated()
    config = settings.feed_config()
    spec = spec_for(settings.openai_feed_spec_version)

    async def run(sessionmaker: async_sessionmaker[AsyncSession]) -> dict:
        report = ValidationReport(spec_version=spec.version)
        async for product in catalog_rows(sessionmaker, report.exclude):
            for item in openai_items(product, config, spec):
                report.add(item, validate_openai_item(item, spec))
        return report.as_dict()

    validation = common.with_database(run, settings)
    _print_validation(validation)
    if validation["valid"] != validation["items"]:
        raise typer.Exit(1)


@app.command("publish")
def feeds_publish() -> None:
    """Build the feeds, then publish to every configured destination (agents' ACP Feed
    APIs, OpenAI over SFTP, Google Merchant API, Stripe catalog), each independently;
    exit 1 if any destination failed."""
    from api.runtime import build_runtime

    settings = common.migrated()

    async def run() -> list[tuple[str, str, str]]:
        runtime = build_runtime(settings)
        try:
            report, outcomes = await runtime.feed_refresher().run()
        finally:
            await runtime.close()
        typer.echo(f"built {report.products} products, {report.variants} variants "
                   f"(OpenAI spec {report.validation.get('spec_version')})")
        return [(o.destination, o.status, o.detail) for o in outcomes]

    outcomes = asyncio.run(run())
    for destination, status, detail in outcomes:
        typer.echo(f"  {destination:<16} {status:<10} {detail}")
    if any(status != DeliveryStatus.succeeded for _, status, _ in outcomes):
        raise typer.Exit(1)
