"""UCP payment handlers and what each turns into at the payment provider.

* ``com.reelcart.sandbox`` / id ``mock_payment_handler`` (sandbox provider): an offline
  sandbox charge; ``success_token`` succeeds, ``fail_token`` declines (the UCP conformance
  suite's test credentials).
* ``com.google.pay`` / id ``google_pay`` (Stripe provider): one PaymentIntent confirmed with
  the Stripe card token (``tok_…``) that Google Pay's ``PAYMENT_GATEWAY`` tokenization
  returns for ``gateway: stripe``.
* ``com.stripe.shared_payment_token`` / id ``stripe_spt`` (Stripe provider): one
  PaymentIntent with the shared payment token (``spt_…``), as for ACP.

The credential never leaves this module except as the provider's token argument; it is
not stored and not logged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from protocols.ucp import UCP_VERSION

Json = dict[str, Any]

# The sandbox provider's documented outcomes (payments/sandbox.py), keyed by UCP test token.
SANDBOX_TOKENS = {"success_token": "ucp_test_success", "fail_token": "spt_test_declined"}


@dataclass(frozen=True)
class HandlerSpec:
    name: str
    id: str
    spec: str
    schema: str
    instruments: tuple[str, ...] = ("card",)
    config: Json = field(default_factory=dict)

    def entry(self, *, full: bool) -> Json:
        out: Json = {"id": self.id, "version": UCP_VERSION,
                     "available_instruments": [{"type": t} for t in self.instruments]}
        if full:
            out["spec"] = self.spec
            out["schema"] = self.schema
        if self.config:
            out["config"] = self.config
        return out


class UnusableCredential(ValueError):
    """The instrument cannot be charged through this handler."""


def handlers_for(provider: str, *, public_base_url: str, stripe_account_id: str,
                 stripe_publishable_key: str | None, merchant_name: str) -> tuple[HandlerSpec, ...]:
    base = public_base_url.rstrip("/")
    if provider == "sandbox":
        return (HandlerSpec(
            name="com.reelcart.sandbox", id="mock_payment_handler",
            spec=f"{base}/ucp/handlers/sandbox", schema=f"{base}/ucp/handlers/sandbox.json"),)
    google_pay_config: Json = {
        "api_version": 2, "api_version_minor": 0,
        "merchant_info": {"merchant_name": merchant_name},
        "allowed_payment_methods": [{
            "type": "CARD",
            "parameters": {"allowed_auth_methods": ["PAN_ONLY", "CRYPTOGRAM_3DS"],
                           "allowed_card_networks": ["AMEX", "DISCOVER", "MASTERCARD", "VISA"]},
            "tokenization_specification": {
                "type": "PAYMENT_GATEWAY",
                "parameters": {"gateway": "stripe", "stripe:version": "2018-10-31",
                               "stripe:publishableKey": stripe_publishable_key or ""}},
        }],
    }
    return (
        HandlerSpec(name="com.google.pay", id="google_pay",
                    spec="https://developers.google.com/merchant/ucp/guides/gpay-payment-handler",
                    schema="https://pay.google.com/gp/p/ucp/2026-01-11/schemas/gpay_config.json",
                    config=google_pay_config),
        HandlerSpec(name="com.stripe.shared_payment_token", id="stripe_spt",
                    spec="https://docs.stripe.com/agentic-commerce",
                    schema=f"{base}/ucp/handlers/stripe_spt.json",
                    config={"merchant_id": stripe_account_id}),
    )


def provider_token(handler: HandlerSpec, credential: Json) -> str:
    """The token to hand the payment provider for this handler's credential."""
    token = credential.get("token")
    if not isinstance(token, str) or not token or len(token) > 5000:
        raise UnusableCredential("credential.token is required")
    if handler.id == "mock_payment_handler":
        return SANDBOX_TOKENS.get(token, token)
    if handler.id == "google_pay":
        # Google Pay returns the gateway's token as JSON text ({"id": "tok_…", …}) or as
        # the bare id; Stripe needs the id.
        if token.lstrip().startswith("{"):
            try:
                parsed = json.loads(token)
            except ValueError:
                raise UnusableCredential("credential.token is not a Google Pay token") from None
            token = parsed.get("id") if isinstance(parsed, dict) else None
            if not isinstance(token, str):
                raise UnusableCredential("credential.token carries no gateway token id")
        if not token.startswith("tok_"):
            raise UnusableCredential("a Stripe card token (tok_…) is expected")
        return token
    return token
