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

from api.dashboard import auth, charts, queries, throttle
from api.deps import RuntimeDep
from api.exports import (
    csv_response,
    in_report_range,
    reconciliation_csv,
    revenue_csv,
    revenue_totals,
)
from api.runtime import Runtime
from attribution import repository as attribution_repo
from fulfillment import service as fulfillment_service
from models import DashboardUser
from models.base import utc_now
from models.errors import AppError, NotFound
from models.money import format_minor, parse_major
from models.urls import is_http_url
from orders import refunds, repository
from orders import service as order_service
from payments.reconciliation import reconcile
from webhooks import outbox

router = APIRouter(prefix="/dashboard", include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).resolve().parent.parent / "templates"))
templates.env.tests["http_url"] = is_http_url  # links render only when http(s)
templates.env.filters["money"] = lambda amount, currency="usd": format_minor(
    int(amount or 0), currency)
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
    return response


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
    response = RedirectResponse("/dashboard/orders", status_code=303)
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
async def home(who: ViewerDep) -> Response:
    return RedirectResponse("/dashboard/orders", status_code=303)


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
                       notice: Annotated[str | None, Query(max_length=200)] = None) -> Response:
    async with who.runtime.read_sessionmaker() as db:
        order = await repository.get_order(db, order_id[:64])
        if order is None:
            return page(request, "dashboard/missing.html", who, what=f"Order {order_id}")
        detail = await order_service.merchant_order_json(db, order)
        touches = await queries.touches_of(db, order.checkout_session_id)
        credits = await queries.credits_of(db, order.id)
    shop = who.runtime.settings.shopify_shop or ""
    domain = shop if "." in shop else f"{shop}.myshopify.com"
    return page(request, "dashboard/order.html", who, o=detail, touches=touches,
                credits=credits, notice=notice, shopify=who.runtime.settings.shopify_enabled,
                shopify_admin=f"https://{domain}/admin")


def _back(order_id: str, notice: str) -> Response:
    from urllib.parse import quote

    return RedirectResponse(f"/dashboard/orders/{order_id}?notice={quote(notice)}",
                            status_code=303)


async def _order_action(who: Viewer, order_id: str,
                        action: Callable[[AsyncSession], Awaitable[object]],
                        done: str) -> Response:
    """Run one order action in its own transaction, wake the worker for what it queued
    and report the outcome on the order page."""
    try:
        async with who.runtime.sessionmaker() as db, db.begin():
            await action(db)
    except AppError as exc:
        return _back(order_id, exc.message)
    who.runtime.wake_worker()
    return _back(order_id, done)


@router.post("/orders/{order_id}/refund")
async def refund(who: ViewerDep, order_id: str,
                 csrf_token: Annotated[str, Form(max_length=100)] = "",
                 nonce: Annotated[str, Form(max_length=100)] = "",
                 amount: Annotated[str, Form(max_length=30)] = "",
                 reason: Annotated[str, Form(max_length=200)] = "requested_by_customer",
                 ) -> Response:
    check_csrf(who, csrf_token)
    runtime = who.runtime
    async with runtime.read_sessionmaker() as db:
        order = await repository.get_order(db, order_id[:64])
    if order is None:
        return _back(order_id, "No such order.")
    try:
        minor = parse_major(amount, order.currency) if amount.strip() else None
        async with runtime.sessionmaker() as db, db.begin():
            # The form's nonce keys the refund: a double-submit refunds once.
            await refunds.refund_order(
                runtime.sessionmaker, db, runtime.provider, order_id=order.id, amount=minor,
                reason=reason or None, request_key=f"dashboard:{nonce or secrets.token_hex(8)}",
                actor=f"user:{who.user.username}")
    except ValueError as exc:
        return _back(order.id, f"Amount: {exc}")
    except AppError as exc:
        return _back(order.id, exc.message)
    return _back(order.id, "Refund recorded.")


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
    if format == "csv":
        return csv_response(
            "videos.csv",
            ["id", "title", "generator", "campaign", "creator", "products", "orders",
             "revenue_last_touch"],
            [[v.id, v.title, v.generator, v.campaign, v.creator, products or 0, orders or 0,
              gross or 0] for v, gross, orders, products in rows])
    return page(request, "dashboard/videos.html", who, rows=rows,
                currency=who.runtime.profile.currencies[0])


@router.get("/videos/{video_id}")
async def video_detail(request: Request, who: ViewerDep, video_id: str) -> Response:
    from attribution.errors import VideoNotFound
    from attribution.service import get_video

    async with who.runtime.read_sessionmaker() as db:
        try:
            video = await get_video(db, video_id[:100])
        except VideoNotFound:
            return page(request, "dashboard/missing.html", who, what=f"Video {video_id}")
        series = await queries.video_sales_by_day(db, video["id"])
    currency = who.runtime.profile.currencies[0]
    return page(request, "dashboard/video.html", who, v=video,
                chart=charts.line_chart(series, currency, title="Attributed sales by day"),
                total=sum(v for _, v in series), currency=currency)


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
    chart = charts.bar_chart([(str(r["key"] or "(unattributed)"), int(str(r["gross"] or 0)))
                              for r in rows][:15], currency, title=f"Revenue by {group}")
    totals = revenue_totals(rows)
    trend = charts.line_chart(over_time, currency, title="Attributed revenue by day")
    return page(request, "dashboard/finance.html", who, rows=rows, chart=chart, trend=trend,
                totals=totals, recon=recon, currency=currency,
                params={"group": group, "model": model, "view": view,
                        "from": since.date().isoformat(), "to": until.date().isoformat()})


@router.get("/catalog")
async def catalog(request: Request, who: ViewerDep,
                  p: Annotated[int, Query(ge=1, le=100_000)] = 1) -> Response:
    import orjson

    async with who.runtime.read_sessionmaker() as db:
        total, rows = await queries.catalog_page(db, limit=50, offset=(p - 1) * 50)
        pushes = await queries.recent_pushes(db)
    report_path = Path(who.runtime.settings.feeds_dir) / "report.json"
    report = orjson.loads(report_path.read_bytes()) if report_path.is_file() else None
    return page(request, "dashboard/catalog.html", who, rows=rows, total=total, page_no=p,
                pages=max(1, -(-total // 50)), report=report, pushes=pushes)


@router.get("/health")
async def health(request: Request, who: ViewerDep,
                 notice: Annotated[str | None, Query(max_length=200)] = None) -> Response:
    async with who.runtime.read_sessionmaker() as db:
        state = await queries.delivery_health(db)
        dead = await outbox.dead_letters(db)
    settings = who.runtime.settings
    return page(request, "dashboard/health.html", who, state=state, dead=dead, notice=notice,
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
