"""Merchant API: orders and refunds (merchant keys only)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from starlette.responses import Response

from api.deps import MerchantCallDep
from models import Order
from orders import refunds as refund_service
from orders import repository
from orders import service as order_service
from orders.errors import OrderNotFound

router = APIRouter(prefix="/orders", tags=["merchant: orders"])
OrderId = Annotated[str, Path(max_length=64)]
ERROR = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
         "description": "ACP flat error"}


class RefundCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: int | None = Field(default=None, gt=0, le=10**12,
                               description="Minor units; omit to refund everything refundable")
    reason: str | None = Field(default=None, max_length=200,
                               description="duplicate | fraudulent | requested_by_customer | …")


@router.get("", response_class=Response, operation_id="listOrders")
async def list_orders(
    call: MerchantCallDep,
    status: Annotated[str | None, Query(max_length=32)] = None,
    payment_status: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=10**7)] = 0,
) -> Response:
    async def handler(db: Any) -> dict[str, Any]:
        stmt = select(Order)
        if status:
            stmt = stmt.where(Order.status == status)
        if payment_status:
            stmt = stmt.where(Order.payment_status == payment_status)
        total = await db.scalar(select(func.count()).select_from(stmt.subquery()))
        rows = await db.scalars(stmt.order_by(Order.created_at.desc(), Order.id)
                                .limit(limit).offset(offset))
        return {"data": [{
            "id": o.id, "order_number": o.order_number, "status": o.status,
            "payment_status": o.payment_status, "currency": o.currency,
            "total_amount": o.total_amount, "refunded_amount": o.refunded_amount,
            "created_at": o.created_at.isoformat()} for o in rows],
            "total": total, "limit": limit, "offset": offset}
    return await call.read(handler)


@router.get("/{order_id}", response_class=Response, responses={404: ERROR},
            operation_id="getOrder")
async def get_order(order_id: OrderId, call: MerchantCallDep) -> Response:
    base_url = call.runtime.settings.public_base_url

    async def handler(db: Any) -> dict[str, Any]:
        order = await repository.get_order(db, order_id)
        if order is None:
            raise OrderNotFound(order_id)
        return await order_service.merchant_order_json(db, order, base_url)
    return await call.read(handler)


@router.post("/{order_id}/refunds", status_code=201, response_class=Response,
             responses={400: ERROR, 401: ERROR, 404: ERROR, 503: ERROR},
             operation_id="refundOrder")
async def refund_order(order_id: OrderId, body: RefundCreate, call: MerchantCallDep
                       ) -> Response:
    runtime = call.runtime
    assert call.idempotency is not None
    request_key = call.idempotency.key

    async def handler(db: Any) -> dict[str, Any]:
        await refund_service.refund_order(
            runtime.sessionmaker, db, runtime.provider, order_id=order_id, amount=body.amount,
            reason=body.reason, request_key=request_key, actor=f"merchant:{call.merchant.id}")
        order = await repository.get_order(db, order_id)
        assert order is not None
        return await order_service.merchant_order_json(db, order,
                                                       runtime.settings.public_base_url)
    return await call.write(handler, status_code=201)
