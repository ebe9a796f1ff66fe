"""The buyer's order page (the ACP ``permalink_url``): visible with the order's email."""

from __future__ import annotations

import hmac
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi import Path as PathParam
from fastapi.templating import Jinja2Templates
from starlette.requests import Request
from starlette.responses import Response

from api.deps import RuntimeDep
from models.money import format_minor
from models.urls import is_http_url
from orders import repository
from orders.documents import buyer_contact
from orders.errors import OrderNotFound
from orders.service import acp_snapshot

router = APIRouter(tags=["buyer"])
templates = Jinja2Templates(directory=str(Path(__file__).resolve().parent.parent / "templates"))
templates.env.tests["http_url"] = is_http_url  # links render only when http(s)


@router.get("/order-status/{order_id}", response_class=Response, include_in_schema=False)
async def order_status(request: Request, runtime: RuntimeDep,
                       order_id: Annotated[str, PathParam(max_length=64)],
                       email: Annotated[str | None, Query(max_length=320)] = None) -> Response:
    async with runtime.read_sessionmaker() as db:
        order = await repository.get_order(db, order_id)
        if order is None:
            raise OrderNotFound(order_id)
        expected = buyer_contact(order.buyer, order.fulfillment_details).email
        verified = bool(email and expected and hmac.compare_digest(
            email.strip().lower().encode(), expected.strip().lower().encode()))
        context: dict[str, object] = {
            "order_number": order.order_number, "store": runtime.profile.name,
            "verified": verified, "wrong_email": bool(email) and not verified,
            "support_email": runtime.profile.support_email}
        if verified:
            snapshot = await acp_snapshot(db, order)
            context.update({
                "status": snapshot["status"].replace("_", " "),
                "lines": [{"title": li["title"], "quantity": li["quantity"]["ordered"],
                           "total": format_minor(li["subtotal"], order.currency)}
                          for li in snapshot["line_items"]],
                "total": format_minor(order.total_amount, order.currency),
                "refunded": format_minor(order.refunded_amount, order.currency)
                if order.refunded_amount else None,
                "fulfillments": snapshot["fulfillments"]})
    response = templates.TemplateResponse(request, "order_status.html", context)
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
