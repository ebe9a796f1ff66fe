"""A stateful fake of the Stripe endpoints we call, served through pytest-httpx.

It behaves like Stripe where it matters to us: form-encoded requests, a stored response
per ``Idempotency-Key`` (replayed on reuse, including errors), PaymentIntents whose outcome
depends on the shared payment token, 402 card errors with ``decline_code``, 3-D Secure
confirmation, refunds with a running total, and balance transactions with fees.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

import httpx

API = "https://api.stripe.com"
WEBHOOK_SECRET = "whsec_test_secret"


def parse_form(body: bytes) -> dict[str, str]:
    return {k: v[0] for k, v in urllib.parse.parse_qs(body.decode(), keep_blank_values=True
                                                       ).items()}


def sign(payload: bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    ts = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{ts}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={ts},v1={mac}"


@dataclass
class FakeStripe:
    payment_intents: dict[str, dict[str, Any]] = field(default_factory=dict)
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
    stored: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)
    # Token → how many upcoming calls fail before Stripe answers (transport timeouts or 500s).
    timeouts: dict[str, int] = field(default_factory=dict)
    server_errors: dict[str, int] = field(default_factory=dict)
    ids: Any = field(default_factory=lambda: itertools.count(1))

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        form = parse_form(request.content) if request.method == "POST" else {}
        token = form.get("payment_method_data[shared_payment_granted_token]") \
            or form.get("payment_method_data[card][token]", "")
        if self.server_errors.get(token, 0) > 0:
            self.server_errors[token] -= 1
            return httpx.Response(500, json={"error": {"type": "api_error",
                                                       "message": "boom"}})
        key = request.headers.get("Idempotency-Key")
        if key and key in self.stored:
            status, body = self.stored[key]
            response = httpx.Response(status, json=body)
        else:
            status, body = self._route(request, form)
            if key and request.method == "POST" and status < 500:
                self.stored[key] = (status, body)
            response = httpx.Response(status, json=body)
        if self.timeouts.get(token, 0) > 0:  # Stripe did the work; the answer is lost
            self.timeouts[token] -= 1
            raise httpx.ReadTimeout("simulated timeout", request=request)
        return response

    def _route(self, request: httpx.Request, form: dict[str, str]) -> tuple[int, dict]:
        path = request.url.path
        if path == "/v1/payment_intents" and request.method == "POST":
            return self._create_pi(form)
        if path.startswith("/v1/payment_intents/") and path.endswith("/confirm"):
            return self._confirm(path.split("/")[3], form)
        if path == "/v1/refunds":
            return self._refund(form)
        if path.startswith("/v1/balance_transactions/"):
            txn = path.rsplit("/", 1)[1]
            return 200, {"id": txn, "object": "balance_transaction", "amount": 1000,
                         "fee": 59, "net": 941, "currency": "usd"}
        return 404, {"error": {"type": "invalid_request_error", "message": "no such route"}}

    def _create_pi(self, form: dict[str, str]) -> tuple[int, dict]:
        token = form.get("payment_method_data[shared_payment_granted_token]") \
            or form["payment_method_data[card][token]"]  # Stripe test tokens: tok_visa…
        if token.startswith("tok_"):
            assert form["payment_method_data[type]"] == "card"
            if token == "tok_chargeDeclined":
                token = "spt_decline"
        pi_id = f"pi_{next(self.ids)}"
        pi = {"id": pi_id, "object": "payment_intent", "amount": int(form["amount"]),
              "currency": form["currency"], "status": "succeeded",
              "capture_method": form.get("capture_method"), "latest_charge": f"ch_{pi_id}",
              "metadata": {k[9:-1]: v for k, v in form.items() if k.startswith("metadata[")}}
        if token.startswith("spt_decline"):
            pi["status"] = "requires_payment_method"
            self.payment_intents[pi_id] = pi
            return 402, {"error": {"type": "card_error", "code": "card_declined",
                                   "decline_code": "insufficient_funds",
                                   "message": "Your card has insufficient funds.",
                                   "payment_intent": pi}}
        if token.startswith("spt_bad"):
            return 400, {"error": {"type": "invalid_request_error",
                                   "code": "shared_payment_token_expired",
                                   "message": "The token has expired."}}
        if token.startswith("spt_3ds"):
            pi["status"] = "requires_action"
            pi["next_action"] = {"type": "use_stripe_sdk"}
        elif form.get("capture_method") == "manual":
            pi["status"] = "requires_capture"
        self.payment_intents[pi_id] = pi
        return 200, pi

    def _confirm(self, pi_id: str, form: dict[str, str]) -> tuple[int, dict]:
        pi = self.payment_intents.get(pi_id)
        if pi is None:
            return 404, {"error": {"type": "invalid_request_error", "message": "no such pi"}}
        prefix = "payment_method_options[card][three_d_secure]"
        if form.get(f"{prefix}[cryptogram]") and form.get(
                f"{prefix}[electronic_commerce_indicator]") in ("05", "02"):
            pi["status"] = "succeeded"
        else:
            pi["status"] = "requires_payment_method"
        return 200, pi

    def _refund(self, form: dict[str, str]) -> tuple[int, dict]:
        pi = self.payment_intents.get(form["payment_intent"])
        amount = int(form["amount"])
        if pi is None:
            return 404, {"error": {"type": "invalid_request_error", "message": "no such pi"}}
        refunded = sum(r["amount"] for r in self.refunds.values()
                       if r["payment_intent"] == pi["id"])
        if refunded + amount > pi["amount"]:
            return 400, {"error": {"type": "invalid_request_error",
                                   "code": "charge_already_refunded",
                                   "message": "Refund exceeds the charge."}}
        rid = f"re_{next(self.ids)}"
        refund = {"id": rid, "object": "refund", "amount": amount, "status": "succeeded",
                  "payment_intent": pi["id"], "charge": pi["latest_charge"],
                  "metadata": {k[9:-1]: v for k, v in form.items()
                               if k.startswith("metadata[")}}
        self.refunds[rid] = refund
        return 200, refund

    def created_payment_intents(self) -> list[httpx.Request]:
        return [r for r in self.requests
                if r.url.path == "/v1/payment_intents" and r.method == "POST"]

    def event(self, type_: str, obj: dict[str, Any], event_id: str | None = None) -> bytes:
        return json.dumps({"id": event_id or f"evt_{next(self.ids)}", "object": "event",
                           "type": type_, "created": int(time.time()),
                           "data": {"object": obj}}).encode()
