"""``reelcart etsy …`` (connect, poll, push-videos, push-stock) and ``reelcart catalog
sync-etsy`` (registered on the catalog group by the CLI root)."""

from __future__ import annotations

import asyncio
import secrets
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar
from urllib.parse import parse_qs, urlparse

import typer

from api.cli import common
from api.settings import Settings

app = typer.Typer(help="Connect an Etsy shop; receipts, stock and videos.",
                       no_args_is_help=True)
T = TypeVar("T")


def _settings() -> Settings:
    settings = common.settings()
    if not settings.etsy_enabled:
        raise typer.BadParameter("set REELCART_ETSY_KEYSTRING and REELCART_ETSY_SHARED_SECRET")
    return settings


def _run(settings: Settings, work: Callable[[Any], Awaitable[T]]) -> T:
    """Migrate, build the runtime, run ``work(integration)``, report Etsy failures."""
    from api.runtime import build_runtime
    from etsy.errors import EtsyNotConnected, EtsyRejected, EtsyUnavailable
    from models.migrate import upgrade

    upgrade(settings.database_url)

    async def run() -> T:
        rt = build_runtime(settings)
        try:
            assert rt.etsy is not None
            return await work(rt.etsy)
        finally:
            await rt.close()

    try:
        return asyncio.run(run())
    except (EtsyUnavailable, EtsyRejected) as exc:
        typer.echo(f"Etsy: {exc}", err=True)
        raise typer.Exit(1) from None
    except EtsyNotConnected as exc:
        typer.echo(exc.message, err=True)
        raise typer.Exit(1) from None


def catalog_sync_etsy(
    full: Annotated[bool, typer.Option(help="Ignore the last run's mark; read every listing")]
    = False,
) -> None:
    """Upsert products and variants from the connected Etsy shop's active listings."""
    settings = _settings()

    async def work(etsy: Any) -> Any:
        with typer.progressbar(length=1, label="syncing", hidden=not sys.stderr.isatty()) as bar:
            def tick(n: int) -> None:
                bar.length = (bar.length or 0) + n
                bar.update(n)
            return await etsy.sync_listings(tick, full=full)

    report = _run(settings, work)
    c = report.catalog
    mode = "incremental" if report.incremental else "full"
    typer.echo(f"listings: {report.listings_seen} read ({mode}, {report.pages} pages)")
    typer.echo(f"products: {c.created} created, {c.updated} updated, {c.unchanged} unchanged, "
               f"{len(c.rejected)} rejected")
    for row in c.rejected[:50]:
        typer.echo(f"  listing {row.line}: {row.reason}", err=True)


def _code_from(answer: str) -> tuple[str, str | None]:
    """The authorisation code, from the code itself or the whole redirect URL."""
    if "://" in answer:
        query = parse_qs(urlparse(answer).query)
        if "error" in query:
            raise typer.BadParameter(f"Etsy refused: {query['error'][0]}")
        return query.get("code", [""])[0], query.get("state", [None])[0]
    return answer.strip(), None


@app.command("connect")
def connect(
    code: Annotated[str | None, typer.Option(
        help="The code (or redirect URL) from a previous `connect`; prompts if omitted")] = None,
) -> None:
    """OAuth 2.0 with PKCE: print the authorisation URL, then take the code."""
    from etsy import repository
    from etsy.client import SCOPES, authorization_url, pkce_pair

    settings = _settings()
    if settings.etsy_token_key is None:
        raise typer.BadParameter(
            "set REELCART_ETSY_TOKEN_KEY (tokens are stored encrypted), e.g. from "
            "python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())'")
    keystring = settings.etsy_keystring
    assert keystring is not None

    async def start(etsy: Any) -> str | None:
        if code is not None:
            return None
        verifier, challenge = pkce_pair()
        state = secrets.token_urlsafe(24)
        async with etsy.sessionmaker() as db, db.begin():
            row = await repository.ensure_connection(db)
            row.pending_state = state
            row.pending_verifier_enc = etsy.tokens.encrypt(verifier)
        return authorization_url(keystring=keystring,
                                 redirect_uri=settings.etsy_redirect_uri, state=state,
                                 challenge=challenge, scopes=SCOPES)

    url = _run(settings, start)
    answer = code
    if url is not None:
        typer.echo("Open this URL, approve the access, then paste the code (or the whole "
                   "URL Etsy redirected to):")
        typer.echo(url)
        answer = typer.prompt("code")
    assert answer is not None
    got, state = _code_from(answer)

    async def finish(etsy: Any) -> str:
        async with etsy.sessionmaker() as db:
            row = await repository.connection(db)
            verifier = etsy.tokens.decrypt(row.pending_verifier_enc) if row else None
            expected = row.pending_state if row else None
        if verifier is None:
            raise typer.BadParameter("no pending authorisation: run `reelcart etsy connect`")
        if state is not None and state != expected:
            raise typer.BadParameter("the state in the URL does not match; start again")
        tokens = await etsy.tokens.oauth.exchange_code(
            code=got, verifier=verifier, redirect_uri=settings.etsy_redirect_uri)
        await etsy.tokens.store(tokens, pending_state=None, pending_verifier_enc=None,
                                scopes=str(tokens.get("scope") or SCOPES))
        me = await etsy.api.me()
        shop_id = str(settings.etsy_shop_id or me.get("shop_id") or "")
        async with etsy.sessionmaker() as db, db.begin():
            row = await repository.ensure_connection(db)
            row.shop_id = shop_id or None
            row.user_id = str(me.get("user_id") or "") or None
        return shop_id

    shop_id = _run(settings, finish)
    typer.echo(f"connected: Etsy shop {shop_id or '(none: set REELCART_ETSY_SHOP_ID)'}")


@app.command("poll")
def poll() -> None:
    """Take in paid Etsy receipts now (the worker also does this on a schedule)."""
    async def work(etsy: Any) -> int:
        taken: int = await etsy.poll_receipts()
        return taken

    typer.echo(f"receipts taken in: {_run(_settings(), work)}")


@app.command("push-videos")
def push_videos() -> None:
    """Upload each linked product's featured video to its listing (only what changed)."""
    async def work(etsy: Any) -> int:
        done: int = await etsy.push_videos()
        return done

    typer.echo(f"videos uploaded: {_run(_settings(), work)}")


@app.command("push-stock")
def push_stock() -> None:
    """Queue an inventory push for every linked listing (after a restock in ReelCart); the
    worker sets the Etsy quantities to ours."""
    from sqlalchemy import select

    from etsy.hooks import enqueue_stock_push
    from models import EtsyListingLink

    async def work(etsy: Any) -> int:
        async with etsy.sessionmaker() as db, db.begin():
            ids = list(await db.scalars(select(EtsyListingLink.variant_id)))
            queued: int = await enqueue_stock_push(db, ids, reason="push-stock")
        return queued

    typer.echo(f"listings queued: {_run(_settings(), work)}")
