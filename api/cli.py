"""``reelcart`` command line: serve, migrate, demo, catalog import, agent keys."""

from __future__ import annotations

import asyncio
import gzip
import io
import os
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from api import cli_ucp as ucp_cli
from api.settings import Settings, get_settings

app = typer.Typer(help="ReelCart: an Agentic Commerce Protocol merchant backend.",
                  no_args_is_help=True, add_completion=False)
catalog_app = typer.Typer(help="Manage the product catalog.", no_args_is_help=True)
agent_key_app = typer.Typer(help="Issue API keys to AI agents.", no_args_is_help=True)
merchant_key_app = typer.Typer(help="Issue merchant API keys.", no_args_is_help=True)
feeds_app = typer.Typer(help="Build, validate and publish product feeds.", no_args_is_help=True)
videos_app = typer.Typer(help="The generated videos that feature our products.",
                         no_args_is_help=True)
user_app = typer.Typer(help="Dashboard users.", no_args_is_help=True)
app.add_typer(user_app, name="user")
app.add_typer(videos_app, name="videos")
app.add_typer(feeds_app, name="feeds")
app.add_typer(merchant_key_app, name="merchant-key")
app.add_typer(catalog_app, name="catalog")
app.add_typer(agent_key_app, name="agent-key")
app.add_typer(ucp_cli.app, name="ucp")

DEMO_KEY = "rc_demo_agent_key"
T = TypeVar("T")


def _settings() -> Settings:
    get_settings.cache_clear()
    return get_settings()


def _in_transaction(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Migrate, then run ``work`` in one transaction on the configured database."""
    from models.db import create_engine, create_sessionmaker, transaction
    from models.migrate import upgrade

    settings = _settings()
    upgrade(settings.database_url)

    async def run() -> T:
        engine = create_engine(settings.database_url)
        try:
            async with transaction(create_sessionmaker(engine)) as db:
                return await work(db)
        finally:
            await engine.dispose()

    return asyncio.run(run())


@app.command()
def migrate() -> None:
    """Create or upgrade the database schema (alembic)."""
    from models.migrate import upgrade

    settings = _settings()
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
    settings = _settings()
    upgrade(settings.database_url)
    os.environ["REELCART_RUN_MIGRATIONS_ON_START"] = "false"  # done once, above
    uvicorn.run("api.app:app_factory", factory=True, host=host, port=port, workers=workers,
                log_config=None, timeout_graceful_shutdown=15, access_log=False,
                proxy_headers=True)


def _open_lines(path: Path) -> Iterator[str]:
    raw = gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")
    with raw, io.TextIOWrapper(raw, encoding="utf-8-sig", newline="") as text:
        yield from text


def _detect_format(path: Path) -> str:
    name = path.name.lower().removesuffix(".gz")
    for suffix, fmt in ((".jsonl", "acp"), (".ndjson", "acp"), (".csv", "csv"), (".tsv", "tsv")):
        if name.endswith(suffix):
            return fmt
    raise typer.BadParameter(f"cannot tell the format of {path.name}; pass --format")


async def _import(path: Path, fmt: str, settings: Settings, show_progress: bool) -> int:
    from feeds import parsing
    from feeds.schemas import ImportReport
    from feeds.service import batches, upsert_products
    from models.db import create_engine, create_sessionmaker, transaction

    lines = _open_lines(path)
    parsed = parsing.parse_acp_jsonl(lines) if fmt == "acp" else parsing.parse_openai_flat(
        lines, "," if fmt == "csv" else "\t")
    report = ImportReport()
    engine = create_engine(settings.database_url)
    sessionmaker = create_sessionmaker(engine)
    total_lines = _count_lines(path) if show_progress else 0
    try:
        with typer.progressbar(length=max(total_lines, 1), label="importing",
                               hidden=not show_progress) as bar:
            done = 0
            for records, line_numbers in batches(parsed, report):
                async with transaction(sessionmaker) as db:
                    await upsert_products(db, records, report, line_numbers)
                bar.update(max(0, line_numbers[-1] - done))
                done = max(done, line_numbers[-1])
    finally:
        await engine.dispose()
    typer.echo(f"products: {report.created} created, {report.updated} updated, "
               f"{report.unchanged} unchanged, {len(report.rejected)} rejected")
    if report.created or report.updated:  # the catalog changed: rebuild and push feeds
        from feeds.refresh import request_refresh

        engine = create_engine(settings.database_url)
        try:
            async with transaction(create_sessionmaker(engine)) as db:
                await request_refresh(db, "catalog_import")
        finally:
            await engine.dispose()
    for row in report.rejected[:50]:
        typer.echo(f"  line {row.line}: {row.reason}", err=True)
    if len(report.rejected) > 50:
        typer.echo(f"  … and {len(report.rejected) - 50} more", err=True)
    return len(report.rejected)


def _count_lines(path: Path) -> int:
    return sum(1 for _ in _open_lines(path))


@catalog_app.command("import")
def catalog_import(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    fmt: Annotated[str | None, typer.Option("--format", help="acp | csv | tsv")] = None,
    strict: Annotated[bool, typer.Option(help="Exit 1 if any row is rejected")] = False,
) -> None:
    """Upsert products from an ACP Product JSONL or an OpenAI flat-file CSV/TSV (.gz ok)."""
    from models.migrate import upgrade

    settings = _settings()
    upgrade(settings.database_url)
    chosen = fmt or _detect_format(file)
    if chosen not in ("acp", "csv", "tsv"):
        raise typer.BadParameter("--format must be acp, csv or tsv")
    rejected = asyncio.run(_import(file, chosen, settings, sys.stderr.isatty()))
    if strict and rejected:
        raise typer.Exit(1)


@catalog_app.command("sync-shopify")
def catalog_sync_shopify() -> None:
    """Upsert products and variants from the connected Shopify store (REELCART_SHOPIFY_*)."""
    import httpx

    from fulfillment.catalog_sync import sync_catalog
    from fulfillment.shopify_client import ShopifyAdmin, ShopifyRejected, ShopifyUnavailable
    from models.db import create_engine, create_sessionmaker
    from models.migrate import upgrade

    settings = _settings()
    if not settings.shopify_enabled:
        raise typer.BadParameter("set REELCART_SHOPIFY_SHOP and REELCART_SHOPIFY_ACCESS_TOKEN")
    upgrade(settings.database_url)

    async def run() -> Any:
        assert settings.shopify_shop is not None
        assert settings.shopify_access_token is not None
        engine = create_engine(settings.database_url)
        async with httpx.AsyncClient() as http:
            admin = ShopifyAdmin(http, shop=settings.shopify_shop,
                                 access_token=settings.shopify_access_token.get_secret_value(),
                                 api_version=settings.shopify_api_version)
            try:
                with typer.progressbar(length=1, label="syncing",
                                       hidden=not sys.stderr.isatty()) as bar:
                    def tick(n: int) -> None:
                        bar.length = (bar.length or 0) + n
                        bar.update(n)
                    return await sync_catalog(create_sessionmaker(engine), admin, tick)
            finally:
                await engine.dispose()

    try:
        report = asyncio.run(run())
    except (ShopifyUnavailable, ShopifyRejected) as exc:
        typer.echo(f"Shopify: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"products: {report.created} created, {report.updated} updated, "
               f"{report.unchanged} unchanged, {len(report.rejected)} rejected")
    for row in report.rejected[:50]:
        typer.echo(f"  product {row.line}: {row.reason}", err=True)


async def _load_demo(settings: Settings) -> str:
    from feeds.demo import demo_catalog
    from feeds.schemas import ImportReport
    from feeds.service import upsert_products
    from models.db import create_engine, create_sessionmaker, transaction

    engine = create_engine(settings.database_url)
    try:
        records = demo_catalog()
        report = ImportReport()
        async with transaction(create_sessionmaker(engine)) as db:
            await upsert_products(db, records, report, list(range(1, len(records) + 1)))
    finally:
        await engine.dispose()
    variants = sum(len(r.variants) for r in records)
    return (f"demo catalog: {len(records)} products, {variants} variants "
            f"({report.created} new, {report.updated} updated)")


@app.command()
def demo(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
) -> None:
    """Load the demo catalog and serve it with the sandbox payment provider."""
    from models.migrate import upgrade

    os.environ.setdefault("REELCART_AGENT_API_KEYS", DEMO_KEY)
    settings = _settings()
    upgrade(settings.database_url)
    typer.echo(asyncio.run(_load_demo(settings)))
    from api.dashboard.auth import create_user

    _in_transaction(lambda db: create_user(db, "demo", "demo-password"))
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


@agent_key_app.command("create")
def agent_key_create(
    name: Annotated[str, typer.Argument(help="Agent name, e.g. chatgpt")],
    signing_secret: Annotated[str | None, typer.Option(
        envvar="REELCART_NEW_AGENT_SIGNING_SECRET",
        help="Shared secret for request signatures")] = None,
) -> None:
    """Issue a bearer key for an agent. The key is printed once; only its hash is stored."""
    from api.auth import create_agent_key

    async def work(db: AsyncSession) -> tuple[str, str]:
        agent, key = await create_agent_key(db, name, signing_secret=signing_secret)
        return agent.id, key

    agent_id, key = _in_transaction(work)
    typer.echo(f"agent {name} ({agent_id})", err=True)
    typer.echo(key)
    typer.echo("store this key now: it cannot be shown again", err=True)


@user_app.command("create")
def user_create(
    username: Annotated[str, typer.Argument(help="Login name")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True,
                                          confirmation_prompt=True,
                                          envvar="REELCART_NEW_USER_PASSWORD")],
) -> None:
    """Create a dashboard user (or set a new password). Only a scrypt hash is stored."""
    from api.dashboard.auth import create_user

    if len(password) < 8:
        raise typer.BadParameter("use at least 8 characters")
    _in_transaction(lambda db: create_user(db, username, password))
    typer.echo(f"dashboard user {username} is ready: log in at /dashboard")


@user_app.command("hash")
def user_hash(
    username: Annotated[str, typer.Argument(help="Login name")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True,
                                          confirmation_prompt=True)],
) -> None:
    """Print a REELCART_DASHBOARD_USER value (name:hash) to provision a login by config."""
    from api.dashboard.auth import hash_password

    typer.echo(f"{username}:{hash_password(password)}")


@merchant_key_app.command("create")
def merchant_key_create(name: Annotated[str, typer.Argument(help="Who uses it")]) -> None:
    """Issue a merchant API key (orders, refunds). Printed once; only its hash is stored."""
    from api.auth import create_merchant_key

    typer.echo(_in_transaction(lambda db: create_merchant_key(db, name)))
    typer.echo("store this key now: it cannot be shown again", err=True)


@agent_key_app.command("webhook")
def agent_webhook(
    name: Annotated[str, typer.Argument(help="Agent name")],
    url: Annotated[str, typer.Option(help="The agent's order_events endpoint")],
    secret: Annotated[str, typer.Option(envvar="REELCART_NEW_AGENT_WEBHOOK_SECRET",
                                        help="HMAC key the agent gave you")],
) -> None:
    """Where this agent receives signed order webhooks (order_create / order_update)."""
    if len(secret) < 16:
        raise typer.BadParameter("--secret must be at least 16 characters")
    _check_outbound(url)
    _update_agent(name, webhook_url=url, webhook_secret=secret)
    typer.echo(f"order webhooks for {name} go to {url}")


def _check_outbound(url: str) -> None:
    problem = get_settings().outbound_policy().problem(url)
    if problem is not None:
        raise typer.BadParameter(f"--url cannot be used: {problem}")


def _update_agent(name: str, **values: object) -> None:
    from sqlalchemy import select

    from models import Agent

    async def work(db: AsyncSession) -> bool:
        agent = await db.scalar(select(Agent).where(Agent.name == name))
        if agent is None:
            return False
        for key, value in values.items():
            setattr(agent, key, value)
        return True

    if not _in_transaction(work):
        typer.echo(f"no agent named {name!r} (create one with `reelcart agent-key create`)",
                   err=True)
        raise typer.Exit(1)


@feeds_app.command("build")
def feeds_build(
    out: Annotated[Path | None, typer.Option(help="Output folder (REELCART_FEEDS_DIR)")] = None,
    formats: Annotated[str, typer.Option(help="OpenAI formats: jsonl,csv,tsv")] = "jsonl,csv,tsv",
) -> None:
    """Write the ACP feed (acp/products-*.jsonl + metadata.json) and the OpenAI flat-file feed
    (openai/products-*.{jsonl,csv,tsv}.gz), streamed, sharded, atomic."""
    from feeds.publish import build_feeds
    from models.db import create_engine, create_sessionmaker
    from models.migrate import upgrade

    settings = _settings()
    upgrade(settings.database_url)
    chosen = tuple(f.strip() for f in formats.split(",") if f.strip())
    if not set(chosen) <= {"jsonl", "csv", "tsv"}:
        raise typer.BadParameter("--formats takes jsonl, csv, tsv")
    out_dir = out or settings.feeds_dir

    async def run() -> dict:
        engine = create_engine(settings.database_url)
        try:
            with typer.progressbar(length=1, label="building feeds",
                                   hidden=not sys.stderr.isatty()) as bar:
                def tick(n: int) -> None:
                    bar.length = (bar.length or 0) + n
                    bar.update(n)
                report = await build_feeds(create_sessionmaker(engine), out_dir,
                                           settings.feed_config(), openai_formats=chosen,
                                           progress=tick)
            return report.as_dict()
        finally:
            await engine.dispose()

    report = asyncio.run(run())
    typer.echo(f"{report['products']} products, {report['variants']} variants in "
               f"{report['seconds']} s ({report['items_per_second']} items/s) → {out_dir}")
    for name, files in report["files"].items():
        typer.echo(f"  {name}: {', '.join(files)}")
    _print_validation(report["validation"])


def _print_validation(validation: dict) -> None:
    typer.echo(f"validation: {validation['valid']} of {validation['items']} items valid")
    for problem in validation["problems"][:20]:
        examples = ", ".join(str(e["item_id"]) for e in problem["examples"][:3])
        typer.echo(f"  {problem['count']:>8}  {problem['problem']}  (e.g. {examples})")


@videos_app.command("import")
def videos_import(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
) -> None:
    """Upsert videos from JSONL (one video per line: id, generator, prompt, urls, products,
    parent_video_id …). Remixes may come before their parents in the file."""
    from pydantic import ValidationError

    from attribution.schemas import VideoIn
    from attribution.service import upsert_video
    from models.db import create_engine, create_sessionmaker
    from models.errors import AppError
    from models.migrate import upgrade

    settings = _settings()
    upgrade(settings.database_url)
    parsed: list[tuple[int, VideoIn]] = []
    rejected: list[tuple[int, str]] = []
    for number, line in enumerate(_open_lines(file), start=1):
        if not line.strip():
            continue
        try:
            parsed.append((number, VideoIn.model_validate_json(line)))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "line"
            rejected.append((number, f"{where}: {first['msg']}"))
    in_file = {v.id for _, v in parsed}
    # Parents first: a remix waits until the video it was remixed from is stored.
    ordered = sorted(parsed, key=lambda item: (item[1].parent_video_id in in_file, item[0]))

    async def run() -> tuple[int, int]:
        created = updated = 0
        engine = create_engine(settings.database_url)
        sessionmaker = create_sessionmaker(engine)
        try:
            pending = ordered
            for _ in range(len(ordered) + 1):  # bounded passes for deep lineages
                retry: list[tuple[int, VideoIn]] = []
                for number, video in pending:
                    try:
                        async with sessionmaker() as db, db.begin():
                            _, was_created = await upsert_video(db, video)
                        created += was_created
                        updated += not was_created
                    except AppError as exc:
                        if video.parent_video_id in in_file and "Parent" in exc.message:
                            retry.append((number, video))
                        else:
                            rejected.append((number, exc.message))
                if not retry or len(retry) == len(pending):
                    rejected.extend((n, f"parent {v.parent_video_id!r} could not be stored")
                                    for n, v in retry)
                    break
                pending = retry
        finally:
            await engine.dispose()
        return created, updated

    created, updated = asyncio.run(run())
    typer.echo(f"videos: {created} created, {updated} updated, {len(rejected)} rejected")
    for number, reason in sorted(rejected)[:50]:
        typer.echo(f"  line {number}: {reason}", err=True)


@feeds_app.command("push")
def feeds_push(agent: Annotated[str, typer.Option(help="Agent name")]) -> None:
    """Push changed products to the agent's ACP Feed API (create the feed the first time)."""
    import httpx

    from feeds.feed_api_client import FeedApiClient
    from feeds.push import push_feed
    from models.db import create_engine, create_sessionmaker
    from models.migrate import upgrade

    settings = _settings()
    upgrade(settings.database_url)

    async def run() -> Any:
        engine = create_engine(settings.database_url)
        async with httpx.AsyncClient() as http:
            try:
                return await push_feed(
                    create_sessionmaker(engine),
                    lambda url, token: FeedApiClient(http, url, token), agent,
                    settings.feed_config())
            finally:
                await engine.dispose()

    report = asyncio.run(run())
    typer.echo(f"feed {report.feed_id}: {report.products_sent} of {report.products_total} "
               f"products sent in {report.batches} batches, {report.retries} retries, "
               f"{report.seconds:.1f} s: {report.status}")
    if report.status != "succeeded":
        typer.echo(report.error, err=True)
        raise typer.Exit(1)


@agent_key_app.command("feed")
def agent_feed(
    name: Annotated[str, typer.Argument(help="Agent name")],
    url: Annotated[str, typer.Option(help="Base URL of the agent's ACP Feed API")],
    token: Annotated[str | None, typer.Option(envvar="REELCART_NEW_AGENT_FEED_TOKEN",
                                              help="Bearer token for it")] = None,
    country: Annotated[str | None, typer.Option(help="Target country (ISO alpha-2)")] = None,
) -> None:
    """Where `feeds push` sends this agent our catalog."""
    _check_outbound(url)
    _update_agent(name, feed_api_url=url.rstrip("/"), feed_api_token=token,
                  feed_target_country=country.upper() if country else None)
    typer.echo(f"feeds for {name} go to {url}")


@feeds_app.command("validate")
def feeds_validate() -> None:
    """Check every catalog item against the OpenAI feed rules; exit 1 if any fails."""
    from feeds.builder import ValidationReport, openai_items, validate_openai_item
    from feeds.publish import catalog_rows
    from models.db import create_engine, create_sessionmaker
    from models.migrate import upgrade

    settings = _settings()
    upgrade(settings.database_url)
    config = settings.feed_config()

    async def run() -> dict:
        engine = create_engine(settings.database_url)
        report = ValidationReport()
        try:
            async for product in catalog_rows(create_sessionmaker(engine)):
                for item in openai_items(product, config):
                    report.add(item, validate_openai_item(item))
        finally:
            await engine.dispose()
        return report.as_dict()

    validation = asyncio.run(run())
    _print_validation(validation)
    if validation["valid"] != validation["items"]:
        raise typer.Exit(1)


@app.command()
def worker() -> None:
    """Run the background worker (webhook inbox). Several can run against PostgreSQL."""
    import signal

    from api.logs import configure_logging
    from api.runtime import build_runtime
    from api.worker import run_forever
    from models.migrate import upgrade

    settings = _settings()
    configure_logging(settings.log_level, settings.log_format)
    upgrade(settings.database_url)

    async def run() -> None:
        runtime = build_runtime(settings)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):  # finish the current item, then exit
            loop.add_signal_handler(sig, stop.set)
        try:
            await run_forever(runtime, stop)
        finally:
            await runtime.close()

    asyncio.run(run())


if __name__ == "__main__":
    app()
