"""A stateful fake of Stripe Connect transfers at the HTTP layer (pytest-httpx).

Built from Stripe's published shapes: the ``transfer`` and ``transfer_reversal`` objects
of stripe/openapi's fixtures (``amount``, ``amount_reversed``, ``destination``,
``reversals`` list, ``reversed``, ``transfer_group``, ``metadata`` …), the "Create a
transfer" and "Create a transfer reversal" requests (form-encoded, ``metadata[key]``), list
transfers filtered by ``transfer_group``, and the idempotency rules of "Idempotent
requests": the first response of a key is saved and replayed (errors too); the same key
with different parameters is a 400 ``idempotency_error``. Events are ``transfer.created``
and ``transfer.reversed`` (the transfer as ``data.object``), signed like Stripe's
``Stripe-Signature``.

Anything else is passed to ``fallback`` (e.g. ``FakeStripe.handle``), so this composes
with the payments fake.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

WEBHOOK_SECRET = "whsec_test_secret"
Json = dict[str, Any]


def parse_form(body: bytes) -> list[tuple[str, str]]:
    return urllib.parse.parse_qsl(body.decode(), keep_blank_values=True)


def sign(payload: bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    ts = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{ts}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={ts},v1={mac}"


def _error(status: int, type_: str, message: str, code: str | None = None,
           param: str | None = None) -> tuple[int, Json]:
    error: Json = {"type": type_, "message": message}
    if code:
        error["code"] = code
    if param:
        error["param"] = param
    return status, {"error": error}


@dataclass
class FakeStripeConnect:
    connected_accounts: set[str] = field(default_factory=set)
    # The platform's available balance per currency (transfers draw on it).
    balance: dict[str, int] = field(default_factory=lambda: {"usd": 10**9, "eur": 10**9})
    transfers: dict[str, Json] = field(default_factory=dict)
    stored: dict[str, tuple[str, int, Json]] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)
    # The next N transfer creations are made, but their answer is lost (read timeout).
    lose_answers: int = 0
    fallback: Callable[[httpx.Request], Awaitable[httpx.Response]] | None = None
    ids: Any = field(default_factory=lambda: itertools.count(1))

    async def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if not path.startswith("/v1/transfers"):
            if self.fallback is None:
                return httpx.Response(404, json=_error(404, "invalid_request_error",
                                                       "Unrecognized request URL")[1])
            return await self.fallback(request)
        self.requests.append(request)
        form = parse_form(request.content) if request.method == "POST" else []
        key = request.headers.get("Idempotency-Key")
        fingerprint = json.dumps([request.method, path, sorted(form)])
        if key and request.method == "POST" and key in self.stored:
            first, status, body = self.stored[key]
            if first != fingerprint:
                status, body = _error(
                    400, "idempotency_error",
                    "Keys for idempotent requests can only be used with the same parameters "
                    "they were first used with. Try using a key other than "
                    f"'{key}' if you meant to execute a different request.")
            return httpx.Response(status, json=body, headers={"Idempotent-Replayed": "true"})
        status, body = self._route(request, dict(form), path)
        if key and request.method == "POST":
            self.stored[key] = (fingerprint, status, body)
        if (status == 200 and request.method == "POST" and path == "/v1/transfers"
                and self.lose_answers > 0):
            self.lose_answers -= 1  # Stripe made the transfer; the answer never arrives
            raise httpx.ReadTimeout("simulated lost answer", request=request)
        return httpx.Response(status, json=body)

    # ------------------------------------------------------------------ routes

    def _route(self, request: httpx.Request, form: dict[str, str], path: str
               ) -> tuple[int, Json]:
        parts = path.strip("/").split("/")  # v1, transfers, [id], [reversals]
        if request.method == "POST" and len(parts) == 2:
            return self._create(form)
        if request.method == "GET" and len(parts) == 2:
            return self._list(dict(urllib.parse.parse_qsl(request.url.query.decode())))
        transfer = self.transfers.get(parts[2]) if len(parts) > 2 else None
        if transfer is None:
            return _error(404, "invalid_request_error",
                          f"No such transfer: '{parts[2] if len(parts) > 2 else ''}'",
                          "resource_missing", "id")
        if len(parts) == 3 and request.method == "GET":
            return 200, transfer
        if len(parts) == 4 and parts[3] == "reversals" and request.method == "POST":
            return self._reverse(transfer, form)
        return _error(404, "invalid_request_error", "Unrecognized request URL")

    def _create(self, form: dict[str, str]) -> tuple[int, Json]:
        for name in ("currency", "destination"):
            if not form.get(name):
                return _error(400, "invalid_request_error", f"Missing required param: {name}.",
                              "parameter_missing", name)
        try:
            amount = int(form.get("amount", ""))
        except ValueError:
            return _error(400, "invalid_request_error", "Invalid integer: amount",
                          "parameter_invalid_integer", "amount")
        if amount <= 0:
            return _error(400, "invalid_request_error", "Amount must be at least 1.",
                          "parameter_invalid_integer", "amount")
        destination, currency = form["destination"], form["currency"]
        if destination not in self.connected_accounts:
            return _error(400, "invalid_request_error", f"No such destination: '{destination}'",
                          "resource_missing", "destination")
        if self.balance.get(currency, 0) < amount:
            return _error(400, "invalid_request_error",
                          "You have insufficient funds in your Stripe account.",
                          "balance_insufficient")
        self.balance[currency] -= amount
        n = next(self.ids)
        transfer_id = f"tr_{n:024d}"
        transfer: Json = {
            "id": transfer_id, "object": "transfer", "amount": amount, "amount_reversed": 0,
            "balance_transaction": f"txn_{n:024d}", "created": int(time.time()),
            "currency": currency, "description": form.get("description"),
            "destination": destination, "destination_payment": f"py_{n:024d}",
            "livemode": False,
            "metadata": {k[9:-1]: v for k, v in form.items() if k.startswith("metadata[")},
            "reversals": {"object": "list", "data": [], "has_more": False, "total_count": 0,
                          "url": f"/v1/transfers/{transfer_id}/reversals"},
            "reversed": False, "source_transaction": None, "source_type": "card",
            "transfer_group": form.get("transfer_group")}
        self.transfers[transfer_id] = transfer
        return 200, transfer

    def _list(self, query: dict[str, str]) -> tuple[int, Json]:
        group = query.get("transfer_group")
        found = [t for t in reversed(list(self.transfers.values()))
                 if group is None or t["transfer_group"] == group]
        return 200, {"object": "list", "data": found, "has_more": False,
                     "url": "/v1/transfers"}

    def _reverse(self, transfer: Json, form: dict[str, str]) -> tuple[int, Json]:
        left = transfer["amount"] - transfer["amount_reversed"]
        amount = int(form.get("amount") or left)
        if amount <= 0 or amount > left:
            return _error(400, "invalid_request_error",
                          "Transfer reversal amount exceeds the transfer's remaining amount.",
                          "parameter_invalid_integer", "amount")
        n = next(self.ids)
        reversal = {"id": f"trr_{n:024d}", "object": "transfer_reversal", "amount": amount,
                    "balance_transaction": f"txn_{n:024d}", "created": int(time.time()),
                    "currency": transfer["currency"], "destination_payment_refund":
                    f"pyr_{n:024d}", "metadata": {}, "source_refund": None,
                    "transfer": transfer["id"]}
        transfer["amount_reversed"] += amount
        transfer["reversed"] = transfer["amount_reversed"] >= transfer["amount"]
        transfer["reversals"]["data"].insert(0, reversal)
        transfer["reversals"]["total_count"] += 1
        self.balance[transfer["currency"]] = self.balance.get(transfer["currency"], 0) + amount
        return 200, reversal

    # ------------------------------------------------------------------ test helpers

    def created(self) -> list[Json]:
        return list(self.transfers.values())

    def reverse(self, transfer_id: str, amount: int | None = None) -> Json:
        """The platform reverses a transfer (dashboard or API), as Stripe would."""
        form = {} if amount is None else {"amount": str(amount)}
        status, body = self._reverse(self.transfers[transfer_id], form)
        assert status == 200, body
        return body

    def event(self, type_: str, transfer_id: str, event_id: str | None = None) -> bytes:
        return json.dumps({
            "id": event_id or f"evt_{next(self.ids):024d}", "object": "event",
            "api_version": "2025-04-30.basil", "type": type_, "created": int(time.time()),
            "livemode": False, "pending_webhooks": 1,
            "data": {"object": json.loads(json.dumps(self.transfers[transfer_id]))}}).encode()
