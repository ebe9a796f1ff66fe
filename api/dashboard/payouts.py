"""Dashboard pages for commissions and payouts, and the payee's shared statement page.

Thin like the other pages: reads through ``commissions``, the payout run through the same
service the API and the CLI use (dry run first, then run), every form CSRF-checked.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Query, Request
from starlette.responses import RedirectResponse, Response

from api.dashboard import queries
from api.dashboard.routes import ViewerDep, _date, check_csrf, missing, page
from api.deps import RuntimeDep
from api.exports import csv_response
from commissions import service
from commissions.errors import PayeeNotFound, StatementNotFound
from commissions.payouts import recent_runs, run_json, run_payouts
from models.base import utc_now
from models.errors import AppError

router = APIRouter(prefix="/dashboard", include_in_schema=False)
shared_router = APIRouter(prefix="/statements/shared", include_in_schema=False)


@router.get("/payouts")
async def payouts(request: Request, who: ViewerDep,
                  notice: Annotated[str | None, Query(max_length=300)] = None,
                  preview: Annotated[int, Query(ge=0, le=1)] = 0) -> Response:
    runtime = who.runtime
    minimum = runtime.commission_policy.minimum_payout
    async with runtime.read_sessionmaker() as db:
        by_payee = await service.liabilities(db, "payee")
        by_video = await service.liabilities(db, "video")
        runs = await recent_runs(db)
        titles = await queries.video_titles(db, [str(r["key"]) for r in by_video["rows"]
                                                 if r["key"]])
    plan = None
    if preview:
        plan = await run_payouts(runtime.sessionmaker, runtime.transfers, minimum=minimum,
                                 dry_run=True)
    return page(request, "dashboard/payouts.html", who, by_payee=by_payee["rows"],
                by_video=by_video["rows"], runs=runs, plan=plan, minimum=minimum, titles=titles,
                currency=runtime.profile.currencies[0], notice=notice,
                provider=runtime.transfers.name)


async def _line_titles(db: Any, statement: dict[str, Any]) -> dict[str, str | None]:
    """Titles of the videos a statement's lines name (shown instead of their ids)."""
    return await queries.video_titles(db, [
        str(v) for line in statement.get("lines") or []
        for v in (line.get("video_id"), line.get("earned_on_video_id")) if v])


@router.post("/payouts/run")
async def run(who: ViewerDep, csrf_token: Annotated[str, Form(max_length=100)] = "",
              nonce: Annotated[str, Form(max_length=60, pattern=r"^[A-Za-z0-9_\-]*$")] = ""
              ) -> Response:
    """Pays what the preview showed. The form's nonce is the run id: a double submit
    resumes the same run instead of starting a second one (which would pay nothing
    twice anyway)."""
    check_csrf(who, csrf_token)
    runtime = who.runtime
    try:
        result = await run_payouts(
            runtime.sessionmaker, runtime.transfers,
            minimum=runtime.commission_policy.minimum_payout, dry_run=False,
            run_id=f"dash_{nonce}" if nonce else None)
    except AppError as exc:
        return RedirectResponse(f"/dashboard/payouts?notice={quote(exc.message)}",
                                status_code=303)
    return RedirectResponse(f"/dashboard/payouts/runs/{quote(result['run_id'])}",
                            status_code=303)


@router.get("/payouts/runs/{run_id}")
async def run_detail(request: Request, who: ViewerDep, run_id: str) -> Response:
    async with who.runtime.read_sessionmaker() as db:
        found = await run_json(db, run_id[:64])
    if found is None:
        return missing(request, who, f"Payout run {run_id}")
    return page(request, "dashboard/payout_run.html", who, run=found)


@router.get("/payees/{payee_id}")
async def payee_detail(request: Request, who: ViewerDep, payee_id: str,
                       start: Annotated[str | None, Query(alias="from", max_length=40)] = None,
                       end: Annotated[str | None, Query(alias="to", max_length=40)] = None,
                       format: Annotated[str, Query(pattern="^(html|csv)$")] = "html"
                       ) -> Response:
    now = utc_now()
    default_start, default_end = service.month_of(now)
    since = _date(start) or default_start
    until = _date(end) or default_end
    if until <= since:
        until = since + timedelta(days=1)
    async with who.runtime.read_sessionmaker() as db:
        try:
            statement = await service.statement_json(db, payee_id[:64], since, until)
        except PayeeNotFound:
            return missing(request, who, f"Payee {payee_id}")
        statements = await service.statements_of(db, payee_id[:64])
        titles = await _line_titles(db, statement)
    if format == "csv":
        return csv_response(f"statement-{payee_id[:64]}.csv", service.STATEMENT_HEADER,
                            service.statement_rows(statement))
    return page(request, "dashboard/payee.html", who, s=statement, statements=statements,
                params={"from": since.date().isoformat(), "to": until.date().isoformat()},
                shared=None, titles=titles)


@router.get("/statements/{statement_id}")
async def statement_detail(request: Request, who: ViewerDep, statement_id: str,
                           shared: Annotated[str | None, Query(max_length=300)] = None
                           ) -> Response:
    async with who.runtime.read_sessionmaker() as db:
        try:
            statement = await service.get_statement(db, statement_id[:64])
        except StatementNotFound:
            return missing(request, who, f"Statement {statement_id}")
        links = await service.links_of(db, statement_id[:64])
        titles = await _line_titles(db, statement)
    return page(request, "dashboard/statement.html", who, s=statement, links=links,
                shared=None, titles=titles)


@router.post("/payees/{payee_id}/statements")
async def create_statement(who: ViewerDep, payee_id: str,
                           csrf_token: Annotated[str, Form(max_length=100)] = "",
                           start: Annotated[str, Form(alias="from", max_length=40)] = "",
                           end: Annotated[str, Form(alias="to", max_length=40)] = ""
                           ) -> Response:
    check_csrf(who, csrf_token)
    since, until = _date(start), _date(end)
    if since is None or until is None:
        return RedirectResponse(f"/dashboard/payees/{quote(payee_id[:64])}", status_code=303)
    async with who.runtime.sessionmaker() as db, db.begin():
        statement = await service.ensure_statement(db, payee_id[:64], since, until)
    return RedirectResponse(f"/dashboard/statements/{statement.id}", status_code=303)


@router.post("/statements/{statement_id}/share")
async def share(request: Request, who: ViewerDep, statement_id: str,
                csrf_token: Annotated[str, Form(max_length=100)] = "") -> Response:
    """Shows the new link once (only its hash is stored)."""
    check_csrf(who, csrf_token)
    runtime = who.runtime
    async with runtime.sessionmaker() as db, db.begin():
        _, token = await service.create_link(db, statement_id[:64],
                                             runtime.commission_policy.link_ttl_days)
    async with runtime.read_sessionmaker() as db:
        statement = await service.get_statement(db, statement_id[:64])
        links = await service.links_of(db, statement_id[:64])
        titles = await _line_titles(db, statement)
    base = runtime.settings.public_base_url.rstrip("/")
    return page(request, "dashboard/statement.html", who, s=statement, links=links,
                shared=f"{base}/statements/shared/{token}", titles=titles)


@router.post("/statements/{statement_id}/links/{link_id}/revoke")
async def revoke(who: ViewerDep, statement_id: str, link_id: str,
                 csrf_token: Annotated[str, Form(max_length=100)] = "") -> Response:
    check_csrf(who, csrf_token)
    async with who.runtime.sessionmaker() as db, db.begin():
        await service.revoke_link(db, statement_id[:64], link_id[:64])
    return RedirectResponse(f"/dashboard/statements/{quote(statement_id[:64])}",
                            status_code=303)


# ------------------------------------------------------------------ the payee's view


@shared_router.get("/{token}")
async def shared_statement(request: Request, runtime: RuntimeDep, token: str,
                           format: Annotated[str, Query(pattern="^(html|csv|json)$")] = "html"
                           ) -> Response:
    """Read-only, no login: the unguessable token is the credential."""
    async with runtime.read_sessionmaker() as db:
        try:
            statement: dict[str, Any] | None = await service.shared_statement(db, token)
        except StatementNotFound:
            statement = None
        titles = await _line_titles(db, statement) if statement else {}
    if statement is None:
        response = page(request, "dashboard/missing.html", None,
                        what="This statement link (unknown, expired or revoked)")
        response.status_code = 404
    elif format == "csv":
        response = csv_response("statement.csv", service.STATEMENT_HEADER,
                                service.statement_rows(statement))
    elif format == "json":
        import orjson

        response = Response(orjson.dumps(statement), media_type="application/json")
    else:
        response = page(request, "dashboard/statement.html", None, s=statement, links=[],
                        shared=None, titles=titles)
    response.headers["Referrer-Policy"] = "no-referrer"  # the token is in the URL
    response.headers["Content-Security-Policy"] = "default-src 'self'; frame-ancestors 'none'"
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Robots-Tag"] = "noindex"
    return response
