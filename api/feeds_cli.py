"""``reelcart feeds publish``: build, then deliver to every configured destination."""

from __future__ import annotations

import asyncio

import typer


def feeds_publish() -> None:
    """Build the feeds, then publish to every configured destination (agents' ACP Feed
    APIs, OpenAI over SFTP, Google Merchant API, Stripe catalog), each independently;
    exit 1 if any destination failed."""
    from api.runtime import build_runtime
    from api.settings import get_settings
    from models.migrate import upgrade

    get_settings.cache_clear()
    settings = get_settings()
    upgrade(settings.database_url)

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
    if any(status != "succeeded" for _, status, _ in outcomes):
        raise typer.Exit(1)
