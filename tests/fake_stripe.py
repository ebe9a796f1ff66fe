"""A stateful fake of Stripe's v1 API at the HTTP layer (served through pytest-httpx),
built from Stripe's published object shapes (stripe/openapi ``fixtures3.json``, the
stripe-python 16.1 resource definitions and the API changelog), not from our code.

What it honours, because our integration relies on it:

- **Form-encoded parameters** with Stripe's bracket syntax (``a[b][0]=x``), parsed to
  nested values; unknown shapes are not guessed.
- **Stripe-Version**: ``payment_method_types`` is rejected with 400
  ``payment_method_types_no_longer_supported`` on 2026-08-26.preview, 2026-09-30.endive and
  later (changelog), and is exclusive with ``automatic_payment_methods``; a Charge has no
  ``refunds`` list on 2022-11-15 and later unless expanded.
- **Idempotency** (docs "Idempotent requests"): the first response for a key (including
  402 and 500 once execution began) is stored and replayed; the same key with different
  parameters or on another endpoint is a 400 ``idempotency_error``; requests that fail
  validation store nothing.
- **Objects**: PaymentIntent with ``latest_charge`` as an id, ``amount_capturable``,
  ``amount_received``, ``capture_method``; Charge with ``amount_captured``,
  ``amount_refunded``, ``captured``, ``refunded``, ``balance_transaction``; Refund with
  ``status`` pending / requires_action / succeeded / failed / canceled and
  ``failure_reason``; Dispute with Stripe's statuses including the ``warning_*`` inquiries
  and ``prevented``; BalanceTransaction with fees.
- **Events**: Stripe event envelopes (``object: event``, ``api_version``, ``data.object``,
  ``livemode``, ``pending_webhooks``, ``request``) rendered in the webhook endpoint's API
  version, signed ``t=…,v1=HMAC-SHA256(secret, t.payload)``.

Shared payment tokens choose the outcome: ``spt_decline…`` (402 card_declined /
insufficient_funds), ``spt_bad…`` (400 about the token parameter), ``spt_3ds…``
(requires_action), ``spt_refundfail…`` (refunds succeed, then fail later),
``spt_refundpending…`` (refunds start pending); anything else succeeds.

It is a plain class: other fakes (e.g. Connect transfers) subclass it and add routes by
overriding ``routes()``.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

API = "https://api.stripe.com"
WEBHOOK_SECRET = "whsec_test_secret"
PINNED_VERSION = "2026-10-28.endive"
SPT_PARAM = "payment_method_data[shared_payment_granted_token]"
Json = dict[str, Any]
Route = tuple[str, "re.Pattern[str]", Callable[..., tuple[int, Json]]]


def parse_form(body: bytes) -> dict[str, str]:
    """The flat form, as sent (``metadata[order_id]`` → value)."""
    return {k: v[0] for k, v in urllib.parse.parse_qs(body.decode(), keep_blank_values=True
                                                       ).items()}


def nest(flat: list[tuple[str, str]]) -> Json:
    """Stripe's bracket syntax to nested dicts/lists: ``a[b][0]=x`` → ``{"a": {"b": ["x"]}}``."""
    root: Json = {}
    for key, value in flat:
        parts = [key.split("[", 1)[0], *re.findall(r"\[([^\]]*)\]", key)]
        node: Any = root
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            nxt_is_list = not last and (parts[index + 1].isdigit() or parts[index + 1] == "")
            if isinstance(node, list):
                if part == "" or int(part) >= len(node):
                    node.append(value if last else ([] if nxt_is_list else {}))
                    node = node[-1]
                else:
                    node = node[int(part)]
                continue
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, [] if nxt_is_list else {})
    return root


def sign(payload: bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    ts = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{ts}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={ts},v1={mac}"


def version_date(version: str) -> str:
    return version.split(".", 1)[0]


def without_payment_method_types(version: str) -> bool:
    """Changelog: removed on dahlia 2026-08-26.preview and endive 2026-09-30 onwards."""
    return version_date(version) >= "2026-08-26"


def charge_embeds_refunds(version: str) -> bool:
    """Changelog 2022-11-15: the Charge no longer includes ``refunds`` by default."""
    return version_date(version) < "2022-11-15"


def payment_token(params: Json) -> str:
    """The shared payment token, or a Stripe card token (``payment_method_data[type]=card``,
    ``[card][token]=tok_…``: a wallet's gateway tokenization, e.g. Google Pay)."""
    data = params.get("payment_method_data") or {}
    if data.get("shared_payment_granted_token"):
        return str(data["shared_payment_granted_token"])
    if data.get("type") == "card":
        return str((data.get("card") or {}).get("token") or "")
    return ""


class StripeFailure(Exception):
    def __init__(self, status: int, error: Json) -> None:
        super().__init__(error.get("message"))
        self.status = status
        self.error = error


def invalid(message: str, *, code: str | None = None, param: str | None = None,
            status: int = 400) -> StripeFailure:
    error: Json = {"type": "invalid_request_error", "message": message}
    if code:
        error["code"] = code
        error["doc_url"] = f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}"
    if param:
        error["param"] = param
    return StripeFailure(status, error)


class FakeStripe:
    def __init__(self, *, webhook_api_version: str = PINNED_VERSION,
                 fee_bps: int = 290, fee_fixed: int = 30) -> None:
        self.webhook_api_version = webhook_api_version
        self.fee_bps, self.fee_fixed = fee_bps, fee_fixed
        self.payment_intents: dict[str, Json] = {}
        self.charges: dict[str, Json] = {}
        self.refunds: dict[str, Json] = {}
        self.disputes: dict[str, Json] = {}
        self.balance_transactions: dict[str, Json] = {}
        self.tokens: dict[str, str] = {}  # payment intent → the SPT that paid it
        # Idempotency-Key → (method, path, params, status, body)
        self.stored: dict[str, tuple[str, str, Json, int, Json]] = {}
        self.requests: list[httpx.Request] = []
        # Token → how many upcoming calls fail before Stripe answers (lost answers / 500s).
        self.timeouts: dict[str, int] = {}
        self.server_errors: dict[str, int] = {}
        # Path → how many upcoming answers are lost after Stripe did the work.
        self.lost_answers: dict[str, int] = {}
        # Awaited before each request is handled (tests look at our database here).
        self.on_request: Callable[[httpx.Request], Awaitable[None]] | None = None
        self.ids = itertools.count(1)

    # ------------------------------------------------------------ transport

    def routes(self) -> list[Route]:
        """(method, path pattern, handler(version, params, *groups)); extend in subclasses."""
        return [
            ("POST", re.compile(r"/v1/payment_intents"), self.create_payment_intent),
            ("GET", re.compile(r"/v1/payment_intents/search"), self.search_payment_intents),
            ("POST", re.compile(r"/v1/payment_intents/(pi_\w+)/confirm"), self.confirm),
            ("POST", re.compile(r"/v1/payment_intents/(pi_\w+)/capture"), self.capture),
            ("POST", re.compile(r"/v1/payment_intents/(pi_\w+)/cancel"), self.cancel),
            ("GET", re.compile(r"/v1/payment_intents/(pi_\w+)"), self.get_payment_intent),
            ("GET", re.compile(r"/v1/charges/(ch_\w+)"), self.get_charge),
            ("POST", re.compile(r"/v1/refunds"), self.create_refund),
            ("GET", re.compile(r"/v1/refunds"), self.list_refunds),
            ("GET", re.compile(r"/v1/refunds/(re_\w+)"), self.get_refund),
            ("GET", re.compile(r"/v1/balance_transactions/(txn_\w+)"), self.get_balance_txn),
        ]

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.on_request is not None:
            await self.on_request(request)
        version = request.headers.get("Stripe-Version", PINNED_VERSION)
        pairs = urllib.parse.parse_qsl(
            request.content.decode() if request.method == "POST" else request.url.query.decode(),
            keep_blank_values=True)
        params = nest(pairs)
        token = payment_token(params)
        if not token and request.url.path.startswith("/v1/payment_intents/pi_"):
            token = self.tokens.get(request.url.path.split("/")[3], "")
        if self.server_errors.get(token, 0) > 0:
            self.server_errors[token] -= 1
            return self._response(500, {"error": {"type": "api_error",
                                                  "message": "An unknown error occurred"}})
        key = request.headers.get("Idempotency-Key") if request.method == "POST" else None
        path = request.url.path
        if key and key in self.stored:
            method, first_path, first_params, status, body = self.stored[key]
            if (method, first_path) != (request.method, path):
                status, body = 400, {"error": {
                    "type": "idempotency_error", "message":
                    "Keys for idempotent requests can only be used for the same endpoint "
                    "they were first used for."}}
            elif first_params != params:
                status, body = 400, {"error": {
                    "type": "idempotency_error", "message":
                    "Keys for idempotent requests can only be used with the same parameters "
                    "they were first used with."}}
            response = self._response(status, body, replayed=status < 400 or
                                      body["error"].get("type") != "idempotency_error")
        else:
            status, body, executed = self._dispatch(request.method, path, version, params)
            if key and executed:
                self.stored[key] = (request.method, path, params, status, body)
            response = self._response(status, body)
        if self.timeouts.get(token, 0) > 0:  # Stripe did the work; the answer is lost
            self.timeouts[token] -= 1
            raise httpx.ReadTimeout("simulated timeout", request=request)
        if self.lost_answers.get(path, 0) > 0:
            self.lost_answers[path] -= 1
            raise httpx.ReadTimeout("simulated timeout", request=request)
        return response

    def _response(self, status: int, body: Json, replayed: bool = False) -> httpx.Response:
        headers = {"Request-Id": f"req_{next(self.ids)}", "Stripe-Version": PINNED_VERSION}
        if replayed:
            headers["Idempotent-Replayed"] = "true"
        return httpx.Response(status, json=body, headers=headers)

    def _dispatch(self, method: str, path: str, version: str, params: Json
                  ) -> tuple[int, Json, bool]:
        for route_method, pattern, handler in self.routes():
            match = pattern.fullmatch(path)
            if match and route_method == method:
                try:
                    status, body = handler(version, params, *match.groups())
                except StripeFailure as failure:
                    # Validation failures are not stored; declines (402) are.
                    return failure.status, {"error": failure.error}, failure.status == 402
                return status, body, True
        return 404, {"error": {"type": "invalid_request_error",
                               "message": f"Unrecognized request URL ({method}: {path})."}}, False

    # ------------------------------------------------------------ helpers

    def _id(self, prefix: str) -> str:
        return f"{prefix}_{next(self.ids)}"

    def fee(self, amount: int) -> int:
        return amount * self.fee_bps // 10_000 + self.fee_fixed

    def _metadata(self, params: Json) -> dict[str, str]:
        metadata = params.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise invalid("Invalid metadata.", param="metadata")
        return {str(k): str(v) for k, v in metadata.items()}

    def _int(self, params: Json, name: str, *, required: bool = True) -> int | None:
        raw = params.get(name)
        if raw is None:
            if required:
                raise invalid(f"Missing required param: {name}.", code="parameter_missing",
                              param=name)
            return None
        if not str(raw).isdigit():
            raise invalid(f"Invalid integer: {raw}", code="parameter_invalid_integer",
                          param=name)
        return int(raw)

    def render_charge(self, charge: Json, version: str, expand: list[str] | None = None
                      ) -> Json:
        out = dict(charge)
        if charge_embeds_refunds(version) or "refunds" in (expand or []):
            data = [self.refunds[r] for r in charge["_refunds"]]
            out["refunds"] = {"object": "list", "data": data, "has_more": False,
                              "url": f"/v1/charges/{charge['id']}/refunds"}
        out.pop("_refunds")
        return out

    # ------------------------------------------------------------ payment intents

    def create_payment_intent(self, version: str, params: Json) -> tuple[int, Json]:
        if "payment_method_types" in params:
            if without_payment_method_types(version):
                raise invalid("The `payment_method_types` parameter is no longer supported on "
                              "this API version. Use dynamic payment methods.",
                              code="payment_method_types_no_longer_supported",
                              param="payment_method_types")
            if "automatic_payment_methods" in params:
                raise invalid("You may only specify one of these parameters: "
                              "automatic_payment_methods, payment_method_types.",
                              code="parameters_exclusive", param="payment_method_types")
        amount = self._int(params, "amount")
        assert amount is not None
        currency = str(params.get("currency") or "")
        if not re.fullmatch(r"[a-z]{3}", currency):
            raise invalid("Invalid currency.", param="currency")
        capture_method = str(params.get("capture_method") or "automatic_async")
        if capture_method not in ("automatic", "automatic_async", "manual"):
            raise invalid("Invalid capture_method.", param="capture_method")
        token = payment_token(params)
        if not token:
            raise invalid("You must provide a payment method.", code="parameter_missing",
                          param=SPT_PARAM)
        if token.startswith("spt_bad"):
            raise invalid("The shared payment granted token has expired.",
                          code="shared_payment_granted_token_expired", param=SPT_PARAM)
        pi_id = self._id("pi")
        self.tokens[pi_id] = token
        pi: Json = {
            "id": pi_id, "object": "payment_intent", "amount": amount, "amount_capturable": 0,
            "amount_received": 0, "automatic_payment_methods": params.get(
                "automatic_payment_methods") and {"enabled": True, "allow_redirects": "never"},
            "canceled_at": None, "cancellation_reason": None,
            "capture_method": capture_method, "client_secret": f"{pi_id}_secret_x",
            "confirmation_method": "automatic", "created": int(time.time()),
            "currency": currency, "customer": None, "description": None,
            "last_payment_error": None, "latest_charge": None, "livemode": False,
            "metadata": self._metadata(params), "next_action": None,
            "payment_method": f"pm_{next(self.ids)}", "payment_method_types": ["card"],
            "status": "requires_confirmation",
        }
        self.payment_intents[pi_id] = pi
        if str(params.get("confirm")) != "true":
            return 200, pi
        if token.startswith("spt_decline") or token == "tok_chargeDeclined":
            pi["status"] = "requires_payment_method"
            pi["last_payment_error"] = {"type": "card_error", "code": "card_declined",
                                        "decline_code": "insufficient_funds",
                                        "message": "Your card has insufficient funds."}
            raise StripeFailure(402, {"type": "card_error", "code": "card_declined",
                                      "decline_code": "insufficient_funds",
                                      "message": "Your card has insufficient funds.",
                                      "payment_intent": dict(pi)})
        if token.startswith("spt_3ds"):
            pi["status"] = "requires_action"
            pi["next_action"] = {"type": "use_stripe_sdk", "use_stripe_sdk": {}}
            return 200, pi
        self._authorize(pi)
        return 200, pi

    def _authorize(self, pi: Json) -> None:
        charge_id = self._id("ch")
        manual = pi["capture_method"] == "manual"
        self.charges[charge_id] = {
            "id": charge_id, "object": "charge", "amount": pi["amount"],
            "amount_captured": 0 if manual else pi["amount"], "amount_refunded": 0,
            "balance_transaction": None, "captured": not manual, "created": int(time.time()),
            "currency": pi["currency"], "disputed": False, "livemode": False,
            "metadata": pi["metadata"], "paid": True, "payment_intent": pi["id"],
            "refunded": False, "status": "succeeded", "_refunds": []}
        pi["latest_charge"] = charge_id
        pi["next_action"] = None
        if manual:
            pi["status"] = "requires_capture"
            pi["amount_capturable"] = pi["amount"]
        else:
            pi["status"] = "succeeded"
            pi["amount_received"] = pi["amount"]
            self._charge_txn(self.charges[charge_id], pi["amount"])

    def _charge_txn(self, charge: Json, amount: int) -> None:
        txn_id = self._id("txn")
        fee = self.fee(amount)
        self.balance_transactions[txn_id] = {
            "id": txn_id, "object": "balance_transaction", "amount": amount,
            "available_on": int(time.time()) + 2 * 86400, "created": int(time.time()),
            "currency": charge["currency"], "description": None, "exchange_rate": None,
            "fee": fee, "fee_details": [{"amount": fee, "currency": charge["currency"],
                                         "description": "Stripe processing fees",
                                         "type": "stripe_fee"}],
            "net": amount - fee, "reporting_category": "charge", "source": charge["id"],
            "status": "pending", "type": "payment"}
        charge["balance_transaction"] = txn_id

    def _pi(self, pi_id: str) -> Json:
        pi = self.payment_intents.get(pi_id)
        if pi is None:
            raise invalid(f"No such payment_intent: '{pi_id}'", code="resource_missing",
                          param="intent", status=404)
        return pi

    def _unexpected_state(self, pi: Json, action: str) -> StripeFailure:
        failure = invalid(f"You cannot {action} this PaymentIntent because it has a status of "
                          f"{pi['status']}.", code="payment_intent_unexpected_state")
        failure.error["payment_intent"] = dict(pi)
        return failure

    def get_payment_intent(self, version: str, params: Json, pi_id: str) -> tuple[int, Json]:
        return 200, self._pi(pi_id)

    def search_payment_intents(self, version: str, params: Json) -> tuple[int, Json]:
        match = re.fullmatch(r"metadata\['(\w+)'\]:'([^']*)'", str(params.get("query", "")))
        if match is None:
            raise invalid("Unsupported query.", param="query")
        data = [pi for pi in self.payment_intents.values()
                if pi["metadata"].get(match.group(1)) == match.group(2)]
        return 200, {"object": "search_result", "data": data, "has_more": False,
                     "next_page": None, "url": "/v1/payment_intents/search"}

    def confirm(self, version: str, params: Json, pi_id: str) -> tuple[int, Json]:
        pi = self._pi(pi_id)
        if "payment_method_types" in params and without_payment_method_types(version):
            raise invalid("The `payment_method_types` parameter is no longer supported.",
                          code="payment_method_types_no_longer_supported",
                          param="payment_method_types")
        if pi["status"] not in ("requires_action", "requires_payment_method",
                                "requires_confirmation"):
            raise self._unexpected_state(pi, "confirm")
        three_ds = (((params.get("payment_method_options") or {}).get("card") or {})
                    .get("three_d_secure") or {})
        if three_ds.get("cryptogram") and three_ds.get("electronic_commerce_indicator") in (
                "01", "02", "05", "06"):
            self._authorize(pi)
        else:
            pi["status"] = "requires_payment_method"
            pi["last_payment_error"] = {
                "type": "invalid_request_error", "code": "payment_intent_authentication_failure",
                "message": "The provided PaymentMethod has failed authentication."}
        return 200, pi

    def capture(self, version: str, params: Json, pi_id: str) -> tuple[int, Json]:
        pi = self._pi(pi_id)
        if pi["status"] != "requires_capture":
            raise self._unexpected_state(pi, "capture")
        amount = self._int(params, "amount_to_capture", required=False)
        if amount is None:
            amount = pi["amount_capturable"]
        if amount > pi["amount_capturable"] or amount <= 0:
            raise invalid("amount_to_capture must be at most the capturable amount.",
                          param="amount_to_capture")
        charge = self.charges[pi["latest_charge"]]
        charge["captured"] = True
        charge["amount_captured"] = amount
        pi["amount_received"] = amount
        pi["amount_capturable"] = 0
        pi["status"] = "succeeded"
        self._charge_txn(charge, amount)
        return 200, pi

    def cancel(self, version: str, params: Json, pi_id: str) -> tuple[int, Json]:
        pi = self._pi(pi_id)
        if pi["status"] not in ("requires_payment_method", "requires_capture",
                                "requires_confirmation", "requires_action", "processing"):
            raise self._unexpected_state(pi, "cancel")
        pi["status"] = "canceled"
        pi["amount_capturable"] = 0
        pi["canceled_at"] = int(time.time())
        pi["cancellation_reason"] = params.get("cancellation_reason")
        return 200, pi

    def get_charge(self, version: str, params: Json, charge_id: str) -> tuple[int, Json]:
        charge = self.charges.get(charge_id)
        if charge is None:
            raise invalid(f"No such charge: '{charge_id}'", code="resource_missing",
                          param="id", status=404)
        return 200, self.render_charge(charge, version, params.get("expand"))

    # ------------------------------------------------------------ refunds

    def create_refund(self, version: str, params: Json) -> tuple[int, Json]:
        if params.get("payment_intent"):
            pi = self._pi(str(params["payment_intent"]))
            if pi["status"] != "succeeded" or not pi["latest_charge"]:
                raise invalid("This PaymentIntent does not have a successful charge to "
                              "refund.", code="charge_not_refundable", param="payment_intent")
            charge = self.charges[pi["latest_charge"]]
        elif params.get("charge"):
            charge = self.charges.get(str(params["charge"])) or {}
            if not charge:
                raise invalid("No such charge.", code="resource_missing", param="charge",
                              status=404)
        else:
            raise invalid("One of charge or payment_intent is required.",
                          code="parameter_missing", param="charge")
        reason = params.get("reason")
        if reason is not None and reason not in ("duplicate", "fraudulent",
                                                 "requested_by_customer"):
            raise invalid("Invalid reason.", param="reason")
        remaining = charge["amount_captured"] - charge["amount_refunded"]
        amount = self._int(params, "amount", required=False)
        amount = remaining if amount is None else amount
        if amount > remaining:
            raise invalid(f"Refund amount ({amount}) is greater than unrefunded amount on "
                          f"charge ({remaining})", code="amount_too_large", param="amount")
        token = self.tokens.get(charge["payment_intent"], "")
        refund_id = self._id("re")
        refund = {
            "id": refund_id, "object": "refund", "amount": amount,
            "balance_transaction": None, "charge": charge["id"], "created": int(time.time()),
            "currency": charge["currency"], "metadata": self._metadata(params),
            "payment_intent": charge["payment_intent"], "reason": reason,
            "receipt_number": None, "source_transfer_reversal": None,
            "status": "pending" if token.startswith("spt_refundpending") else "succeeded",
            "transfer_reversal": None}
        self.refunds[refund_id] = refund
        charge["_refunds"].insert(0, refund_id)
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] >= charge["amount_captured"]
        return 200, refund

    def list_refunds(self, version: str, params: Json) -> tuple[int, Json]:
        data = [r for r in self.refunds.values()
                if (not params.get("charge") or r["charge"] == params["charge"])
                and (not params.get("payment_intent")
                     or r["payment_intent"] == params["payment_intent"])]
        data.sort(key=lambda r: r["id"], reverse=True)
        return 200, {"object": "list", "data": data, "has_more": False, "url": "/v1/refunds"}

    def get_refund(self, version: str, params: Json, refund_id: str) -> tuple[int, Json]:
        refund = self.refunds.get(refund_id)
        if refund is None:
            raise invalid("No such refund.", code="resource_missing", param="id", status=404)
        return 200, refund

    def settle_refund(self, refund_id: str, status: str) -> list[bytes]:
        """A refund changes status later (pending → succeeded | failed | canceled, or
        succeeded → failed): the events Stripe sends."""
        refund = self.refunds[refund_id]
        refund["status"] = status
        charge = self.charges[refund["charge"]]
        if status in ("failed", "canceled"):
            refund["failure_reason"] = "expired_or_canceled_card" if status == "failed" \
                else None
            charge["amount_refunded"] -= refund["amount"]
            charge["refunded"] = False
        events = [self.event("charge.refund.updated", refund),
                  self.event("refund.updated", refund)]
        if status == "failed":
            events.append(self.event("refund.failed", refund))
        return events

    def get_balance_txn(self, version: str, params: Json, txn_id: str) -> tuple[int, Json]:
        txn = self.balance_transactions.get(txn_id)
        if txn is None:
            raise invalid("No such balance transaction.", code="resource_missing",
                          param="id", status=404)
        return 200, txn

    # ------------------------------------------------------------ disputes

    def open_dispute(self, pi_id: str, *, status: str = "needs_response",
                     reason: str = "fraudulent") -> tuple[Json, list[bytes]]:
        """A buyer disputes (``needs_response``: a chargeback, funds withdrawn at once) or
        asks their bank (``warning_needs_response``: an inquiry, no money moves)."""
        pi = self.payment_intents[pi_id]
        charge = self.charges[pi["latest_charge"]]
        inquiry = status.startswith("warning_")
        dispute = {
            "id": self._id("du"), "object": "dispute", "amount": charge["amount_captured"],
            "balance_transactions": [], "charge": charge["id"], "created": int(time.time()),
            "currency": charge["currency"], "evidence_details": {
                "due_by": int(time.time()) + 7 * 86400, "has_evidence": False,
                "past_due": False, "submission_count": 0},
            "is_charge_refundable": inquiry, "livemode": False, "metadata": {},
            "payment_intent": pi_id, "payment_method_details": {
                "card": {"brand": "visa", "case_type": "inquiry" if inquiry else "chargeback",
                         "network_reason_code": "10.4"}, "type": "card"},
            "reason": reason, "status": status}
        self.disputes[dispute["id"]] = dispute
        charge["disputed"] = True
        events = [self.event("charge.dispute.created", dispute)]
        if not inquiry:
            dispute["balance_transactions"] = [self._dispute_txn(dispute, -dispute["amount"])]
            events.append(self.event("charge.dispute.funds_withdrawn", dispute))
        return dispute, events

    def _dispute_txn(self, dispute: Json, amount: int) -> Json:
        txn_id = self._id("txn")
        fee = 1500 if amount < 0 else -1500
        txn = {"id": txn_id, "object": "balance_transaction", "amount": amount, "fee": fee,
               "net": amount - fee, "currency": dispute["currency"],
               "reporting_category": "dispute" if amount < 0 else "dispute_reversal",
               "source": dispute["id"], "created": int(time.time()), "type": "adjustment",
               "status": "pending"}
        self.balance_transactions[txn_id] = txn
        return txn

    def update_dispute(self, dispute_id: str, status: str) -> list[bytes]:
        """Move a dispute to ``status``; closing statuses send ``charge.dispute.closed`` and
        a won chargeback reinstates the funds."""
        dispute = self.disputes[dispute_id]
        dispute["status"] = status
        if status in ("won", "lost", "warning_closed", "prevented"):
            events = [self.event("charge.dispute.closed", dispute)]
            if status == "won" and dispute["balance_transactions"]:
                dispute["balance_transactions"].append(
                    self._dispute_txn(dispute, dispute["amount"]))
                events.append(self.event("charge.dispute.funds_reinstated", dispute))
            return events
        return [self.event("charge.dispute.updated", dispute)]

    # ------------------------------------------------------------ events

    def render(self, obj: Json) -> Json:
        """An object as the webhook endpoint's API version shows it."""
        if obj.get("object") == "charge" and "_refunds" in obj:
            return self.render_charge(obj, self.webhook_api_version)
        return json.loads(json.dumps(obj))

    def event(self, type_: str, obj: Json, event_id: str | None = None) -> bytes:
        return json.dumps({
            "id": event_id or f"evt_{next(self.ids)}", "object": "event",
            "api_version": self.webhook_api_version, "created": int(time.time()),
            "data": {"object": self.render(obj)}, "livemode": False, "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None}, "type": type_}).encode()

    def charge_event(self, type_: str, pi_id: str) -> bytes:
        return self.event(type_, self.charges[self.payment_intents[pi_id]["latest_charge"]])

    def created_payment_intents(self) -> list[httpx.Request]:
        return [r for r in self.requests
                if r.url.path == "/v1/payment_intents" and r.method == "POST"]

    def calls(self, method: str, path_prefix: str) -> list[httpx.Request]:
        return [r for r in self.requests
                if r.method == method and r.url.path.startswith(path_prefix)]
