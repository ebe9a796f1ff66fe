"""Shoppable links: the merchant API (create, list, read) and the public short links
``/v/{code}`` (302 redirect + click touch), ``/v/{code}/i.gif`` and ``/v/{code}/beacon``
(pixel views). Bots, link unfurlers and prefetchers get the same answer, untracked."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Path, Query, Request
from starlette.responses import Response
from starlette.routing import Route

from api.deps import MerchantCallDep
from api.exports import csv_response
from api.runtime import Runtime
from links import bots, funnel, repository, service
from links.errors import LinkNotFound
from links.schemas import (
    CHANNEL_PATTERN,
    CODE_PATTERN,
    PRODUCT_ID_PATTERN,
    VIDEO_ID_PATTERN,
    LinkIn,
    LinkTarget,
    link_json,
)
from models.base import utc_now
from models.errors import InvalidRequest
from models.statuses import TouchType

router = APIRouter(tags=["merchant: shoppable links"])
_CODE = re.compile(CODE_PATTERN)
Code = Annotated[str, Path(pattern=CODE_PATTERN)]
ERROR = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
         "description": "ACP flat error"}
# 1×1 transparent GIF
PIXEL = (b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00"
         b"\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")
NO_STORE = {"Cache-Control": "no-store, private"}


@router.post("/links", status_code=201, response_class=Response,
             responses={400: ERROR}, operation_id="createLink")
async def create_link(body: LinkIn, call: MerchantCallDep) -> Response:
    """The short link for (video, product, channel): created once, the same code after."""
    settings = call.runtime.settings

    async def handler(db: Any) -> dict[str, Any]:
        link, _ = await service.create_link(db, body, policy=settings.outbound_policy(),
                                            public_base_url=settings.public_base_url)
        call.runtime.link_targets.forget(str(link["code"]))  # this process: at once
        return link
    return await call.write(handler, status_code=201)


@router.get("/links", response_class=Response, operation_id="listLinks")
async def list_links(
    call: MerchantCallDep,
    video_id: Annotated[str | None, Query(max_length=100, pattern=VIDEO_ID_PATTERN)] = None,
    product_id: Annotated[str | None, Query(max_length=200,
                                            pattern=PRODUCT_ID_PATTERN)] = None,
    channel: Annotated[str | None, Query(pattern=CHANNEL_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=10**7)] = 0,
) -> Response:
    base = call.runtime.settings.public_base_url

    async def handler(db: Any) -> dict[str, Any]:
        links = await repository.list_links(db, video_id=video_id, product_id=product_id,
                                            channel=channel, limit=limit, offset=offset)
        return {"data": [link_json(link, base) for link in links], "limit": limit,
                "offset": offset}
    return await call.read(handler)


@router.get("/links/{code}", response_class=Response, responses={404: ERROR},
            operation_id="getLink")
async def get_link(code: Code, call: MerchantCallDep) -> Response:
    base = call.runtime.settings.public_base_url
    return await call.read(lambda db: service.get_link(db, code, base))


@router.get("/finance/funnel", response_class=Response, operation_id="videoFunnel",
            tags=["merchant: finance"])
async def video_funnel(
    call: MerchantCallDep,
    start: Annotated[date | None, Query(alias="from", description="First day (UTC), "
                                        "default 30 days before `to`")] = None,
    end: Annotated[date | None, Query(alias="to", description="Day after the last "
                                      "(UTC), default tomorrow")] = None,
    model: Annotated[Literal["last_touch", "first_touch", "linear", "position_based"],
                     Query()] = "last_touch",
    video_id: Annotated[str | None, Query(max_length=100, pattern=VIDEO_ID_PATTERN)] = None,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> Response:
    """Per video: views → clicks → checkouts created → completed → net revenue (the
    model's ledger credit), conversion rates, revenue per 1,000 views, cancellation
    reasons."""
    first, last = funnel_range(start, end)
    async with call.runtime.read_sessionmaker() as db:
        rows = await funnel.funnel(db, start=first, end=last, model=model, video_id=video_id)
    if format == "csv":
        return csv_response(f"funnel-{first}-{last}.csv", funnel.CSV_HEADER,
                            funnel.csv_rows(rows))
    return Response(orjson.dumps({
        "from": first.isoformat(), "to": last.isoformat(), "model": model,
        "rows": [funnel.row_json(r) for r in rows],
        "totals": funnel.row_json(funnel.totals(rows))}), media_type="application/json")


FUNNEL_MIN, FUNNEL_MAX = date(1970, 1, 1), date(9000, 1, 1)


def funnel_range(start: date | None, end: date | None) -> tuple[date, date]:
    last = end or utc_now().date() + timedelta(days=1)
    if not FUNNEL_MIN < last < FUNNEL_MAX:
        raise InvalidRequest("`to` is out of range.", param="$.to")
    first = start or last - timedelta(days=30)
    if first >= last or (last - first).days > 3660 or first < FUNNEL_MIN:
        raise InvalidRequest("`from` must be before `to`, at most ten years apart.",
                             param="$.from")
    return first, last


async def _load_target(runtime: Runtime, code: str) -> LinkTarget | None:
    async with runtime.read_sessionmaker() as db:
        return await repository.target(db, code)


async def _target(runtime: Runtime, code: str) -> LinkTarget:
    target = await runtime.link_targets.get(code, lambda c: _load_target(runtime, c))
    if target is None or not service.redirectable(target):
        raise LinkNotFound(code)
    return target


async def _touch(runtime: Runtime, request: Request, response: Response, target: LinkTarget,
                 kind: TouchType) -> str | None:
    """Record the touch of a person (not of a bot or prefetch) and keep their cookie."""
    if bots.is_automated(request.method, request.headers):
        return None
    visitor, new = service.visitor_cookie(request.cookies.get(service.VISITOR_COOKIE))
    touch_id = service.record_touch(runtime.touch_buffer, target, kind, visitor, utc_now())
    if new:
        response.set_cookie(service.VISITOR_COOKIE, visitor,
                            max_age=service.VISITOR_COOKIE_MAX_AGE, path="/", httponly=True,
                            samesite="lax",
                            secure=runtime.settings.public_base_url.startswith("https://"))
    return touch_id


# The public endpoints are plain Starlette routes: no dependency solving or parameter
# models on the hottest path (bench/links_redirect.py), the same errors and middleware.
def _code(request: Request) -> str:
    code = str(request.path_params["code"])
    if not _CODE.match(code):
        raise LinkNotFound(code[:20])
    return code


async def follow_link(request: Request) -> Response:
    """``GET|HEAD /v/{code}``: 302 to the destination with the video's attribution."""
    runtime: Runtime = request.app.state.runtime
    target = await _target(runtime, _code(request))
    response = Response(status_code=302, headers=NO_STORE)
    click_id = await _touch(runtime, request, response, target, TouchType.click)
    response.headers["location"] = service.destination(target, click_id)
    return response


async def pixel(request: Request) -> Response:
    """``GET /v/{code}/i.gif``: an impression where the merchant hosts the video (a view
    touch for the visitor and one more ``pixel`` view of the video today)."""
    runtime: Runtime = request.app.state.runtime
    target = await _target(runtime, _code(request))
    response = Response(PIXEL, media_type="image/gif", headers=NO_STORE)
    await _touch(runtime, request, response, target, TouchType.view)
    return response


async def beacon(request: Request) -> Response:
    """``POST /v/{code}/beacon``: the same impression from ``navigator.sendBeacon``."""
    runtime: Runtime = request.app.state.runtime
    target = await _target(runtime, _code(request))
    response = Response(status_code=204, headers=NO_STORE)
    await _touch(runtime, request, response, target, TouchType.view)
    return response


PUBLIC_ROUTES = [Route("/v/{code}", follow_link, methods=["GET", "HEAD"]),
                 Route("/v/{code}/i.gif", pixel, methods=["GET"]),
                 Route("/v/{code}/beacon", beacon, methods=["POST"])]
