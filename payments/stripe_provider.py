"""Stripe as a ``PaymentProvider``: a shared payment token becomes one PaymentIntent."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from models.statuses import CaptureOutcome, RefundStatus
from payments.provider import (
    BalanceTxn,
    CaptureResult,
    ChargeRequest,
    ChargeResult,
    Payout,
    PayoutStatus,
    RefundRejected,
    RefundRequest,
    RefundResult,
    card_handler,
)
from payments.stripe_client import (
    StripeCardDeclined,
    StripeGateway,
    StripeIntegrationError,
    StripeRequestRejected,
)


class StripeProvider:
    name = "stripe"

    def __init__(self, gateway: StripeGateway, *, account_id: str, merchant_name: str,
                 acquirer_bin: str, acquirer_country: str, acquirer_merchant_id: str) -> None:
        self.gateway = gateway
        self.api_version: str | None = gateway.charge_api_version
        self._handlers = [card_handler(
            psp="stripe", merchant_id=account_id,
            environment="sandbox" if gateway.config.api_key.startswith("sk_test")
            else "production")]
        self._three_ds_metadata: dict[str, Any] = {
            "acquirer_details": {
                "acquirer_bin": acquirer_bin[:11],
                "acquirer_country": acquirer_country[:2],
                "acquirer_merchant_id": acquirer_merchant_id[:35],
                "merchant_name": merchant_name[:40],
            },
            "directory_server": "visa",
            "flow_preference": {"type": "challenge", "challenge": {"type": "preferred"}},
        }

    def payment_handlers(self) -> list[dict[str, Any]]:
        return self._handlers

    def _result(self, pi: Any) -> ChargeResult:
        status = pi.status
        if status == "succeeded":
            return ChargeResult("succeeded", reference=pi.id)
        if status == "requires_capture":
            return ChargeResult("requires_capture", reference=pi.id)
        if status == "processing":
            return ChargeResult("processing", reference=pi.id)
        if status == "requires_action":
            return ChargeResult("requires_action", reference=pi.id,
                                authentication_metadata=self._three_ds_metadata)
        error = getattr(pi, "last_payment_error", None)
        return ChargeResult("declined", reference=pi.id,
                            decline_code=getattr(error, "decline_code", None) or status,
                            message="The payment was declined.")

    async def charge(self, request: ChargeRequest) -> ChargeResult:
        try:
            if request.existing_reference and request.three_ds is not None:
                three_ds = request.three_ds
                pi = await self.gateway.confirm_with_three_ds(
                    request.existing_reference, cryptogram=three_ds.cryptogram,
                    eci=three_ds.eci, transaction_id=three_ds.transaction_id,
                    version=three_ds.version, idempotency_key=request.idempotency_key)
            else:
                pi = await self.gateway.create_payment_intent(
                    amount=request.amount, currency=request.currency, token=request.token,
                    idempotency_key=request.idempotency_key, metadata=request.metadata)
        except StripeCardDeclined as exc:
            if exc.code == "authentication_required" or exc.decline_code == \
                    "authentication_required":
                return ChargeResult("requires_action", reference=exc.payment_intent_id,
                                    authentication_metadata=self._three_ds_metadata)
            return ChargeResult("declined", reference=exc.payment_intent_id,
                                decline_code=exc.decline_code or exc.code,
                                message=_decline_text(exc.decline_code or exc.code))
        except StripeRequestRejected as exc:
            # Stripe refused the token itself (expired, consumed, foreign, over its
            # allowance): the buyer must provide another payment method. Any other 400 is
            # a StripeIntegrationError and propagates (provider error, never a decline).
            return ChargeResult("declined", decline_code=exc.code or "invalid_token",
                                message="The payment method could not be used.")
        return self._result(pi)

    async def capture(self, reference: str, *, amount: int | None, idempotency_key: str
                      ) -> CaptureResult:
        try:
            pi = await self.gateway.capture_payment_intent(reference, amount=amount,
                                                           idempotency_key=idempotency_key)
        except (StripeRequestRejected, StripeIntegrationError) as exc:
            # Already captured (a lost answer, then our retry)? Ask Stripe what it is now.
            current = await self.gateway.retrieve_payment_intent(reference)
            if current.status == "succeeded":
                return CaptureResult(CaptureOutcome.captured, int(current.amount_received or 0))
            if current.status == "canceled":
                return CaptureResult(CaptureOutcome.canceled, 0,
                                     "the authorisation was canceled or expired")
            return CaptureResult(CaptureOutcome.failed, 0,
                                 str(getattr(exc, "message", exc)) or "refused")
        if pi.status == "succeeded":
            return CaptureResult(CaptureOutcome.captured, int(pi.amount_received or 0))
        if pi.status == "canceled":
            return CaptureResult(CaptureOutcome.canceled, 0,
                                 "the authorisation was canceled or expired")
        return CaptureResult(CaptureOutcome.failed, 0, f"payment is {pi.status} after capture")

    async def cancel_authorization(self, reference: str, *, idempotency_key: str
                                   ) -> CaptureResult:
        try:
            pi = await self.gateway.cancel_payment_intent(reference,
                                                          idempotency_key=idempotency_key)
        except (StripeRequestRejected, StripeIntegrationError) as exc:
            current = await self.gateway.retrieve_payment_intent(reference)
            if current.status == "canceled":
                return CaptureResult(CaptureOutcome.canceled)
            if current.status == "succeeded":
                return CaptureResult(CaptureOutcome.captured, int(current.amount_received or 0),
                                     "already captured: refund instead")
            return CaptureResult(CaptureOutcome.failed, 0,
                                 str(getattr(exc, "message", exc)) or "refused")
        return CaptureResult(CaptureOutcome.canceled if pi.status == "canceled"
                             else CaptureOutcome.failed)

    async def find_payment(self, *, idempotency_key: str, checkout_session_id: str,
                           amount: int) -> ChargeResult | None:
        matches = [pi for pi in await self.gateway.search_payment_intents(checkout_session_id)
                   if pi.amount == amount]
        if not matches:
            return None
        # Prefer a payment that went through over an abandoned one.
        rank = {"succeeded": 0, "requires_capture": 1, "processing": 2, "requires_action": 3}
        best = min(matches, key=lambda pi: rank.get(pi.status, 9))
        return self._result(best)

    async def settlement(self, start: datetime, end: datetime
                         ) -> tuple[list[Payout], list[BalanceTxn]]:
        payouts: list[Payout] = []
        txns: list[BalanceTxn] = []
        for po in await self.gateway.list_payouts(int(start.timestamp()),
                                                  int(end.timestamp())):
            payouts.append(Payout(po.id, po.amount, po.currency,
                                  datetime.fromtimestamp(po.arrival_date, UTC),
                                  PayoutStatus(po.status)))
            for bt in await self.gateway.payout_transactions(po.id):
                category = bt.reporting_category
                if category == "payout":
                    continue
                source = bt.source
                source_id = source if isinstance(source, str) else getattr(source, "id", None)
                payment = None if isinstance(source, str) else getattr(
                    source, "payment_intent", None)
                txns.append(BalanceTxn(
                    bt.id, category if category in ("charge", "refund", "dispute",
                                                     "dispute_reversal") else "other",
                    bt.amount, bt.fee, bt.net, bt.currency,
                    payment if isinstance(payment, str) else getattr(payment, "id", None),
                    source_id, po.id, datetime.fromtimestamp(bt.created, UTC)))
        return payouts, txns

    async def refund(self, request: RefundRequest) -> RefundResult:
        try:
            refund = await self.gateway.create_refund(
                payment_intent_id=request.payment_reference, amount=request.amount,
                idempotency_key=request.idempotency_key, reason=request.reason,
                metadata=request.metadata)
        except StripeRequestRejected as exc:
            raise RefundRejected(str(exc)) from None
        return RefundResult(refund_status(refund.status), refund.id)


def refund_status(stripe_status: str | None) -> RefundStatus:
    """A Stripe Refund's status in our terms: ``requires_action`` waits, ``canceled`` is as
    good as failed (no money went back)."""
    if stripe_status == "succeeded":
        return RefundStatus.succeeded
    if stripe_status in ("failed", "canceled"):
        return RefundStatus.failed
    return RefundStatus.pending


def _decline_text(code: str | None) -> str:
    if code in ("insufficient_funds", "card_velocity_exceeded",
                "withdrawal_count_limit_exceeded"):
        return "The card was declined for insufficient funds or limits."
    if code in ("expired_card", "incorrect_cvc", "incorrect_number"):
        return "The card details were rejected (expired or incorrect)."
    if code in ("processing_error", "try_again_later", "issuer_not_available"):
        return "The bank could not process the payment; retry shortly."
    return "The card was declined."
