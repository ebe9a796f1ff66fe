"""The business profile served at ``/.well-known/ucp`` (overview.md "Business Profile") and
the ``ucp`` envelope every response carries. Pure: built from configuration."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from protocols.ucp import (
    CHECKOUT,
    DISCOUNT,
    FULFILLMENT,
    ORDER,
    SHOPPING_SERVICE,
    SPEC_BASE,
    UCP_VERSION,
)
from protocols.ucp.payments import HandlerSpec

Json = dict[str, Any]

# name → (spec page, schema file, extends)
CAPABILITIES: dict[str, tuple[str, str, str | None]] = {
    CHECKOUT: ("checkout", "shopping/checkout.json", None),
    FULFILLMENT: ("fulfillment", "shopping/fulfillment.json", CHECKOUT),
    DISCOUNT: ("discount", "shopping/discount.json", CHECKOUT),
    ORDER: ("order", "shopping/order.json", None),
}
# The capabilities relevant to each response type (overview.md "Response Capability
# Selection"): a root and the extensions of it.
RESPONSE_ROOT = {"checkout": CHECKOUT, "order": ORDER}


@dataclass(frozen=True)
class BusinessProfile:
    public_base_url: str
    handlers: tuple[HandlerSpec, ...]
    signing_jwks: tuple[Json, ...]

    @property
    def endpoint(self) -> str:
        """The REST base: OpenAPI paths (``/checkout-sessions`` …) are appended to it."""
        return self.public_base_url.rstrip("/") + "/ucp"

    @property
    def mcp_endpoint(self) -> str:
        """The MCP server (streamable HTTP) carrying the UCP checkout tools."""
        return self.public_base_url.rstrip("/") + "/mcp"

    def capability_entry(self, name: str, *, full: bool) -> Json:
        spec_page, schema, extends = CAPABILITIES[name]
        entry: Json = {"version": UCP_VERSION}
        if full:
            entry["spec"] = f"{SPEC_BASE}/specification/{spec_page}"
            entry["schema"] = f"{SPEC_BASE}/schemas/{schema}"
        if extends:
            entry["extends"] = extends
        return entry

    def payment_handlers(self, *, full: bool) -> Json:
        out: dict[str, list[Json]] = {}
        for h in self.handlers:
            out.setdefault(h.name, []).append(h.entry(full=full))
        return out

    def document(self) -> Json:
        return {
            "ucp": {
                "version": UCP_VERSION,
                "services": {SHOPPING_SERVICE: [{
                    "version": UCP_VERSION,
                    "spec": f"{SPEC_BASE}/specification/overview",
                    "transport": "rest",
                    "endpoint": self.endpoint,
                    "schema": f"{SPEC_BASE}/services/shopping/rest.openapi.json",
                }, {  # checkout-mcp.md: the UCP checkout tools on our MCP server
                    "version": UCP_VERSION,
                    "spec": f"{SPEC_BASE}/specification/overview",
                    "transport": "mcp",
                    "endpoint": self.mcp_endpoint,
                    "schema": f"{SPEC_BASE}/services/shopping/mcp.openrpc.json",
                }]},
                "capabilities": {name: [self.capability_entry(name, full=True)]
                                 for name in CAPABILITIES},
                "payment_handlers": self.payment_handlers(full=True),
            },
            "signing_keys": list(self.signing_jwks),
        }

    def envelope(self, response_type: str, active: frozenset[str], *,
                 status: str | None = None) -> Json:
        """The ``ucp`` field of a response: the negotiated capabilities relevant to it."""
        root = RESPONSE_ROOT[response_type]
        names = [n for n in CAPABILITIES if n in active and (
            n == root or CAPABILITIES[n][2] == root)]
        out: Json = {"version": UCP_VERSION,
                     "capabilities": {n: [self.capability_entry(n, full=False)]
                                      for n in names}}
        if response_type == "checkout":
            out["payment_handlers"] = self.payment_handlers(full=False)
        if status:
            out["status"] = status
        return out
