"""The payment-provider interface the checkout service charges through.

Two error families, as in httpx: ``PaymentUnavailable`` (transport, timeouts, PSP 5xx:
retryable, nothing may be assumed) and a ``declined`` *result* (the PSP answered no).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal, Protocol

from models.statuses import CaptureOutcome, RefundStatus

ChargeStatus = Literal[
    "succeeded", "requires_capture", "processing", "requires_action", "declined"]


class PaymentUnavailable(Exception):
    """The provider could not be reached or failed; the outcome is unknown. Retry safely."""


class ProviderIntegrationError(PaymentUnavailable):
    """The provider refused our request as malformed or unauthorised (Stripe 400
    ``invalid_request_error``, a revoked key…): the merchant's integration must be fixed.
    Nothing was charged; never a buyer decline."""

    code: str | None = None
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class CaptureResult:
    status: CaptureOutcome
    amount_captured: int = 0
    message: str | None = None
    # The processing fee on the captured amount, when the provider tells it at once (the
    # sandbox); Stripe's arrives later with the balance transaction (``charge.updated``).
    fee_amount: int | None = None


@dataclass(frozen=True, slots=True)
class ThreeDSResult:
    outcome: str
    cryptogram: str | None = None
    eci: str | None = None
    transaction_id: str | None = None
    version: str | None = None


@dataclass(frozen=True, slots=True)
class ChargeRequest:
    amount: int
    currency: str
    token: str
    idempotency_key: str
    metadata: dict[str, str] = field(default_factory=dict)
    three_ds: ThreeDSResult | None = None
    # The provider's payment from the attempt that asked for 3-D Secure, confirmed again
    # with the authentication result instead of starting a new payment.
    existing_reference: str | None = None


@dataclass(frozen=True, slots=True)
class RefundRequest:
    payment_reference: str
    amount: int
    currency: str
    idempotency_key: str
    reason: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RefundResult:
    status: RefundStatus
    reference: str


@dataclass(frozen=True, slots=True)
class BalanceTxn:
    """One money movement at the provider (Stripe: a balance transaction)."""

    id: str
    category: str  # charge | refund | dispute | dispute_reversal | other
    amount: int
    fee: int
    net: int
    currency: str
    payment_reference: str | None  # the payment (PaymentIntent) it belongs to
    source_id: str | None  # the refund / dispute / charge id
    payout_id: str | None
    created: datetime


class PayoutStatus(StrEnum):
    """Stripe's payout ``status``: ``pending`` until submitted to the bank, ``in_transit``
    until ``arrival_date``, then ``paid`` (or ``failed`` / ``canceled``)."""

    pending = "pending"
    in_transit = "in_transit"
    paid = "paid"
    failed = "failed"
    canceled = "canceled"


@dataclass(frozen=True, slots=True)
class Payout:
    id: str
    amount: int
    currency: str
    arrival: datetime
    status: PayoutStatus


class RefundRejected(Exception):
    """The provider refused the refund (e.g. more than the charge); not retryable."""


@dataclass(frozen=True, slots=True)
class ChargeResult:
    status: ChargeStatus
    reference: str | None = None
    decline_code: str | None = None
    message: str | None = None
    authentication_metadata: dict[str, Any] | None = None
    fee_amount: int | None = None


class PaymentProvider(Protocol):
    name: str
    # The provider API version payments are made with (recorded on every attempt).
    api_version: str | None

    def payment_handlers(self) -> list[dict[str, Any]]:
        """ACP ``capabilities.payment.handlers`` entries this provider accepts."""
        ...

    async def charge(self, request: ChargeRequest) -> ChargeResult: ...

    async def refund(self, request: RefundRequest) -> RefundResult: ...

    async def find_payment(self, *, idempotency_key: str, checkout_session_id: str,
                           amount: int) -> ChargeResult | None:
        """What became of a payment whose answer we never recorded (crash, timeout)."""
        ...

    async def settlement(self, start: datetime, end: datetime
                         ) -> tuple[list[Payout], list[BalanceTxn]]:
        """Payouts arriving in [start, end) and the balance transactions they settle."""
        ...

    async def capture(self, reference: str, *, amount: int | None, idempotency_key: str
                      ) -> CaptureResult:
        """Capture an authorised (manual-capture) payment, all of it or ``amount``."""
        ...

    async def cancel_authorization(self, reference: str, *, idempotency_key: str
                                   ) -> CaptureResult:
        """Release an authorisation that will not be captured."""
        ...


def three_ds_fingerprint(result: ThreeDSResult | None) -> str:
    """Identifies one 3-D Secure authentication (its outcome, cryptogram, ECI, transaction):
    a retry of the same result is the same provider request, a new authentication is not."""
    if result is None:
        return ""
    parts = (result.outcome, result.cryptogram, result.eci, result.transaction_id,
             result.version)
    return "3ds:" + hashlib.sha256("|".join(p or "" for p in parts).encode()).hexdigest()[:16]


def charge_idempotency_key(
    session_id: str, amount: int, currency: str, token: str, *,
    three_ds: ThreeDSResult | None = None, confirming: str | None = None,
) -> str:
    """Deterministic: any retry of the same payment (client retry, our retry, crash and
    restart) reaches the provider with the same key, so it is charged at most once.

    The token is part of it so a buyer can retry a declined payment with another card.
    Each 3-D Secure authentication is its own attempt (keyed by the result, and by the
    payment it confirms): after a denied authentication the agent can authenticate again
    and is not answered with the stored decline forever.
    """
    digest = hashlib.sha256(
        f"{session_id}|{amount}|{currency}|{token}|{three_ds_fingerprint(three_ds)}|"
        f"{confirming or ''}".encode()
    ).hexdigest()[:32]
    return f"reelcart:{session_id}:{digest}"


def token_fingerprint(token: str) -> str:
    """Tokens are never stored or logged; this lets us correlate without keeping them."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def card_handler(*, psp: str, merchant_id: str, environment: str) -> dict[str, Any]:
    """The ACP ``dev.acp.tokenized.card`` payment handler (delegated card tokens, 3-D
    Secure supported), as advertised in ``capabilities.payment.handlers``."""
    return {
        "id": "card_tokenized",
        "name": "dev.acp.tokenized.card",
        "display_name": "Credit Card",
        "version": "2026-01-22",
        "spec": "https://acp.dev/handlers/tokenized.card",
        "requires_delegate_payment": True,
        "requires_pci_compliance": False,
        "psp": psp,
        "config_schema": "https://acp.dev/schemas/handlers/tokenized.card/config.json",
        "instrument_schemas": ["https://acp.dev/schemas/handlers/tokenized.card/instrument.json"],
        "config": {
            "merchant_id": merchant_id,
            "psp": psp,
            "accepted_brands": ["visa", "mastercard", "amex", "discover"],
            "accepted_funding_types": ["credit", "debit"],
            "supports_3ds": True,
            "environment": environment,
        },
        "display_order": 1,
    }
