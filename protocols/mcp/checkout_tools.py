"""The five ACP checkout tools (MCP binding, ``{meta, id, payload}``).

A thin transport: arguments are checked against the binding's bundled schemas (ACP
2026-04-17, the version the MCP binding defines), then each tool calls the ACP binding
(``protocols.acp.binding.AcpCheckout``) exactly as its REST route does (same parsing, same
transaction shape, same idempotency store under the REST path), so a session is one session
over REST and MCP and an ``Idempotency-Key`` means the same thing on both.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from jsonschema.exceptions import best_match

from idempotency.canonical import request_hash
from idempotency.service import IdempotentCall, require_key
from idempotency.service import Outcome as StoredOutcome
from models.errors import AppError, InvalidRequest
from protocols.acp.binding import AcpCheckout
from protocols.acp.versions import AcpVersion, negotiate
from protocols.mcp import errors, openrpc
from protocols.mcp.caller import Caller

Json = dict[str, Any]
Run = Callable[[IdempotentCall], Awaitable[StoredOutcome]]
MAX_ID_LENGTH = 200


@dataclass(slots=True)
class Outcome:
    """A tool's ACP object, plus facts for the result's ``_meta``."""

    body: Json
    meta: dict[str, Any] = field(default_factory=dict)


_ADDRESS = ('{"name": "Ada Buyer", "line_one": "1 Market St", "city": "San Francisco", '
            '"state": "CA", "country": "US", "postal_code": "94105"}')
DESCRIPTIONS = {
    "create_checkout_session": (
        "Start a checkout (ACP). Pass item ids from search_products as payload.line_items; "
        "repeat an id to buy more than one. The result is the authoritative cart: prices, "
        "taxes, fulfillment_options, totals and messages (what is missing). Set "
        "meta.api_version to \"2026-04-17\" and a fresh meta.idempotency_key per new request. "
        "To credit a shoppable video, set payload.affiliate_attribution to the video's "
        "affiliate_attribution from list_shoppable_videos or search_products.\n"
        'Example: {"meta": {"api_version": "2026-04-17", "idempotency_key": "2f1c…"}, '
        '"payload": {"currency": "usd", "capabilities": {}, "line_items": [{"id": '
        '"denim-jacket-m"}], "fulfillment_details": {"address": ' + _ADDRESS + "}}}"),
    "get_checkout_session": (
        "Read the current state of a checkout session you created (status, totals, messages, "
        "and the order once completed).\n"
        'Example: {"meta": {"api_version": "2026-04-17"}, "id": "cs_…"}'),
    "update_checkout_session": (
        "Change a checkout session: line_items (replaces the cart), fulfillment_details "
        "(address), selected_fulfillment_options (ids from fulfillment_options), buyer. "
        "Omitted fields stay as they are. Returns the full updated session.\n"
        'Example: {"meta": {"api_version": "2026-04-17", "idempotency_key": "7a9e…"}, '
        '"id": "cs_…", "payload": {"selected_fulfillment_options": [{"type": "shipping", '
        '"option_id": "ship_express", "item_ids": ["denim-jacket-m"]}]}}'),
    "complete_checkout_session": (
        "Pay and place the order once status is ready_for_payment. payment_data.handler_id "
        "is a handler id from capabilities.payment.handlers; the instrument carries the "
        "delegated payment token. Returns the session with its order. A payment problem "
        "comes back as a session message, not an error. Retry with the same "
        "meta.idempotency_key: it never charges twice.\n"
        'Example: {"meta": {"api_version": "2026-04-17", "idempotency_key": "c41d…"}, '
        '"id": "cs_…", "payload": {"buyer": {"email": "ada@example.com"}, "payment_data": '
        '{"handler_id": "card_tokenized", "instrument": {"type": "card", "credential": '
        '{"type": "spt", "token": "spt_…"}}}}}'),
    "cancel_checkout_session": (
        "Abandon a checkout session that is not completed. payload is optional; "
        "payload.intent_trace says why (reason_code, trace_summary).\n"
        'Example: {"meta": {"api_version": "2026-04-17", "idempotency_key": "e02b…"}, '
        '"id": "cs_…", "payload": {"intent_trace": {"reason_code": "price_sensitivity"}}}'),
}
TOOLS = tuple(DESCRIPTIONS)
TITLES = {"create_checkout_session": "Create checkout session",
          "get_checkout_session": "Get checkout session",
          "update_checkout_session": "Update checkout session",
          "complete_checkout_session": "Complete checkout session (pay)",
          "cancel_checkout_session": "Cancel checkout session"}


def _session_id(arguments: Json) -> str:
    value = str(arguments["id"])
    if not value or len(value) > MAX_ID_LENGTH:
        raise errors.acp_error({"type": "invalid_request", "code": "invalid_value",
                                "message": f"id must be 1-{MAX_ID_LENGTH} characters.",
                                "param": "$.id"}, rebase=False)
    return value


async def call(caller: Caller, name: str, arguments: Json) -> Outcome:
    """Run one checkout tool. Raises ``MCPError`` (-32000, ACP ``Error`` in ``data``)."""
    args = dict(arguments)
    if args.get("payload") is None and name in ("cancel_checkout_session",
                                                "get_checkout_session"):
        args.pop("payload", None)  # optional payload: absent and null are the same
    problem = best_match(openrpc.validator(name).iter_errors(args))
    if problem is not None:
        raise errors.from_schema_error(problem)
    meta: Json = args["meta"]
    payload = args.get("payload")
    body = orjson.dumps(payload) if payload is not None else b""
    try:
        acp = AcpCheckout(caller.checkout, _version(meta.get("api_version")))
        caller.check_signature(meta.get("signature"), meta.get("timestamp"), body)
        if name == "get_checkout_session":
            session_id = _session_id(args)
            async with caller.read_sessionmaker() as db:
                return Outcome(await acp.get(db, caller.actor, session_id))
        key = require_key(meta.get("idempotency_key"))
        path, run = _write_operation(caller, acp, name, args, body)
        guard = IdempotentCall(
            sessionmaker=caller.sessionmaker, principal=caller.agent_id, path=path, key=key,
            body_hash=request_hash(body), retention=caller.idempotency_retention,
            lock=caller.idempotency_lock)
        stored = await run(guard)
    except AppError as exc:
        raise errors.from_app_error(exc) from None
    result: Json = orjson.loads(stored.body)
    if stored.status >= 400:  # a stored 4xx outcome, fresh or replayed
        raise errors.acp_error(result)
    outcome = Outcome(result, {"idempotency_key": key})
    if stored.replayed:
        outcome.meta["idempotent_replayed"] = True
    return outcome


def _version(value: Any) -> AcpVersion:
    """The binding's tools speak ACP 2026-04-17, the version of their schemas (other
    versions, older shapes included, are served over REST)."""
    if value != openrpc.VERSION:
        raise InvalidRequest(
            f"meta.api_version must be {openrpc.VERSION!r} on the MCP tools.",
            code="missing_api_version" if not value else "unsupported_api_version",
            param="API-Version", extra={"supported_versions": [openrpc.VERSION]})
    return negotiate(value)


def _write_operation(caller: Caller, acp: AcpCheckout, name: str, args: Json, body: bytes
                     ) -> tuple[str, Run]:
    """(REST path = idempotency scope, how the guard runs it): as the routes do. Create,
    update and cancel keep the key in their one transaction (``atomic``); complete claims
    it in its first transaction, with the recovery point (``run_claiming``)."""
    actor = caller.actor
    if name == "create_checkout_session":
        create = acp.parse_create(body)
        return "/checkout_sessions", lambda guard: guard.run(
            lambda db: acp.create(db, actor, create), status_code=201, atomic=True)
    session_id = _session_id(args)
    if name == "update_checkout_session":
        update = acp.parse_update(body)
        return f"/checkout_sessions/{session_id}", lambda guard: guard.run(
            lambda db: acp.update(db, actor, session_id, update), atomic=True)
    if name == "complete_checkout_session":
        complete = acp.parse_complete(body)
        sessionmaker = caller.sessionmaker
        return f"/checkout_sessions/{session_id}/complete", lambda guard: guard.run_claiming(
            lambda db, claim: acp.complete(sessionmaker, db, actor, session_id, complete,
                                           claim=claim))
    if name == "cancel_checkout_session":
        cancel = acp.parse_cancel(body)
        return f"/checkout_sessions/{session_id}/cancel", lambda guard: guard.run(
            lambda db: acp.cancel(db, actor, session_id, cancel), atomic=True)
    raise InvalidRequest(f"Unknown tool {name!r}.", code="unknown_tool")
