"""Merchant API: orders and refunds (merchant keys only)."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from starlette.responses import Response

from api.deps import MerchantCall, MerchantCallDep
from fulfillment import service as fulfillment_service
from models import DeliveryAttempt, Fulfillment, Order, OutboxMessage
from models.base import utc_now
from models.errors import InvalidRequest
from models.urls import HttpUrlStr
from orders import capture as capture_service
from orders import refunds as refund_service
from orders import repository
from orders import service as order_service
from orders.errors import OrderNotFound

if TYPE_CHECKING:
    from payments.sandbox import SandboxProvider

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
    async def handler(db: Any) -> dict[str, Any]:
        order = await repository.get_order(db, order_id)
        if order is None:
            raise OrderNotFound(order_id)
        return await order_service.merchant_order_json(db, order)
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
        return await order_service.merchant_order_json(db, order)
    return await call.write(handler, status_code=201)


class OrderCancel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=200)


@router.post("/{order_id}/cancel", response_class=Response,
             responses={400: ERROR, 404: ERROR}, operation_id="cancelOrder")
async def cancel_order(order_id: OrderId, body: OrderCancel, call: MerchantCallDep
                       ) -> Response:
    """Cancel an order: unshipped stock goes back on sale; an authorised (manual-capture)
    payment is released instead of captured. A captured payment is refunded separately."""
    async def handler(db: Any) -> dict[str, Any]:
        order = await repository.lock_order(db, order_id)
        if order is None:
            raise OrderNotFound(order_id)
        await order_service.cancel_order(db, order, actor=f"merchant:{call.merchant.id}",
                                         reason=body.reason)
        return await order_service.merchant_order_json(db, order)
    return await call.write(handler)


class CaptureCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: int | None = Field(
        default=None, le=10**12, description="Minor units, from 1 to the authorised amount; "
        "omit to capture all of it. The rest of the authorisation is released.")


@router.post("/{order_id}/capture", status_code=202, response_class=Response,
             responses={400: ERROR, 404: ERROR, 409: ERROR}, operation_id="captureOrder")
async def capture_order(order_id: OrderId, body: CaptureCreate, call: MerchantCallDep
                        ) -> Response:
    """Capture an authorised (manual-capture) payment now, all of it or less (e.g. a line
    cannot ship): the rest of the authorisation is released, and the order's ledger,
    commissions, refunds and reconciliation count only what was captured. The worker calls
    the payment provider; the order shows the capture's progress."""
    async def handler(db: Any) -> dict[str, Any]:
        order = await repository.lock_order(db, order_id)
        if order is None:
            raise OrderNotFound(order_id)
        await capture_service.merchant_capture(db, order, amount=body.amount,
                                               actor=f"merchant:{call.merchant.id}")
        return await order_service.merchant_order_json(db, order)
    return await call.write(handler, status_code=202)


class LineQuantity(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(max_length=64, description="Order line id")
    quantity: int = Field(gt=0, le=100_000)


class ShipmentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    carrier: str | None = Field(default=None, max_length=100)
    tracking_number: str | None = Field(default=None, max_length=200)
    tracking_url: HttpUrlStr | None = Field(default=None, description="http(s) only")
    line_items: list[LineQuantity] | None = Field(
        default=None, max_length=200, description="Omit to ship everything not yet shipped")


class ShipmentUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["in_transit", "out_for_delivery", "delivered", "failed", "canceled"]


@router.post("/{order_id}/fulfillments", status_code=201, response_class=Response,
             responses={400: ERROR, 404: ERROR}, operation_id="shipOrder")
async def ship_order(order_id: OrderId, body: ShipmentCreate, call: MerchantCallDep
                     ) -> Response:
    """Manual fulfillment (no Shopify): mark items shipped, with tracking."""
    async def handler(db: Any) -> dict[str, Any]:
        order = await repository.lock_order(db, order_id)
        if order is None:
            raise OrderNotFound(order_id)
        await fulfillment_service.ship_manually(
            db, order, carrier=body.carrier, tracking_number=body.tracking_number,
            tracking_url=body.tracking_url,
            line_items=[li.model_dump() for li in body.line_items] if body.line_items else None,
            actor=f"merchant:{call.merchant.id}")
        return await order_service.merchant_order_json(db, order)
    return await call.write(handler, status_code=201)


@router.post("/{order_id}/fulfillments/{fulfillment_id}", response_class=Response,
             responses={400: ERROR, 404: ERROR}, operation_id="updateShipment")
async def update_shipment(order_id: OrderId, fulfillment_id: Annotated[str, Path(max_length=64)],
                          body: ShipmentUpdate, call: MerchantCallDep) -> Response:
    async def handler(db: Any) -> dict[str, Any]:
        order = await repository.lock_order(db, order_id)
        fulfillment = await db.get(Fulfillment, fulfillment_id)
        if order is None or fulfillment is None or fulfillment.order_id != order_id:
            raise OrderNotFound(order_id)
        await fulfillment_service.record_fulfillment(
            db, order, status=body.status, actor=f"merchant:{call.merchant.id}",
            existing=fulfillment)
        return await order_service.merchant_order_json(db, order)
    return await call.write(handler)


@router.post("/{order_id}/webhooks/redeliver", status_code=202, response_class=Response,
             responses={404: ERROR}, operation_id="redeliverOrderWebhook")
async def redeliver_order_webhook(order_id: OrderId, call: MerchantCallDep) -> Response:
    """Send the agent the order's current state again (a fresh ``order_update``)."""
    async def handler(db: Any) -> dict[str, Any]:
        await order_service.resend_to_agent(db, order_id, f"merchant:{call.merchant.id}")
        return {"order_id": order_id, "queued": True}
    return await call.enqueue(handler)


@router.get("/{order_id}/webhook-deliveries", response_class=Response, responses={404: ERROR},
            operation_id="listOrderWebhookDeliveries")
async def list_deliveries(order_id: OrderId, call: MerchantCallDep) -> Response:
    async def handler(db: Any) -> dict[str, Any]:
        rows = (await db.execute(
            select(OutboxMessage, DeliveryAttempt)
            .join(DeliveryAttempt, DeliveryAttempt.message_id == OutboxMessage.id, isouter=True)
            .where(OutboxMessage.key == order_id)
            .order_by(OutboxMessage.seq, DeliveryAttempt.id))).all()
        return {"data": [{
            "message_id": m.id, "topic": m.topic, "event_type": m.event_type,
            "status": m.status, "attempts": m.attempts, "last_error": m.last_error,
            "attempt": a.attempt if a else None, "status_code": a.status_code if a else None,
            "error": a.error if a else None, "duration_ms": a.duration_ms if a else None,
            "at": a.created_at.isoformat() if a else None} for m, a in rows]}
    return await call.read(handler)


@router.post("/{order_id}/shopify/retry", status_code=202, response_class=Response,
             responses={400: ERROR, 404: ERROR}, operation_id="retryShopifyForwarding")
async def retry_shopify(order_id: OrderId, call: MerchantCallDep) -> Response:
    """After fixing what Shopify rejected (e.g. a variant mapping), forward the order again.
    The forwarder looks the order up first, so this never creates a duplicate."""
    if not call.runtime.settings.shopify_enabled:
        raise InvalidRequest("No Shopify store is connected.", code="shopify_not_configured")

    async def handler(db: Any) -> dict[str, Any]:
        await order_service.retry_forwarding(db, order_id, f"merchant:{call.merchant.id}")
        return {"order_id": order_id, "queued": True}
    return await call.enqueue(handler)


class SandboxDispute(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: int | None = Field(default=None, gt=0, le=10**12)
    reason: str = Field(default="fraudulent", max_length=100)


def _sandbox_provider(call: MerchantCall) -> SandboxProvider:
    """The sandbox provider, which the dispute simulations drive; refused with a real one."""
    from payments.sandbox import SandboxProvider

    provider = call.runtime.provider
    if not isinstance(provider, SandboxProvider):
        raise InvalidRequest("Disputes can only be simulated with the sandbox provider.",
                             code="sandbox_only")
    return provider


@router.post("/{order_id}/sandbox-dispute", status_code=201, response_class=Response,
             responses={400: ERROR, 404: ERROR}, operation_id="simulateDispute")
async def simulate_dispute(order_id: OrderId, body: SandboxDispute, call: MerchantCallDep
                           ) -> Response:
    """Sandbox only: a buyer disputes the payment (as a Stripe dispute webhook would)."""
    from orders.disputes import Funds, apply_dispute

    provider = _sandbox_provider(call)

    async def handler(db: Any) -> dict[str, Any]:
        # Read through the read engine: the request's write session must stay unused until
        # the (sandbox) provider, which writes its own ledger, has answered.
        async with call.runtime.read_sessionmaker() as read:
            found = await repository.get_order(read, order_id)
        if found is None or not found.payment_reference:
            raise OrderNotFound(order_id)
        currency = found.currency
        dispute_id, amount = await provider.open_dispute(found.payment_reference, body.amount)
        order = await repository.lock_order(db, order_id)
        assert order is not None
        await apply_dispute(db, order, dispute_id=dispute_id, amount=amount, currency=currency,
                            status="needs_response", reason=body.reason,
                            actor=f"merchant:{call.merchant.id}", funds=Funds.withdrawn,
                            evidence_due_by=utc_now() + timedelta(days=7))
        return await order_service.merchant_order_json(db, order)
    return await call.write(handler, status_code=201)


class SandboxDisputeClose(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: Literal["won", "lost"]


@router.post("/{order_id}/sandbox-dispute/{dispute_id}/close", response_class=Response,
             responses={400: ERROR, 404: ERROR}, operation_id="closeSimulatedDispute")
async def close_simulated_dispute(order_id: OrderId,
                                  dispute_id: Annotated[str, Path(max_length=200)],
                                  body: SandboxDisputeClose, call: MerchantCallDep) -> Response:
    """Sandbox only: the issuer decides a simulated dispute (as Stripe's
    ``charge.dispute.closed`` would say): ``won`` reinstates the funds, ``lost`` keeps them
    withdrawn."""
    from models import Dispute
    from orders.disputes import Funds, apply_dispute
    from payments.provider import RefundRejected

    provider = _sandbox_provider(call)

    async def handler(db: Any) -> dict[str, Any]:
        async with call.runtime.read_sessionmaker() as read:
            found = await read.get(Dispute, dispute_id)
        if found is None or found.order_id != order_id:
            raise OrderNotFound(order_id)
        try:
            closed = await provider.close_dispute(dispute_id, won=body.outcome == "won")
        except RefundRejected as exc:
            raise InvalidRequest(str(exc), code="dispute_closed") from exc
        order = await repository.lock_order(db, order_id)
        assert order is not None
        await apply_dispute(db, order, dispute_id=dispute_id, amount=closed.amount,
                            currency=order.currency, status=closed.status, reason=found.reason,
                            actor=f"merchant:{call.merchant.id}",
                            funds=Funds.reinstated if body.outcome == "won" else None)
        return await order_service.merchant_order_json(db, order)
    return await call.write(handler)
