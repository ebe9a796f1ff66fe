"""``reelcart catalog …``: import files, sync from Shopify."""

from __future__ import annotations

import asyncio
import csv
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.cli import common
from api.settings import Settings

app = typer.Typer(help="Manage the product catalog.", no_args_is_help=True)


def _detect_format(path: Path) -> str:
    name = path.name.lower().removesuffix(".gz")
    for suffix, fmt in ((".jsonl", "acp"), (".ndjson", "acp"), (".csv", "csv"), (".tsv", "tsv")):
        if name.endswith(suffix):
            return fmt
    raise typer.BadParameter(f"cannot tell the format of {path.name}; pass --format")


FLAT_REQUIRED = ("item_id", "title", "price")  # OpenAI flat-file columns every row needs
FORMAT_NAMES = {"acp": "ACP Product JSONL", "csv": "an OpenAI flat-file CSV",
                "tsv": "an OpenAI flat-file TSV"}


def check_format(path: Path, fmt: str) -> None:
    """Refuse, before touching the database, a file that is not what ``fmt`` says: the first
    line of an ACP file is a JSON object; a CSV/TSV header has the required columns with
    that delimiter. The message says what the file looks like instead."""
    from api.cli.errors import CliError

    first = next((line for line in common.open_lines(path) if line.strip()), None)
    if first is None:
        raise CliError(f"{path.name} is empty: nothing to import")
    wanted = f"{path.name} is not {FORMAT_NAMES[fmt]} (--format {fmt})"
    looks_json = first.lstrip().startswith(("{", "["))
    if fmt == "acp":
        try:
            parsed = json.loads(first)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            return
        hint = next((f": it looks like {FORMAT_NAMES[other]} (pass --format {other})"
                     for other in ("csv", "tsv") if _missing_columns(first, other) == []),
                    ": its first line is not a JSON object")
        raise CliError(wanted + hint)
    if looks_json:
        raise CliError(f"{wanted}: it looks like JSON (ACP Product JSONL: pass --format acp)")
    missing = _missing_columns(first, fmt)
    if not missing:
        return
    other = "tsv" if fmt == "csv" else "csv"
    if _missing_columns(first, other) == []:
        raise CliError(f"{wanted}: it looks like {FORMAT_NAMES[other]} "
                       f"(pass --format {other})")
    raise CliError(f"{wanted}: the header lacks the required column(s) "
                   f"{', '.join(repr(m) for m in missing)}")


def _missing_columns(header: str, fmt: str) -> list[str]:
    columns = {c.strip().lower() for c in next(csv.reader(
        [header], delimiter="," if fmt == "csv" else "\t"), [])}
    if "id" in columns:
        columns.add("item_id")  # the parser accepts either
    return [name for name in FLAT_REQUIRED if name not in columns]


async def _import(path: Path, fmt: str, settings: Settings, show_progress: bool) -> int:
    from api.runtime import database, settle_heap
    from feeds import parsing
    from feeds.service import import_catalog
    from models.db import transaction

    settle_heap()  # a third of an import's CPU went to full GCs walking start-up objects
    lines = common.open_lines(path)
    parsed = parsing.parse_acp_jsonl(lines) if fmt == "acp" else parsing.parse_openai_flat(
        lines, "," if fmt == "csv" else "\t")
    total_lines = _count_lines(path) if show_progress else 0
    async with database(settings) as sessionmaker:
        with typer.progressbar(length=max(total_lines, 1), label="importing",
                               hidden=not show_progress) as bar:
            done = 0

            def tick(line: int) -> None:
                nonlocal done
                bar.update(max(0, line - done))
                done = max(done, line)
            report = await import_catalog(sessionmaker, parsed, progress=tick)
        if report.created or report.updated:  # the catalog changed: rebuild and push feeds
            from feeds.refresh import request_refresh

            async with transaction(sessionmaker) as db:
                await request_refresh(db, "catalog_import")
    typer.echo(f"products: {report.created} created, {report.updated} updated, "
               f"{report.unchanged} unchanged, {len(report.rejected)} rejected")
    if report.unchanged and not (report.created or report.updated or report.rejected):
        typer.echo("catalog unchanged: every product in the file is already up to date")
    for row in report.rejected[:50]:
        typer.echo(f"  line {row.line}: {row.reason}", err=True)
    if len(report.rejected) > 50:
        typer.echo(f"  … and {len(report.rejected) - 50} more", err=True)
    return len(report.rejected)


def _count_lines(path: Path) -> int:
    return sum(1 for _ in common.open_lines(path))


@app.command("import")
def catalog_import(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    fmt: Annotated[str | None, typer.Option("--format", help="acp | csv | tsv")] = None,
    strict: Annotated[bool, typer.Option(help="Exit 1 if any row is rejected")] = False,
) -> None:
    """Upsert products from an ACP Product JSONL or an OpenAI flat-file CSV/TSV (.gz ok)."""
    chosen = fmt or _detect_format(file)
    if chosen not in ("acp", "csv", "tsv"):
        raise typer.BadParameter("--format must be acp, csv or tsv")
    check_format(file, chosen)
    settings = common.migrated()
    rejected = asyncio.run(_import(file, chosen, settings, sys.stderr.isatty()))
    if strict and rejected:
        raise typer.Exit(1)


@app.command("sync-shopify")
def catalog_sync_shopify() -> None:
    """Upsert products and variants from the connected Shopify store (REELCART_SHOPIFY_*)."""
    import httpx

    from fulfillment.catalog_sync import sync_catalog
    from fulfillment.shopify_client import ShopifyAdmin, ShopifyRejected, ShopifyUnavailable
    from models.migrate import upgrade

    settings = common.settings()
    if not settings.shopify_enabled:
        raise typer.BadParameter("set REELCART_SHOPIFY_SHOP and REELCART_SHOPIFY_ACCESS_TOKEN")
    upgrade(settings.database_url)

    async def run(sessionmaker: async_sessionmaker[AsyncSession]) -> Any:
        assert settings.shopify_shop is not None
        assert settings.shopify_access_token is not None
        async with httpx.AsyncClient() as http:
            admin = ShopifyAdmin(http, shop=settings.shopify_shop,
                                 access_token=settings.shopify_access_token.get_secret_value(),
                                 api_version=settings.shopify_api_version)
            with typer.progressbar(length=1, label="syncing",
                                   hidden=not sys.stderr.isatty()) as bar:
                def tick(n: int) -> None:
                    bar.length = (bar.length or 0) + n
                    bar.update(n)
                return await sync_catalog(sessionmaker, admin, tick)

    try:
        report = common.with_database(run, settings)
    except (ShopifyUnavailable, ShopifyRejected) as exc:
        typer.echo(f"Shopify: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"products: {report.created} created, {report.updated} updated, "
               f"{report.unchanged} unchanged, {len(report.rejected)} rejected")
    for row in report.rejected[:50]:
        typer.echo(f"  product {row.line}: {row.reason}", err=True)
