"""Dashboard pages. Thin: read models from ``queries``, actions through the domain
services the APIs use, every form checked against the session's CSRF token."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.templating import Jinja2Templates
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import RedirectResponse, Response

from api.dashboard import auth, charts, overview, queries, refund_form, throttle
from api.deps import RuntimeDep
from api.exports import (
    csv_response,
    in_report_range,
    reconciliation_csv,
    revenue_csv,
    revenue_totals,
)
from api.middleware import CONTENT_SECURITY_POLICY
from api.runtime import Runtime
from attribution import repository as attribution_repo
from commissions.service import with_commission_costs
from etsy.repository import health as etsy_health
from feeds import repository as feed_repository
from fulfillment import service as fulfillment_service
from models import DashboardUser
from models.base import utc_now
from models.errors import AppError, NotFound
from models.money import format_minor
from models.urls import is_http_url
from orders import refunds, repository
from orders import service as order_service
from orders.documents import buyer_contact
from payments.reconciliation import reconcile
from webhooks import outbox

router = APIRouter(prefix="/dashboard", include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).resolve().parent.parent / "templates"))
templates.env.tests["http_url"] = is_http_url  # links render only when http(s)
templates.env.filters["money"] = lambda amount, currency="usd": format_minor(
    int(amount or 0), currency)
templates.env.filters["contact"] = lambda order: buyer_contact(
    order.get("buyer") if isinstance(order, dict) else order.buyer,
    order.get("fulfillment_details") if isinstance(order, dict) else order.fulfillment_details)
PAGE = 25


class LoginRequired(Exception):
    pass


class CsrfRejected(Exception):
    pass


@dataclass
class Viewer:
    user: DashboardUser
    csrf: str
    runtime: Runtime


async def viewer(request: Request, runtime: RuntimeDep) -> Viewer:
    async with runtime.read_sessionmaker() as db:
        found = await auth.current(db, request.cookies.get(auth.COOKIE))
    if found is None:
        raise LoginRequired
    return Viewer(found[0], found[1].csrf_token, runtime)


ViewerDep = Annotated[Viewer, Depends(viewer)]


def check_csrf(who: Viewer, token: str) -> None:
    if not secrets.compare_digest(token.encode(), who.csrf.encode()):
        raise CsrfRejected


def page(request: Request, name: str, who: Viewer | None, **context: Any) -> Response:
    response = templates.TemplateResponse(request, name, {
        "who": who, "csrf": who.csrf if who else "", "nonce": secrets.token_urlsafe(12)}
        | context)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = PAGE_CSP
    return response


# The site-wide policy, plus product images and video thumbnails from the merchant's https
# CDN (merchant data, rendered only when http(s)). Scripts, styles, frames: same as
# everywhere, i.e. nothing inline.
PAGE_CSP = CONTENT_SECURITY_POLICY + "; img-src 'self' https: data:"


def _date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=utc_now().tzinfo)
    return parsed if in_report_range(parsed) else None


# ------------------------------------------------------------------ login


@router.get("/login")
async def login_form(request: Request) -> Response:
    return _login_page(request, None)


def _login_page(request: Request, error: str | None, status_code: int = 200) -> Response:
    """The form carries a CSRF token that must match a cookie set with it (login CSRF:
    another site cannot log the browser in to an account of its choosing)."""
    token = secrets.token_urlsafe(24)
    response = page(request, "dashboard/login.html", None, error=error, csrf=token)
    response.status_code = status_code
    response.set_cookie(auth.LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", max_age=3600,
                        path="/dashboard/login")
    return response


@router.post("/login")
async def login(request: Request, runtime: RuntimeDep,
                username: Annotated[str, Form(max_length=100)],
                password: Annotated[str, Form(max_length=200)],
                csrf_token: Annotated[str, Form(max_length=100)] = "") -> Response:
    expected = request.cookies.get(auth.LOGIN_CSRF_COOKIE, "")
    if not expected or not secrets.compare_digest(csrf_token.encode(), expected.encode()):
        raise CsrfRejected
    address = request.client.host if request.client else "unknown"
    async with runtime.sessionmaker() as db, db.begin():
        locked_until = await throttle.reserve(db, username, address)
    if locked_until is not None:
        minutes = max(1, -(-int((locked_until - utc_now()).total_seconds()) // 60))
        response = _login_page(request, f"Too many attempts. Try again in {minutes} "
                               f"minute{'s' if minutes > 1 else ''}.", 429)
        response.headers["Retry-After"] = str(minutes * 60)
        return response
    target = auth.ScryptCost(runtime.settings.dashboard_scrypt_log2_n)
    user = await auth.check_credentials(runtime.read_sessionmaker, username, password, target)
    if user is None:
        return _login_page(request, "Wrong username or password.", 401)
    async with runtime.sessionmaker() as db, db.begin():
        await throttle.succeeded(db, username, address)
        session_id, _ = await auth.start_session(db, user, password, target)
    response = RedirectResponse("/dashboard", status_code=303)
    response.set_cookie(auth.COOKIE, session_id, httponly=True, samesite="lax",
                        secure=runtime.settings.public_base_url.startswith("https://"),
                        max_age=int(auth.SESSION_TTL.total_seconds()), path="/dashboard")
    response.delete_cookie(auth.LOGIN_CSRF_COOKIE, path="/dashboard/login")
    return response


@router.post("/logout")
async def logout(request: Request, who: ViewerDep,
                 csrf_token: Annotated[str, Form(max_length=100)] = "") -> Response:
    check_csrf(who, csrf_token)
    async with who.runtime.sessionmaker() as db, db.begin():
        await auth.logout(db, request.cookies.get(auth.COOKIE))
    response = RedirectResponse("/dashboard/login", status_code=303)
    response.delete_cookie(auth.COOKIE, path="/dashboard")
    return response


@router.get("")
async def home(request: Request, who: ViewerDep,
               period: Annotated[str | None, Query(max_length=10)] = None,
               start: Annotated[str | None, Query(alias="from", max_length=40)] = None,
               end: Annotated[str | None, Query(alias="to", max_length=40)] = None
               ) -> Response:
    """The overview: the period's sales against the period before, revenue per day, top
    videos and agents, and what needs attention."""
    from orders.capture import open_problems

    now = utc_now()
    chosen, problem = overview.choose_period(now.date(), period, start, end)
    before = chosen.previous()
    configured = who.runtime.profile.currencies
    sections: list[dict[str, Any]] = []
    unit = "day"
    async with who.runtime.read_sessionmaker() as db:
        sold = await queries.order_currencies(db, start=before.since, end=chosen.until)
        for currency in shown_currencies(configured, sold):
            current = await queries.sales_summary(db, currency=currency, start=chosen.since,
                                                  end=chosen.until)
            previous = await queries.sales_summary(db, currency=currency,
                                                   start=before.since, end=before.until)
            per_day = await queries.gross_by_day(db, currency=currency, start=chosen.since,
                                                 end=chosen.until)
            series, unit = charts.over_time(per_day, chosen.start, chosen.end)
            sections.append({
                "currency": currency, "cards": _cards(current, previous, currency),
                "chart": charts.line_chart(series, currency,
                                           title=f"Revenue per {unit} ({currency.upper()})"),
                "videos": await queries.top_videos(db, currency=currency,
                                                   start=chosen.since, end=chosen.until),
                "agents": await queries.top_agents(db, currency=currency,
                                                   start=chosen.since, end=chosen.until)})
        alerts = await queries.alerts(db)
        payments = await open_problems(db, now)
        failing_feeds = [d for d in await feed_repository.destination_health(db)
                         if d["failures"]]
    report = _feed_report(who.runtime)
    validation = (report or {}).get("validation") or {}
    return page(request, "dashboard/home.html", who, period=chosen, problem=problem,
                sections=sections, unit=unit, alerts=alerts, payments=payments,
                failing_feeds=failing_feeds,
                feed_invalid=int(validation.get("invalid") or 0),
                feed_store_problems=validation.get("store_problems") or [],
                feed_problems=(validation.get("problems") or [])[:3],
                custom={"from": chosen.start.isoformat(),
                        "to": (chosen.end - timedelta(days=1)).isoformat(),
                        "last": (chosen.end - timedelta(days=1)).isoformat()})


def shown_currencies(configured: list[str], sold: set[str]) -> list[str]:
    """The overview's currencies, each with figures of its own (amounts in different
    currencies are never added up): those with orders in the two periods, the merchant's
    configured ones first in their order, then any other (a currency no longer offered);
    the first configured one when nothing was sold."""
    configured = [c.lower() for c in configured]
    chosen = [c for c in configured if c in sold] + sorted(sold - set(configured))
    return chosen or configured[:1]


def _cards(now: dict[str, int], before: dict[str, int], currency: str) -> list[dict[str, Any]]:
    """The overview's figures, each with its change against the previous period."""
    def money(amount: int) -> str:
        return format_minor(amount, currency)

    aov_now = overview.average(now["gross"], now["orders"])
    aov_before = overview.average(before["gross"], before["orders"])
    cards: list[dict[str, Any]] = [
        {"id": "revenue", "label": "Revenue", "value": money(now["gross"]),
         "note": f"{money(now['gross'] - now['refunded'])} after refunds",
         "change": overview.change(now["gross"], before["gross"]), "good": "up"},
        {"id": "orders", "label": "Orders", "value": str(now["orders"]), "note": "",
         "change": overview.change(now["orders"], before["orders"]), "good": "up"},
        {"id": "aov", "label": "Average order", "value": money(aov_now), "note": "",
         "change": overview.change(aov_now, aov_before), "good": "up"},
    ]
    for key, label, num, den, good, note in (
            ("attributed", "Attributed to videos", "attributed", "ledger_total", "up",
             "of sales, last touch"),
            ("refund-rate", "Refund rate", "refunded", "gross", "down", "of revenue refunded"),
            ("dispute-rate", "Dispute rate", "disputed", "orders", "down",
             "of orders disputed")):
        cards.append({"id": key, "label": label,
                      "value": overview.percent(now[num], now[den]) or "—", "note": note,
                      "change": overview.rate_change((now[num], now[den]),
                                                     (before[num], before[den])),
                      "good": good})
    return cards


def _feed_report(runtime: Runtime) -> dict[str, Any] | None:
    import orjson

    report_path = Path(runtime.settings.feeds_dir) / "report.json"
    try:
        loaded = orjson.loads(report_path.read_bytes()) if report_path.is_file() else None
    except (OSError, orjson.JSONDecodeError):
        return None
    return loaded if isinstance(loaded, dict) else None


# ------------------------------------------------------------------ orders


@router.get("/orders")
async def orders(request: Request, who: ViewerDep,
                 status: Annotated[str | None, Query(max_length=32)] = None,
                 agent: Annotated[str | None, Query(max_length=64)] = None,
                 video: Annotated[str | None, Query(max_length=100)] = None,
                 q: Annotated[str | None, Query(max_length=200)] = None,
                 start: Annotated[str | None, Query(alias="from", max_length=40)] = None,
                 end: Annotated[str | None, Query(alias="to", max_length=40)] = None,
                 p: Annotated[int, Query(ge=1, le=100_000)] = 1,
                 format: Annotated[str, Query(pattern="^(html|csv)$")] = "html") -> Response:
    async with who.runtime.read_sessionmaker() as db:
        total, rows = await queries.orders_page(
            db, status=status or None, agent=agent or None, video=video or None, q=q or None,
            start=_date(start), end=_date(end), limit=10_000 if format == "csv" else PAGE,
            offset=0 if format == "csv" else (p - 1) * PAGE)
        agents = await queries.agents(db)
    if format == "csv":
        return csv_response(
            "orders.csv",
            ["id", "order_number", "created_at", "status", "payment_status", "currency",
             "total_amount", "refunded_amount", "agent_id"],
            [[o.id, o.order_number, o.created_at.isoformat(), o.status, o.payment_status,
              o.currency, o.total_amount, o.refunded_amount, o.agent_id] for o in rows])
    return page(request, "dashboard/orders.html", who, orders=rows, total=total, page_no=p,
                pages=max(1, -(-total // PAGE)), agents=agents,
                filters={"status": status or "", "agent": agent or "", "video": video or "",
                         "q": q or "", "from": start or "", "to": end or ""})


@router.get("/orders/{order_id}")
async def order_detail(request: Request, who: ViewerDep, order_id: str,
                       notice: Annotated[str | None, Query(max_length=300)] = None,
                       error: Annotated[str | None, Query(max_length=300)] = None) -> Response:
    async with who.runtime.read_sessionmaker() as db:
        order = await repository.get_order(db, order_id[:64])
        if order is None:
            return missing(request, who, f"Order {order_id[:64]}")
        detail = await order_service.merchant_order_json(db, order)
        touches = await queries.touches_of(db, order.checkout_session_id)
        credits = await queries.credits_of(db, order.id)
        titles = await queries.video_titles(
            db, [t.video_id for t in touches if t.video_id]
            + [c.video_id for c in credits if c.video_id])
        actors = await queries.actor_names(db, [e["actor"] for e in detail["events"]])
        agent = (await queries.actor_names(db, [f"agent:{order.agent_id}"]))[
            f"agent:{order.agent_id}"]
    shop = who.runtime.settings.shopify_shop or ""
    domain = shop if "." in shop else f"{shop}.myshopify.com"
    return page(request, "dashboard/order.html", who, o=detail, touches=touches,
                credits=credits, notice=notice, error=error, titles=titles, actors=actors,
                agent=agent, refund_blocked=refund_form.blocked(detail),
                refund_reasons=REFUND_REASONS,
                shopify=who.runtime.settings.shopify_enabled,
                shopify_admin=f"https://{domain}/admin")


def missing(request: Request, who: Viewer | None, what: str) -> Response:
    """The dashboard's not-found page, with a real 404 status."""
    response = page(request, "dashboard/missing.html", who, what=what)
    response.status_code = 404
    return response


def _back(order_id: str, notice: str, *, error: bool = False) -> Response:
    from urllib.parse import quote

    field = "error" if error else "notice"
    return RedirectResponse(f"/dashboard/orders/{quote(order_id, safe='')}?{field}="
                            f"{quote(notice)}", status_code=303)


async def _order_action(who: Viewer, order_id: str,
                        action: Callable[[AsyncSession], Awaitable[object]],
                        done: str) -> Response:
    """Run one order action in its own transaction, wake the worker for what it queued
    and report the outcome on the order page."""
    try:
        async with who.runtime.sessionmaker() as db, db.begin():
            await action(db)
    except AppError as exc:
        return _back(order_id, exc.message, error=True)
    who.runtime.wake_worker()
    return _back(order_id, done)


@router.post("/orders/{order_id}/refund")
async def refund(request: Request, who: ViewerDep, order_id: str,
                 csrf_token: Annotated[str, Form(max_length=100)] = "",
                 nonce: Annotated[str, Form(max_length=100)] = "",
                 amount: Annotated[str, Form(max_length=30)] = "",
                 reason: Annotated[str, Form(max_length=200)] = "requested_by_customer",
                 confirm: Annotated[str, Form(max_length=10)] = "",
                 ) -> Response:
    """Two steps: the form's amount is checked and shown back exactly (``Refund 19.99 USD
    of 50.00 USD``); only the confirmation's POST refunds. An empty amount is refused,
    never read as "everything"."""
    check_csrf(who, csrf_token)
    if reason not in REFUND_REASONS:
        reason = "requested_by_customer"
    runtime = who.runtime
    async with runtime.read_sessionmaker() as db:
        order = await repository.get_order(db, order_id[:64])
        if order is None:
            return missing(request, who, f"Order {order_id[:64]}")
        detail = await order_service.merchant_order_json(db, order)
    try:
        planned = refund_form.plan(detail, amount, reason)
    except refund_form.RefundRefused as exc:
        return _back(order.id, str(exc), error=True)
    if confirm != "yes":
        return page(request, "dashboard/refund_confirm.html", who, o=detail, plan=planned,
                    nonce=nonce or secrets.token_urlsafe(12))
    try:
        async with runtime.sessionmaker() as db, db.begin():
            # The form's nonce keys the refund: a double-submit refunds once.
            await refunds.refund_order(
                runtime.sessionmaker, db, runtime.provider, order_id=order.id,
                amount=planned.amount, reason=planned.reason,
                request_key=f"dashboard:{nonce or secrets.token_hex(8)}",
                actor=f"user:{who.user.username}")
    except AppError as exc:
        return _back(order.id, _refusal(exc, planned), error=True)
    return _back(order.id, f"Refund of {planned.amount_text} recorded.")


REFUND_REASONS = ("requested_by_customer", "duplicate", "fraudulent")


def _refusal(exc: AppError, planned: refund_form.RefundPlan) -> str:
    """The domain names amounts in minor units for API clients; the dashboard says them in
    the order's currency (``19.99 USD``)."""
    refundable = (exc.extra or {}).get("refundable_amount")
    if exc.code == "refund_exceeds_refundable" and isinstance(refundable, int):
        return (f"{planned.amount_text} is more than the "
                f"{format_minor(refundable, planned.currency)} left to refund.")
    return exc.message


@router.post("/orders/{order_id}/ship")
async def ship(who: ViewerDep, order_id: str,
               csrf_token: Annotated[str, Form(max_length=100)] = "",
               carrier: Annotated[str, Form(max_length=100)] = "",
               tracking_number: Annotated[str, Form(max_length=200)] = "",
               tracking_url: Annotated[str, Form(max_length=2000)] = "") -> Response:
    check_csrf(who, csrf_token)

    async def action(db: AsyncSession) -> None:
        order = await repository.lock_order(db, order_id[:64])
        if order is None:
            raise NotFound("No such order.")
        await fulfillment_service.ship_manually(
            db, order, carrier=carrier or None, tracking_number=tracking_number or None,
            tracking_url=tracking_url or None, line_items=None,
            actor=f"user:{who.user.username}")
    return await _order_action(who, order_id, action, "Marked as shipped.")


@router.post("/orders/{order_id}/redeliver")
async def redeliver(who: ViewerDep, order_id: str,
                    csrf_token: Annotated[str, Form(max_length=100)] = "") -> Response:
    check_csrf(who, csrf_token)
    return await _order_action(
        who, order_id,
        lambda db: order_service.resend_to_agent(db, order_id[:64], f"user:{who.user.username}"),
        "The agent will be sent the order again.")


@router.post("/orders/{order_id}/retry-shopify")
async def retry_shopify(who: ViewerDep, order_id: str,
                        csrf_token: Annotated[str, Form(max_length=100)] = "") -> Response:
    check_csrf(who, csrf_token)
    if not who.runtime.settings.shopify_enabled:
        return _back(order_id, "No Shopify store is connected.")
    return await _order_action(
        who, order_id,
        lambda db: order_service.retry_forwarding(db, order_id[:64], f"user:{who.user.username}"),
        "Forwarding to Shopify again.")


# ------------------------------------------------------------------ videos


@router.get("/videos")
async def videos(request: Request, who: ViewerDep,
                 format: Annotated[str, Query(pattern="^(html|csv)$")] = "html") -> Response:
    async with who.runtime.read_sessionmaker() as db:
        rows = await queries.videos_with_revenue(db)
        unknown = await queries.unknown_creatives(db)
    if format == "csv":
        return csv_response(
            "videos.csv",
            ["id", "title", "generator", "campaign", "creator", "products", "orders",
             "revenue_last_touch"],
            [[v.id, v.title, v.generator, v.campaign, v.creator, products or 0, orders or 0,
              gross or 0] for v, gross, orders, products in rows])
    currency = who.runtime.profile.currencies[0]
    flagged = frozenset(f"{u['id']}" for u in unknown)
    bars = [(v.title or v.id, int(gross or 0)) for v, gross, _, _ in rows if gross] + [
        (u["id"], u["net"]) for u in unknown if u["currency"] == currency]
    return page(request, "dashboard/videos.html", who, rows=rows, unknown=unknown,
                chart=charts.bar_chart(sorted(bars, key=lambda b: -b[1])[:12], currency,
                                       title="Revenue by video", flagged=flagged),
                currency=currency)


@router.get("/videos/{video_id}")
async def video_detail(request: Request, who: ViewerDep, video_id: str) -> Response:
    from attribution.errors import VideoNotFound
    from attribution.service import get_video

    async with who.runtime.read_sessionmaker() as db:
        try:
            video = await get_video(db, video_id[:100])
        except VideoNotFound:
            return missing(request, who, f"Video {video_id[:100]}")
        series = await queries.video_sales_by_day(db, video["id"])
        tree = await queries.remix_tree(db, video["id"])
    currency = who.runtime.profile.currencies[0]
    total = sum(v for _, v in series)
    if series:
        first, last = (datetime.fromisoformat(series[0][0]).date(),
                       datetime.fromisoformat(series[-1][0]).date())
        series, unit = charts.over_time(series, first, last + timedelta(days=1))
    else:
        unit = "day"
    return page(request, "dashboard/video.html", who, v=video, tree=tree,
                chart=charts.line_chart(series, currency, title=f"Attributed sales per {unit}"),
                total=total, currency=currency)


# ------------------------------------------------------------------ finance


@router.get("/finance")
async def finance(request: Request, who: ViewerDep,
                  group: Annotated[str, Query(pattern="^(video|campaign|creator|generator|agent)$")]
                  = "video",
                  model: Annotated[str, Query(
                      pattern="^(last_touch|first_touch|linear|position_based)$")] = "last_touch",
                  view: Annotated[str, Query(pattern="^(cash|accrual)$")] = "cash",
                  start: Annotated[str | None, Query(alias="from", max_length=40)] = None,
                  end: Annotated[str | None, Query(alias="to", max_length=40)] = None,
                  format: Annotated[str, Query(pattern="^(html|csv|recon)$")] = "html"
                  ) -> Response:
    now = utc_now()
    since = _date(start) or now - timedelta(days=30)
    until = _date(end) or now + timedelta(days=1)
    async with who.runtime.read_sessionmaker() as db:
        rows = await attribution_repo.revenue(db, group_by=group, model=model, start=since,
                                              end=until, view=view)
        rows = await with_commission_costs(db, rows, group_by=group, start=since, end=until,
                                           view=view)
        try:
            recon: dict[str, Any] | None = await reconcile(db, who.runtime.provider, since,
                                                           until + timedelta(days=1))
        except Exception:  # the provider may be unreachable: the page still shows revenue
            recon = None
        over_time = await queries.revenue_by_day(db, model=model, start=since, end=until)
    if format == "recon" and recon is not None:
        return reconciliation_csv(recon)
    if format == "csv":
        return revenue_csv(group, model, rows)
    currency = who.runtime.profile.currencies[0]
    names, flagged = await _group_names(who, group, rows)
    for r in rows:
        r["label"] = names.get(str(r["key"]), str(r["key"])) if r["key"] else "(unattributed)"
        r["unknown"] = str(r["key"]) in flagged
    chart = charts.bar_chart(
        sorted([(str(r["label"]), int(str(r["gross"] or 0))) for r in rows
                if r["currency"] == currency], key=lambda b: -b[1])[:15],
        currency, title=f"Revenue by {group}",
        flagged=frozenset(str(r["label"]) for r in rows if r["unknown"]))
    totals = revenue_totals(rows)
    series, unit = charts.over_time(over_time, since.date(), until.date())
    trend = charts.line_chart(series, currency, title=f"Attributed revenue per {unit}")
    rows = sorted(rows, key=lambda r: -int(str(r["gross"] or 0)))
    return page(request, "dashboard/finance.html", who, rows=rows, chart=chart, trend=trend,
                totals=totals, recon=recon, currency=currency, unit=unit,
                params={"group": group, "model": model, "view": view,
                        "from": since.date().isoformat(), "to": until.date().isoformat()})


async def _group_names(who: Viewer, group: str, rows: list[dict[str, Any]]
                       ) -> tuple[dict[str, str], set[str]]:
    """Display names for finance rows: video titles (ids the catalog does not know are
    flagged as unknown creatives) and agent names; other groups are names already."""
    keys = [str(r["key"]) for r in rows if r["key"]]
    async with who.runtime.read_sessionmaker() as db:
        if group == "video":
            titles = await queries.video_titles(db, keys)
            return ({k: titles[k] or k for k in keys if k in titles},
                    {k for k in keys if k not in titles})
        if group == "agent":
            names = await queries.actor_names(db, [f"agent:{k}" for k in keys])
            return {k: names[f"agent:{k}"].removesuffix(" (agent)") for k in keys}, set()
    return {}, set()


@router.get("/catalog")
async def catalog(request: Request, who: ViewerDep,
                  p: Annotated[int, Query(ge=1, le=100_000)] = 1) -> Response:
    import orjson

    async with who.runtime.read_sessionmaker() as db:
        total, rows = await queries.catalog_page(db, limit=50, offset=(p - 1) * 50)
        pushes = await queries.recent_pushes(db)
        destinations = await feed_repository.destination_health(db)
        deliveries = await feed_repository.recent_deliveries(db, limit=20)
    report_path = Path(who.runtime.settings.feeds_dir) / "report.json"
    report = orjson.loads(report_path.read_bytes()) if report_path.is_file() else None
    return page(request, "dashboard/catalog.html", who, rows=rows, total=total, page_no=p,
                pages=max(1, -(-total // 50)), report=report, pushes=pushes,
                destinations=destinations, deliveries=deliveries)


@router.get("/health")
async def health(request: Request, who: ViewerDep,
                 notice: Annotated[str | None, Query(max_length=200)] = None) -> Response:
    from models.base import utc_now
    from orders.capture import open_problems

    async with who.runtime.read_sessionmaker() as db:
        state = await queries.delivery_health(db)
        dead = await outbox.dead_letters(db)
        payments = await open_problems(db, utc_now())
        etsy = await etsy_health(db)
    settings = who.runtime.settings
    return page(request, "dashboard/health.html", who, state=state, etsy=etsy, dead=dead,
                notice=notice, payments=payments,
                stripe_api_version=settings.stripe_api_version
                if settings.payments_provider == "stripe" else None,
                stripe=settings.payments_provider == "stripe",
                shopify=settings.shopify_enabled, provider=settings.payments_provider)


@router.post("/outbox/{message_id}/redeliver")
async def redeliver_dead_letter(who: ViewerDep, message_id: str,
                                csrf_token: Annotated[str, Form(max_length=100)] = ""
                                ) -> Response:
    """A dead letter gets a fresh attempt budget."""
    check_csrf(who, csrf_token)
    async with who.runtime.sessionmaker() as db, db.begin():
        queued = await outbox.redeliver(db, message_id[:64])
    if queued:
        who.runtime.wake_worker()
    from urllib.parse import quote

    notice = "Queued for delivery again." if queued else "That message is not a dead letter."
    return RedirectResponse(f"/dashboard/health?notice={quote(notice)}", status_code=303)


# ------------------------------------------------------------------ not found


async def not_found(request: Request, exc: Exception) -> Response:
    """A 404 under /dashboard is a page (with the nav when logged in), not API JSON;
    everything else keeps the API's error shape."""
    from starlette.exceptions import HTTPException

    from api.errors import http_error

    path = request.url.path
    if not (isinstance(exc, HTTPException) and exc.status_code == 404
            and (path == "/dashboard" or path.startswith("/dashboard/"))):
        return await http_error(request, exc)
    runtime: Runtime | None = getattr(request.app.state, "runtime", None)
    who = None
    if runtime is not None:
        async with runtime.read_sessionmaker() as db:
            found = await auth.current(db, request.cookies.get(auth.COOKIE))
        if found is not None:
            who = Viewer(found[0], found[1].csrf_token, runtime)
    return missing(request, who, "This page")
