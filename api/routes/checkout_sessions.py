"""ACP checkout endpoints. Thin: headers and idempotency here, the rest in
``protocols.acp.binding``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path
from starlette.responses import Response

from api.deps import AGENT_CALL_DOCS, AgentCallDep
from protocols.acp import binding as acp
from protocols.acp.schemas import (
    CancelSessionRequest,
    CheckoutSessionCompleteRequest,
    CheckoutSessionCreateRequest,
    CheckoutSessionUpdateRequest,
)

router = APIRouter(tags=["checkout"])

ERROR = {"description": "ACP flat error: {type, code, message, param}",
         "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
SESSION = {"description": "The full, authoritative checkout session",
           "content": {"application/json": {"schema": {"type": "object"}}}}
COMMON: dict[int | str, dict[str, Any]] = {400: ERROR, 401: ERROR, 404: ERROR, 409: ERROR,
                                           422: ERROR, 503: ERROR}
SessionId = Annotated[str, Path(max_length=200, description="Checkout session id")]


@router.post("/checkout_sessions", status_code=201, response_class=Response,
             responses={201: SESSION, **COMMON}, operation_id="createCheckoutSession",
             openapi_extra=AGENT_CALL_DOCS)
async def create_checkout_session(body: CheckoutSessionCreateRequest, call: AgentCallDep
                                  ) -> Response:
    checkout = call.runtime.checkout
    return await call.write(lambda db: acp.create(checkout, db, call.actor, body),
                            status_code=201, atomic=True)


@router.post("/checkout_sessions/{checkout_session_id}", response_class=Response,
             responses={200: SESSION, 405: ERROR, **COMMON},
             operation_id="updateCheckoutSession", openapi_extra=AGENT_CALL_DOCS)
async def update_checkout_session(checkout_session_id: SessionId,
                                  body: CheckoutSessionUpdateRequest, call: AgentCallDep
                                  ) -> Response:
    checkout = call.runtime.checkout
    return await call.write(
        lambda db: acp.update(checkout, db, call.actor, checkout_session_id, body), atomic=True)


@router.get("/checkout_sessions/{checkout_session_id}", response_class=Response,
            responses={200: SESSION, **COMMON}, operation_id="getCheckoutSession",
            openapi_extra=AGENT_CALL_DOCS)
async def get_checkout_session(checkout_session_id: SessionId, call: AgentCallDep) -> Response:
    checkout = call.runtime.checkout
    return await call.read(lambda db: acp.get(checkout, db, call.actor, checkout_session_id))


@router.post("/checkout_sessions/{checkout_session_id}/complete", response_class=Response,
             responses={200: SESSION, 405: ERROR, **COMMON},
             operation_id="completeCheckoutSession", openapi_extra=AGENT_CALL_DOCS)
async def complete_checkout_session(checkout_session_id: SessionId,
                                    body: CheckoutSessionCompleteRequest, call: AgentCallDep
                                    ) -> Response:
    checkout = call.runtime.checkout
    sessionmaker = call.runtime.sessionmaker
    return await call.write(lambda db: acp.complete(
        checkout, sessionmaker, db, call.actor, checkout_session_id, body))


@router.post("/checkout_sessions/{checkout_session_id}/cancel", response_class=Response,
             responses={200: SESSION, 405: ERROR, **COMMON},
             operation_id="cancelCheckoutSession", openapi_extra=AGENT_CALL_DOCS)
async def cancel_checkout_session(
    checkout_session_id: SessionId, call: AgentCallDep,
    body: Annotated[CancelSessionRequest | None, Body()] = None,
) -> Response:
    checkout = call.runtime.checkout
    return await call.write(lambda db: acp.cancel(checkout, db, call.actor,
                                                  checkout_session_id, body), atomic=True)
