"""A stateful fake of the Shopify Admin GraphQL endpoint (served through pytest-httpx),
plus signed REST-shaped webhook deliveries.

Faults are scripted per call: ``throttled`` (THROTTLED in the body), ``http429``,
``http503``, and ``commit_then_timeout`` (the order is stored, then the answer is lost:
the key exactly-once case, since ``orderCreate`` has no idempotency).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

SHOP = "acme-test"
VERSION = "2026-04"
TOKEN = "shpat_test_token"
SECRET = "shopify-client-secret"
ENDPOINT = f"https://{SHOP}.myshopify.com/admin/api/{VERSION}/graphql.json"
COST = {"requestedQueryCost": 10, "actualQueryCost": 10, "throttleStatus": {
    "maximumAvailable": 2000.0, "currentlyAvailable": 1990, "restoreRate": 100.0}}


@dataclass
class FakeShopify:
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)  # by sourceIdentifier
    calls: list[str] = field(default_factory=list)
    inputs: list[dict[str, Any]] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)
    reject_with: str | None = None
    ids: Any = field(default_factory=lambda: itertools.count(5001))

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.headers.get("X-Shopify-Access-Token") != TOKEN:
            return httpx.Response(401, json={"errors": "[API] Invalid API key or access token"})
        body = json.loads(request.content)
        op, variables = body.get("operationName"), body.get("variables") or {}
        self.calls.append(op)
        fault = self.faults.pop(0) if self.faults else None
        if fault == "throttled":
            return httpx.Response(200, json={
                "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
                "extensions": {"cost": {**COST, "actualQueryCost": None}}})
        if fault == "http429":
            return httpx.Response(429, headers={"Retry-After": "1"}, json={"errors": "slow"})
        if fault == "http503":
            return httpx.Response(503, json={"errors": "unavailable"})
        if op == "OrderCreate":
            order_input = variables["order"]
            self.inputs.append(order_input)
            if self.reject_with:
                return httpx.Response(200, json={"data": {"orderCreate": {
                    "order": None, "userErrors": [{"field": ["order", "lineItems"],
                                                   "message": self.reject_with,
                                                   "code": "INVALID"}]}},
                    "extensions": {"cost": COST}})
            number = next(self.ids)
            order = {"id": f"gid://shopify/Order/{number}", "legacyResourceId": str(number),
                     "name": f"#{number}", "sourceIdentifier": order_input["sourceIdentifier"],
                     "displayFinancialStatus": order_input.get("financialStatus")}
            self.orders[order_input["sourceIdentifier"]] = order
            if fault == "commit_then_timeout":
                raise httpx.ReadTimeout("response lost after commit", request=request)
            return httpx.Response(200, json={"data": {"orderCreate": {
                "order": order, "userErrors": []}}, "extensions": {"cost": COST}})
        if op == "FindOrderBySourceIdentifier":
            wanted = variables["q"].split(":", 1)[1].strip("'\"")
            nodes = [self.orders[wanted]] if wanted in self.orders else []
            return httpx.Response(200, json={"data": {"orders": {"nodes": nodes}},
                                             "extensions": {"cost": COST}})
        raise AssertionError(f"unexpected operation {op}")

    def creates(self) -> int:
        return self.calls.count("OrderCreate")

    # ------------------------------------------------------------ webhook deliveries

    def fulfillment_payload(self, source_identifier: str, *, skus: list[tuple[str, int]],
                            tracking: str = "1Z999AA10123456784", status: str = "success",
                            shipment_status: str | None = None, fulfillment_id: int = 7001,
                            updated_at: str = "2026-11-24T10:00:00Z") -> dict[str, Any]:
        order = self.orders[source_identifier]
        return {"id": fulfillment_id, "order_id": int(order["legacyResourceId"]),
                "status": status, "shipment_status": shipment_status,
                "tracking_company": "UPS", "tracking_number": tracking,
                "tracking_numbers": [tracking],
                "tracking_url": f"https://ups.test/track?n={tracking}",
                "created_at": "2026-11-24T09:00:00Z", "updated_at": updated_at,
                "line_items": [{"id": 1, "sku": sku, "quantity": qty, "title": sku}
                               for sku, qty in skus]}

    def refund_payload(self, source_identifier: str, amount: str, refund_id: int = 9001
                       ) -> dict[str, Any]:
        order = self.orders[source_identifier]
        return {"id": refund_id, "order_id": int(order["legacyResourceId"]),
                "note": "damaged in transit", "transactions": [
                    {"id": 1, "kind": "refund", "status": "success", "amount": amount,
                     "currency": "USD", "gateway": "stripe"}]}


def delivery(topic: str, payload: dict[str, Any], *, secret: str = SECRET,
             webhook_id: str | None = None) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(payload, separators=(",", ":")).encode()
    signature = base64.b64encode(hmac.new(secret.encode(), raw, hashlib.sha256).digest())
    return raw, {"Content-Type": "application/json", "X-Shopify-Topic": topic,
                 "X-Shopify-Hmac-Sha256": signature.decode(),
                 "X-Shopify-Shop-Domain": f"{SHOP}.myshopify.com",
                 "X-Shopify-API-Version": VERSION,
                 "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()),
                 "X-Shopify-Event-Id": str(uuid.uuid4())}
