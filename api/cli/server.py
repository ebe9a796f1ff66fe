"""Top-level commands: ``migrate``, ``serve``, ``demo``, ``worker``."""

from __future__ import annotations

import asyncio
import os
from typing import Annotated

import typer

from api.cli import common
from api.settings import Settings

app = typer.Typer()  # registered flat into the root (see api.cli)
DEMO_KEY = "rc_demo_agent_key"


@app.command()
def migrate() -> None:
    """Create or upgrade the database schema (alembic)."""
    from models.migrate import upgrade

    settings = common.settings()
    upgrade(settings.database_url)
    typer.echo("database is up to date")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="API processes")] = 1,
) -> None:
    """Run the HTTP API (migrates first, once, before starting the processes)."""
    import uvicorn

    from models.migrate import upgrade

    os.environ.setdefault("REELCART_PUBLIC_BASE_URL", f"http://{host}:{port}")
    settings = common.settings()
    upgrade(settings.database_url)
    os.environ["REELCART_RUN_MIGRATIONS_ON_START"] = "false"  # done once, above
    uvicorn.run("api.app:app_factory", factory=True, host=host, port=port, workers=workers,
                log_config=None, timeout_graceful_shutdown=15, access_log=False,
                proxy_headers=True)


async def _load_demo(settings: Settings) -> str:
    from api.runtime import database
    from feeds.demo import demo_catalog
    from feeds.schemas import ImportReport
    from feeds.service import upsert_products
    from models.db import transaction

    records = demo_catalog()
    report = ImportReport()
    async with database(settings) as sessionmaker, transaction(sessionmaker) as db:
        await upsert_products(db, records, report, list(range(1, len(records) + 1)))
    variants = sum(len(r.variants) for r in records)
    summary = (f"demo catalog: {len(records)} products, {variants} variants "
               f"({report.created} new, {report.updated} updated)")
    # Creators and rights holders with contracts, a paid and an open statement.
    from api.runtime import build_runtime
    from commissions.demo import seed

    runtime = build_runtime(settings)
    try:
        commissions = await seed(runtime)
    finally:
        await runtime.close()
    return f"{summary}\n{commissions}"


@app.command()
def demo(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
) -> None:
    """Load the demo catalog and serve it with the sandbox payment provider."""
    from models.migrate import upgrade

    os.environ.setdefault("REELCART_AGENT_API_KEYS", DEMO_KEY)
    settings = common.settings()
    upgrade(settings.database_url)
    typer.echo(asyncio.run(_load_demo(settings)))
    from api.dashboard.auth import create_user

    common.in_transaction(lambda db: create_user(db, "demo", "demo-password"))
    key = settings.agent_api_keys[0].get_secret_value()
    base = f"http://{host}:{port}"
    typer.echo(f"""
ReelCart demo on {base}   (docs: {base}/docs, discovery: {base}/.well-known/acp.json)
Agent API key: {key}
Dashboard: {base}/dashboard   (user: demo, password: demo-password)

  curl -s {base}/checkout_sessions -H 'Authorization: Bearer {key}' \\
    -H 'API-Version: 2026-04-17' -H 'Idempotency-Key: demo-1' \\
    -H 'Content-Type: application/json' \\
    -d '{{"currency":"usd","line_items":[{{"id":"lut-pack-personal"}}],"capabilities":{{}}}}'
""")
    serve(host=host, port=port, workers=1)


@app.command()
def worker() -> None:
    """Run the background worker (webhook inbox). Several can run against PostgreSQL."""
    import signal

    from api.logs import configure_logging
    from api.runtime import build_runtime
    from api.worker import run_forever
    from models.migrate import upgrade

    settings = common.settings()
    configure_logging(settings.log_level, settings.log_format)
    upgrade(settings.database_url)

    async def run() -> None:
        runtime = build_runtime(settings, long_running=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):  # finish the current item, then exit
            loop.add_signal_handler(sig, stop.set)
        background = asyncio.create_task(runtime.run_background(stop))
        try:
            await run_forever(runtime, stop)
        finally:
            stop.set()
            await background
            await runtime.close()

    asyncio.run(run())
