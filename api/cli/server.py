"""Top-level commands: ``migrate``, ``serve``, ``demo``, ``worker``."""

from __future__ import annotations

import asyncio
import os
from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from api.cli import common
from api.settings import Settings

app = typer.Typer()  # registered flat into the root (see api.cli)
DEMO_KEY = "rc_demo_agent_key"
DEMO_MERCHANT_KEY = "rc_demo_merchant_key"
DEMO_USER, DEMO_PASSWORD = "demo", "demo-password"


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
    from models.migrate import upgrade

    os.environ.setdefault("REELCART_PUBLIC_BASE_URL", f"http://{host}:{port}")
    settings = common.settings()
    _ensure_port_free(host, port)
    upgrade(settings.database_url)
    _run(host, port, workers)


def _ensure_port_free(host: str, port: int) -> None:
    """Refuse at once, in one line, an address another process listens on, before the
    database is touched (uvicorn would only find out after start-up, with a log line and
    exit code 3). Bound the way uvicorn binds (``SO_REUSEADDR``)."""
    import socket

    from api.cli.errors import CliError

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise CliError(f"cannot listen on {host}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise CliError(f"cannot listen on {host}:{port}: {exc.strerror} (another "
                           f"server is probably running there; choose another --port)"
                           ) from None


def _run(host: str, port: int, workers: int) -> None:
    """Uvicorn on the app factory, the schema already migrated by the caller."""
    import uvicorn

    os.environ["REELCART_RUN_MIGRATIONS_ON_START"] = "false"  # done once, before
    uvicorn.run("api.app:app_factory", factory=True, host=host, port=port, workers=workers,
                log_config=None, timeout_graceful_shutdown=15, access_log=False,
                proxy_headers=True)


async def _load_demo(settings: Settings) -> str:
    """The demo catalog and its 90-day history, played through the services once. Once
    loaded, the demo's database is left alone: the catalog is not imported again, which
    would put back stock already sold."""
    from api.demo.loader import load_history
    from api.runtime import build_runtime
    from feeds.demo import demo_catalog
    from models.db import transaction

    runtime = build_runtime(settings)
    try:
        await runtime.ensure_dev_agent()
        records = demo_catalog()
        history = await load_history(runtime)  # imports the catalog with the history
        async with transaction(runtime.sessionmaker) as db:
            await _ensure_demo_user(db, settings.dashboard_scrypt_log2_n)
        variants = sum(len(r.variants) for r in records)
        return f"demo catalog: {len(records)} products, {variants} variants\n{history}"
    finally:
        await runtime.close()


async def _ensure_demo_user(db: AsyncSession, log2_n: int) -> None:
    """The demo login, created once (a restart neither re-hashes nor logs anyone out)."""
    from sqlalchemy import select

    from api.dashboard.auth import ScryptCost, create_user
    from models import DashboardUser

    if await db.scalar(select(DashboardUser.id).where(
            DashboardUser.username == DEMO_USER)) is None:
        await create_user(db, DEMO_USER, DEMO_PASSWORD, ScryptCost(log2_n))


def demo_banner(settings: Settings, base: str) -> str:
    agent_key = settings.agent_api_keys[0].get_secret_value()
    merchant_key = settings.merchant_api_keys[0].get_secret_value()
    return f"""
ReelCart demo: serving on {base}
  API docs        {base}/docs
  Dashboard       {base}/dashboard   (user: {DEMO_USER}, password: {DEMO_PASSWORD})
  MCP endpoint    {base}/mcp   (streamable HTTP; Bearer the agent key)
  ACP discovery   {base}/.well-known/acp.json
  Agent API key   {agent_key}   (Authorization: Bearer …, ACP checkout, MCP)
  Merchant key    {merchant_key}   (orders, refunds, videos, finance API)

  curl -s {base}/checkout_sessions -H 'Authorization: Bearer {agent_key}' \\
    -H 'API-Version: 2026-04-17' -H 'Idempotency-Key: demo-1' \\
    -H 'Content-Type: application/json' \\
    -d '{{"currency":"usd","line_items":[{{"id":"lut-pack-personal"}}],"capabilities":{{}}}}'
  curl -s {base}/orders?limit=5 -H 'Authorization: Bearer {merchant_key}'

The CLI lives in the project's virtualenv: run .venv/bin/reelcart --help
(or `source .venv/bin/activate` once, then `reelcart …`).
"""


@app.command()
def demo(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
) -> None:
    """Load the demo (catalog + a 90-day history, once) and serve it with the sandbox
    payment provider."""
    from models.migrate import upgrade

    base = f"http://{host}:{port}"
    os.environ.setdefault("REELCART_PUBLIC_BASE_URL", base)
    os.environ.setdefault("REELCART_AGENT_API_KEYS", DEMO_KEY)
    os.environ.setdefault("REELCART_MERCHANT_API_KEYS", DEMO_MERCHANT_KEY)
    settings = common.settings()
    _ensure_port_free(host, port)  # before loading anything
    upgrade(settings.database_url)  # once: loading and serving reuse it
    typer.echo(asyncio.run(_load_demo(settings)))
    typer.echo(demo_banner(settings, base))
    _run(host, port, 1)


@app.command()
def worker() -> None:
    """Run the background worker alone: webhook inbox, outbox deliveries, payment and payout
    recovery, manual captures, the feed schedule, Etsy polling, retention purge. Several
    can run against PostgreSQL."""
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
