"""``reelcart payouts …``: the month-end commands finance runs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from api.settings import get_settings
from models.money import format_minor

app = typer.Typer(help="Creator and rights-holder commissions: statements and "
                          "Stripe Connect payouts.", no_args_is_help=True)
T = TypeVar("T")


def _with_runtime(work: Callable[[Any], Awaitable[T]]) -> T:
    from api.runtime import build_runtime
    from models.migrate import upgrade

    get_settings.cache_clear()
    settings = get_settings()
    upgrade(settings.database_url)

    async def run() -> T:
        runtime = build_runtime(settings)
        try:
            return await work(runtime)
        finally:
            await runtime.close()

    return asyncio.run(run())


def _month(value: str) -> tuple[datetime, datetime]:
    try:
        start = datetime.strptime(value, "%Y-%m").replace(tzinfo=UTC)
    except ValueError:
        raise typer.BadParameter("use YYYY-MM, e.g. 2026-11") from None
    from commissions.service import month_of

    return month_of(start)


@app.command("lock")
def lock() -> None:
    """Lock every commission whose return window has passed (pending → locked)."""
    from commissions.ledger import lock_due

    async def work(runtime: Any) -> int:
        async with runtime.sessionmaker() as db, db.begin():
            return await lock_due(db)

    typer.echo(f"locked {_with_runtime(work)} commission rows")


@app.command("liabilities")
def liabilities(group_by: Annotated[str, typer.Option(help="payee or video")] = "payee"
                ) -> None:
    """What is owed: pending, locked (payable), in payout, paid, per payee or video."""
    from commissions import service

    if group_by not in ("payee", "video"):
        raise typer.BadParameter("payee or video")

    async def work(runtime: Any) -> dict[str, Any]:
        async with runtime.read_sessionmaker() as db:
            return await service.liabilities(db, group_by)

    report = _with_runtime(work)
    typer.echo(f"{group_by:<28} {'pending':>14} {'locked':>14} {'paid':>14} {'owed':>14}")
    for r in report["rows"]:
        c = r["currency"]
        typer.echo(f"{str(r.get('name') or r['key']):<28} {format_minor(r['pending'], c):>14} "
                   f"{format_minor(r['locked'], c):>14} {format_minor(r['paid'], c):>14} "
                   f"{format_minor(r['owed'], c):>14}")


@app.command("run")
def run(
    execute: Annotated[bool, typer.Option(
        "--execute", help="Pay (without it: a dry run that pays nobody)")] = False,
    run_id: Annotated[str | None, typer.Option(
        help="Name the run (e.g. 2026-11); re-running the same id resumes it")] = None,
    minimum: Annotated[int | None, typer.Option(
        help="Smallest payout in minor units (default REELCART_PAYOUT_MINIMUM_AMOUNT)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON result")] = False,
) -> None:
    """Pay each payee's locked balance by a Stripe Connect transfer (exactly once)."""
    from commissions.payouts import run_payouts

    async def work(runtime: Any) -> dict[str, Any]:
        return await run_payouts(
            runtime.sessionmaker, runtime.transfers, dry_run=not execute, run_id=run_id,
            minimum=minimum or runtime.commission_policy.minimum_payout)

    result = _with_runtime(work)
    if as_json:
        typer.echo(json.dumps(result, indent=2, default=str))
        return
    head = "DRY RUN (nothing paid; add --execute to pay)" if result["dry_run"] else \
        f"run {result['run_id']}"
    typer.echo(f"{head}, provider {result['provider']}, minimum {result['minimum_amount']}")
    for p in result.get("resumed", []):
        typer.echo(f"  resumed {p['payee_id']:<24} {format_minor(p['amount'], p['currency'])}"
                   f"  {p['status']}")
    for i in result["items"]:
        reason = f" ({i['reason']})" if i["reason"] else ""
        typer.echo(f"  {i['name']:<32} {format_minor(i['amount'], i['currency']):>14}  "
                   f"{i['action']}{reason}")
    if not result["dry_run"] and result["summary"]["pending"]:
        typer.echo("some payouts are pending (provider unreachable): run the same command "
                   "again; nobody is paid twice", err=True)
        raise typer.Exit(2)


@app.command("statements")
def statements(
    month: Annotated[str, typer.Option(help="YYYY-MM")],
    out: Annotated[Path, typer.Option(help="Write one CSV per payee here")] = Path(
        "statements"),
) -> None:
    """Keep the month's statement for every payee and write them as CSV."""
    from commissions import service
    from models import Payee

    start, end = _month(month)

    async def work(runtime: Any) -> list[tuple[str, str, list[dict[str, Any]]]]:
        from sqlalchemy import select

        made = []
        async with runtime.sessionmaker() as db, db.begin():
            for payee in list(await db.scalars(select(Payee).order_by(Payee.id))):
                kept = await service.ensure_statement(db, payee.id, start, end)
                body = await service.get_statement(db, kept.id)
                out.mkdir(parents=True, exist_ok=True)
                import csv

                with (out / f"{month}-{payee.id}.csv").open("w", newline="") as handle:
                    writer = csv.writer(handle)
                    writer.writerow(service.STATEMENT_HEADER)
                    writer.writerows(service.statement_rows(body))
                made.append((payee.id, kept.id, body["totals"]))
        return made

    for payee_id, statement_id, totals in _with_runtime(work):
        summary = ", ".join(f"closing {format_minor(t['closing_balance'], t['currency'])}"
                            for t in totals)
        typer.echo(f"{payee_id:<28} {statement_id}  {summary}")


@app.command("seed-demo")
def seed_demo() -> None:
    """Demo payees, contracts, orders credited to videos, a paid and an open statement."""
    from commissions.demo import seed

    async def work(runtime: Any) -> str:
        return await seed(runtime)

    typer.echo(_with_runtime(work))
