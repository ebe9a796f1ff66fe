"""The only module that imports ``stripe``. A thin, typed wrapper over ``StripeClient``.

Errors come out in two families (as in httpx): ``PaymentUnavailable`` — transport
failures, timeouts, 5xx, rate limits, misconfiguration: the outcome is unknown and the
same idempotency key must be reused — and ``StripeCardDeclined`` / ``StripeRequestRejected``
— Stripe answered no.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import stripe

from payments.provider import PaymentUnavailable

log = logging.getLogger("reelcart.stripe")
stripe.enable_telemetry = False


class _DropRequestBodies(logging.Filter):
    """The SDK logs request bodies (the shared payment token) and response bodies at DEBUG.
    Never let those through, whatever level an operator configures."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = str(record.msg)
        return record.levelno > logging.INFO and "post_data" not in text and "body=" not in text


_sdk_logger = logging.getLogger("stripe")
_sdk_logger.setLevel(logging.WARNING)
_sdk_logger.addFilter(_DropRequestBodies())


@dataclass(frozen=True, slots=True)
class StripeConfig:
    api_key: str
    api_version: str | None = None
    spt_api_version: str | None = "2026-04-22.preview"
    # Where the shared payment token goes: Stripe's preview naming has moved more than once.
    spt_param: str = "payment_method_data.shared_payment_granted_token"
    api_base: str | None = None
    max_network_retries: int = 2
    timeout_seconds: float = 20
    manual_capture: bool = False


class StripeCardDeclined(Exception):
    def __init__(self, code: str | None, decline_code: str | None, message: str,
                 payment_intent_id: str | None) -> None:
        super().__init__(message)
        self.code = code
        self.decline_code = decline_code
        self.payment_intent_id = payment_intent_id


class StripeRequestRejected(Exception):
    def __init__(self, code: str | None, message: str) -> None:
        super().__init__(message)
        self.code = code


def _nest(dotted: str, value: Any) -> dict[str, Any]:
    head, _, rest = dotted.partition(".")
    return {head: _nest(rest, value) if rest else value}


class StripeGateway:
    def __init__(self, config: StripeConfig) -> None:
        self.config = config
        self._http = stripe.HTTPXClient(timeout=config.timeout_seconds)
        self.client = stripe.StripeClient(
            config.api_key,
            stripe_version=config.api_version,
            http_client=self._http,
            max_network_retries=config.max_network_retries,
            base_addresses={"api": config.api_base} if config.api_base else None,
        )

    async def close(self) -> None:
        await self._http.close_async()

    async def _call(self, what: str, coro: Any) -> Any:
        try:
            return await coro
        except stripe.CardError as exc:
            err = exc.error
            pi = getattr(err, "payment_intent", None) if err else None
            raise StripeCardDeclined(
                exc.code, getattr(err, "decline_code", None) if err else None,
                exc.user_message or "The card was declined.",
                pi.get("id") if isinstance(pi, dict) else getattr(pi, "id", None)) from None
        except (stripe.APIConnectionError, stripe.RateLimitError, stripe.AuthenticationError,
                stripe.PermissionError) as exc:
            log.warning("stripe unavailable", extra={"operation": what,
                                                     "error": type(exc).__name__,
                                                     "stripe_request_id": exc.request_id})
            raise PaymentUnavailable(f"stripe {what}: {type(exc).__name__}") from None
        except stripe.IdempotencyError as exc:
            # Same key, different parameters: our bug. Never retry blindly; make it loud.
            log.error("stripe idempotency error", extra={"operation": what,
                                                         "stripe_request_id": exc.request_id})
            raise PaymentUnavailable(f"stripe {what}: idempotency error") from None
        except stripe.InvalidRequestError as exc:
            raise StripeRequestRejected(exc.code, exc.user_message or str(exc)) from None
        except stripe.StripeError as exc:  # APIError (5xx) and anything new
            log.warning("stripe error", extra={"operation": what, "error": type(exc).__name__,
                                               "http_status": exc.http_status,
                                               "stripe_request_id": exc.request_id})
            raise PaymentUnavailable(f"stripe {what}: {type(exc).__name__}") from None

    async def create_payment_intent(
        self, *, amount: int, currency: str, token: str, idempotency_key: str,
        metadata: dict[str, str],
    ) -> stripe.PaymentIntent:
        params: dict[str, Any] = {
            "amount": amount,
            "currency": currency,
            "confirm": True,
            "payment_method_types": ["card"],
            "capture_method": "manual" if self.config.manual_capture else "automatic_async",
            "metadata": metadata,
        }
        options: dict[str, Any] = {"idempotency_key": idempotency_key}
        if token.startswith("tok_"):
            # A card token from a wallet's gateway tokenization (Google Pay through UCP,
            # ``gateway: stripe``): a card PaymentMethod made from the token.
            params["payment_method_data"] = {"type": "card", "card": {"token": token}}
        else:
            params.update(_nest(self.config.spt_param, token))
            if self.config.spt_api_version:
                options["stripe_version"] = self.config.spt_api_version
        return await self._call("create_payment_intent",
                                self.client.v1.payment_intents.create_async(
                                    params, options))  # type: ignore[arg-type]

    async def confirm_with_three_ds(
        self, payment_intent_id: str, *, cryptogram: str | None, eci: str | None,
        transaction_id: str | None, version: str | None, idempotency_key: str,
    ) -> stripe.PaymentIntent:
        """Import the agent's 3-D Secure result ("Import 3D Secure results" fields)."""
        three_ds = {k: v for k, v in {
            "cryptogram": cryptogram, "electronic_commerce_indicator": eci,
            "transaction_id": transaction_id, "version": version}.items() if v}
        params: dict[str, Any] = {
            "payment_method_options": {"card": {"three_d_secure": three_ds}}}
        options: dict[str, Any] = {"idempotency_key": idempotency_key}
        if self.config.spt_api_version:
            options["stripe_version"] = self.config.spt_api_version
        return await self._call("confirm_payment_intent",
                                self.client.v1.payment_intents.confirm_async(
                                    payment_intent_id, params, options))  # type: ignore[arg-type]

    async def create_refund(self, *, payment_intent_id: str, amount: int, idempotency_key: str,
                            reason: str | None, metadata: dict[str, str]) -> stripe.Refund:
        params: dict[str, Any] = {"payment_intent": payment_intent_id, "amount": amount,
                                  "metadata": metadata}
        if reason in ("duplicate", "fraudulent", "requested_by_customer"):
            params["reason"] = reason
        return await self._call("create_refund", self.client.v1.refunds.create_async(
            params, {"idempotency_key": idempotency_key}))  # type: ignore[arg-type]

    async def search_payment_intents(self, checkout_session_id: str) -> list[Any]:
        safe = checkout_session_id.replace("'", "")
        result = await self._call("search_payment_intents",
                                  self.client.v1.payment_intents.search_async(
                                      {"query": f"metadata['checkout_session_id']:'{safe}'"}))
        return list(result.data)

    async def list_payouts(self, start: int, end: int) -> list[Any]:
        page = await self._call("list_payouts", self.client.v1.payouts.list_async(
            {"arrival_date": {"gte": start, "lt": end}, "limit": 100}))
        return [p async for p in page.auto_paging_iter()]

    async def payout_transactions(self, payout_id: str) -> list[Any]:
        page = await self._call("list_balance_transactions",
                                self.client.v1.balance_transactions.list_async(
                                    {"payout": payout_id, "limit": 100,
                                     "expand": ["data.source"]}))
        return [t async for t in page.auto_paging_iter()]

    async def retrieve_balance_transaction(self, txn_id: str) -> stripe.BalanceTransaction:
        return await self._call("retrieve_balance_transaction",
                                self.client.v1.balance_transactions.retrieve_async(txn_id))

    @staticmethod
    def verify_webhook(payload: bytes, signature: str | None, secret: str,
                       tolerance: int = 300) -> bool:
        if not signature or not secret:
            return False
        try:
            stripe.WebhookSignature.verify_header(payload.decode("utf-8"), signature, secret,
                                                  tolerance)
        except (stripe.SignatureVerificationError, UnicodeDecodeError):
            return False
        return True
