"""ACP checkout endpoints, every version on the same paths (``API-Version`` picks).

Thin: ``agent_call`` authenticates, negotiates the version and guards idempotency; the
body is parsed, run and rendered by ``protocols.acp.binding``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from starlette.requests import Request
from starlette.responses import Response

from api.deps import AGENT_CALL_DOCS, AgentCallDep, agent_call

router = APIRouter(tags=["checkout"])

ERROR = {"description": "ACP flat error: {type, code, message, param}",
         "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
SESSION = {"description": "The full, authoritative checkout session (in the requested "
                          "API-Version's shape)",
           "content": {"application/json": {"schema": {"type": "object"}}}}
COMMON: dict[int | str, dict[str, Any]] = {400: ERROR, 401: ERROR, 404: ERROR, 409: ERROR,
                                           422: ERROR, 503: ERROR}
SessionId = Annotated[str, Path(max_length=200, description="Checkout session id")]


def _docs(model: str | None, *, required: bool = True) -> dict[str, Any]:
    """Document the newest version's request body (bodies are parsed per version)."""
    if model is None:
        return AGENT_CALL_DOCS
    schema = {"$ref": f"#/components/schemas/{model}"}
    return {**AGENT_CALL_DOCS, "requestBody": {
        "required": required, "content": {"application/json": {"schema": schema}}}}


@router.post("/checkout_sessions", status_code=201, response_class=Response,
             responses={201: SESSION, **COMMON}, operation_id="createCheckoutSession",
             openapi_extra=_docs("CheckoutSessionCreateRequest"))
async def create_checkout_session(request: Request) -> Response:
    # The same checks as ``AgentCallDep``, called directly: create has no parameter for
    # FastAPI to validate, so its dependency machinery bought nothing here but ~5% of a
    # create. (The routes below keep the dependency, which runs authentication before
    # FastAPI validates their path parameter.)
    call = await agent_call(request)
    acp = call.acp
    req = acp.parse_create(call.body)
    return await call.write(lambda db: acp.create(db, call.actor, req),
                            status_code=201, atomic=True)


@router.post("/checkout_sessions/{checkout_session_id}", response_class=Response,
             responses={200: SESSION, 405: ERROR, **COMMON},
             operation_id="updateCheckoutSession",
             openapi_extra=_docs("CheckoutSessionUpdateRequest"))
async def update_checkout_session(checkout_session_id: SessionId, call: AgentCallDep
                                  ) -> Response:
    acp = call.acp
    req = acp.parse_update(call.body)
    return await call.write(lambda db: acp.update(db, call.actor, checkout_session_id, req),
                            atomic=True)


@router.get("/checkout_sessions/{checkout_session_id}", response_class=Response,
            responses={200: SESSION, **COMMON}, operation_id="getCheckoutSession",
            openapi_extra=_docs(None))
async def get_checkout_session(checkout_session_id: SessionId, call: AgentCallDep) -> Response:
    acp = call.acp
    return await call.read(lambda db: acp.get(db, call.actor, checkout_session_id))


@router.post("/checkout_sessions/{checkout_session_id}/complete", response_class=Response,
             responses={200: SESSION, 405: ERROR, **COMMON},
             operation_id="completeCheckoutSession",
             openapi_extra=_docs("CheckoutSessionCompleteRequest"))
async def complete_checkout_session(checkout_session_id: SessionId, call: AgentCallDep
                                    ) -> Response:
    acp = call.acp
    req = acp.parse_complete(call.body)
    sessionmaker = call.runtime.sessionmaker
    # The key is claimed in complete's first transaction (with the recovery point).
    return await call.write_claiming(lambda db, claim: acp.complete(
        sessionmaker, db, call.actor, checkout_session_id, req, claim=claim))


@router.post("/checkout_sessions/{checkout_session_id}/cancel", response_class=Response,
             responses={200: SESSION, 405: ERROR, **COMMON},
             operation_id="cancelCheckoutSession",
             openapi_extra=_docs("CancelSessionRequest", required=False))
async def cancel_checkout_session(checkout_session_id: SessionId, call: AgentCallDep
                                  ) -> Response:
    acp = call.acp
    req = acp.parse_cancel(call.body)
    return await call.write(lambda db: acp.cancel(db, call.actor, checkout_session_id, req),
                            atomic=True)
