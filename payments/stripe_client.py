"""The only module that imports ``stripe``. A thin, typed wrapper over ``StripeClient``.

Errors come out in three families: ``PaymentUnavailable`` — transport failures,
timeouts, 5xx, rate limits: the outcome is unknown and the same idempotency key must be
reused; ``StripeIntegrationError`` (a ``PaymentUnavailable`` too) — Stripe refused *our*
request (400 ``invalid_request_error``, idempotency error, bad key): a merchant-side
integration error, logged loudly and never shown to the buyer as a decline; and
``StripeCardDeclined`` / ``StripeRequestRejected`` — Stripe answered no about the card or
the buyer's token.

Every request is pinned to one API version (``STRIPE_API_VERSION`` unless configured);
shared-payment-token calls use the SPT preview version. The parameters we send are valid
on both (no ``payment_method_types``: removed on 2026-08-26.preview and 2026-09-30.endive).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

import stripe

from payments.provider import PaymentUnavailable, ProviderIntegrationError

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


# The API version stripe-python 16.1 ships with (``stripe._api_version._ApiVersion.CURRENT``);
# pyproject pins ``stripe>=16.1,<17`` and a test checks the two agree. Upgrading: see README.
STRIPE_API_VERSION = "2026-10-28.endive"
_TOKEN = re.compile(r"(spt|sk|rk|whsec|pm|tok)_[A-Za-z0-9_]+")


def redact(text: str | None) -> str:
    """Stripe error messages may quote what we sent: never log a token or key."""
    return _TOKEN.sub(lambda m: f"{m.group(1)}_***", text or "")[:500]


@dataclass(frozen=True, slots=True)
class StripeConfig:
    api_key: str
    api_version: str = STRIPE_API_VERSION
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


class StripeIntegrationError(ProviderIntegrationError):
    """Stripe refused our request as malformed or unauthorised: the merchant's integration
    (version, parameters, key, account) must be fixed. Retrying later is safe."""

    def __init__(self, operation: str, code: str | None, message: str, *,
                 param: str | None = None, http_status: int | None = None,
                 request_id: str | None = None) -> None:
        super().__init__(f"stripe {operation}: {code or 'invalid_request'}")
        self.operation = operation
        self.code = code
        self.message = message
        self.param = param
        self.http_status = http_status
        self.request_id = request_id


# Codes that mean our request is wrong whatever the operation (never the buyer's fault).
_INTEGRATION_CODES = frozenset({
    "parameter_unknown", "parameter_invalid_empty", "parameter_invalid_integer",
    "parameter_invalid_string_empty", "parameter_missing", "parameters_exclusive",
    "payment_method_types_no_longer_supported", "api_version_invalid", "url_invalid",
    "secret_key_required"})


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

    def _integration_error(self, what: str, exc: stripe.StripeError) -> StripeIntegrationError:
        error = exc.error
        param = getattr(error, "param", None) if error else None
        failure = StripeIntegrationError(
            what, exc.code or type(exc).__name__, redact(exc.user_message or str(exc)),
            param=param, http_status=exc.http_status, request_id=exc.request_id)
        log.error("stripe rejected our request: merchant integration error", extra={
            "operation": what, "code": failure.code, "param": param,
            "http_status": exc.http_status, "stripe_request_id": exc.request_id,
            "stripe_version": self.config.api_version, "detail": failure.message})
        return failure

    async def _call(self, what: str, coro: Any, *, token_param: str | None = None) -> Any:
        """``token_param``: a 400 about this parameter is about the buyer's token (expired,
        consumed, over its allowance) — a decline, not an integration error."""
        try:
            return await coro
        except stripe.CardError as exc:
            err = exc.error
            pi = getattr(err, "payment_intent", None) if err else None
            raise StripeCardDeclined(
                exc.code, getattr(err, "decline_code", None) if err else None,
                exc.user_message or "The card was declined.",
                pi.get("id") if isinstance(pi, dict) else getattr(pi, "id", None)) from None
        except (stripe.AuthenticationError, stripe.PermissionError) as exc:
            raise self._integration_error(what, exc) from None
        except (stripe.APIConnectionError, stripe.RateLimitError) as exc:
            log.warning("stripe unavailable", extra={"operation": what,
                                                     "error": type(exc).__name__,
                                                     "stripe_request_id": exc.request_id})
            raise PaymentUnavailable(f"stripe {what}: {type(exc).__name__}") from None
        except stripe.IdempotencyError as exc:
            # Same key, different parameters: our bug. Never retry blindly; make it loud.
            raise self._integration_error(what, exc) from None
        except stripe.InvalidRequestError as exc:
            if exc.http_status == 409:  # a concurrent request with the same key: retry
                raise PaymentUnavailable(f"stripe {what}: {exc.code or 'conflict'}") from None
            param = getattr(exc.error, "param", None) if exc.error else None
            if token_param is not None:  # a charge: only the token itself is the buyer's
                if param and param.startswith(token_param) and \
                        exc.code not in _INTEGRATION_CODES:
                    raise StripeRequestRejected(exc.code, redact(exc.user_message or str(exc))
                                                ) from None
                raise self._integration_error(what, exc) from None
            if exc.code in _INTEGRATION_CODES:
                raise self._integration_error(what, exc) from None
            raise StripeRequestRejected(exc.code, redact(exc.user_message or str(exc))) \
                from None
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
            # Dynamic payment methods, confirmed server-side with no buyer page to return
            # to. Valid on the SPT preview and on the pinned version (``payment_method_types``
            # is not: 400 payment_method_types_no_longer_supported since 2026-08-26).
            "automatic_payment_methods": {"enabled": True, "allow_redirects": "never"},
            "capture_method": "manual" if self.config.manual_capture else "automatic_async",
            "metadata": metadata,
        }
        options: dict[str, Any] = {"idempotency_key": idempotency_key,
                                   "stripe_version": self.charge_api_version}
        if token.startswith("tok_"):
            # A card token from a wallet's gateway tokenization (Google Pay through UCP,
            # ``gateway: stripe``): a card PaymentMethod made from the token, on the pinned
            # API version (no shared-payment-token preview involved).
            params["payment_method_data"] = {"type": "card", "card": {"token": token}}
            options["stripe_version"] = self.config.api_version
        else:
            params.update(_nest(self.config.spt_param, token))
        return await self._call("create_payment_intent",
                                self.client.v1.payment_intents.create_async(
                                    params, options),  # type: ignore[arg-type]
                                token_param=self._token_param)

    @property
    def charge_api_version(self) -> str:
        """The Stripe-Version of payment (SPT) requests, recorded on every attempt."""
        return self.config.spt_api_version or self.config.api_version

    @property
    def _token_param(self) -> str:
        head, _, rest = self.config.spt_param.partition(".")
        return f"{head}[{rest}]" if rest else head

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
        options: dict[str, Any] = {"idempotency_key": idempotency_key,
                                   "stripe_version": self.charge_api_version}
        return await self._call("confirm_payment_intent",
                                self.client.v1.payment_intents.confirm_async(
                                    payment_intent_id, params, options),  # type: ignore[arg-type]
                                token_param=self._token_param)

    async def create_refund(self, *, payment_intent_id: str, amount: int, idempotency_key: str,
                            reason: str | None, metadata: dict[str, str]) -> stripe.Refund:
        params: dict[str, Any] = {"payment_intent": payment_intent_id, "amount": amount,
                                  "metadata": metadata}
        if reason in ("duplicate", "fraudulent", "requested_by_customer"):
            params["reason"] = reason
        return await self._call("create_refund", self.client.v1.refunds.create_async(
            params, {"idempotency_key": idempotency_key}))  # type: ignore[arg-type]

    async def list_refunds(self, *, charge_id: str | None = None,
                           payment_intent_id: str | None = None) -> list[dict[str, Any]]:
        """Every Refund of a charge (a Charge no longer embeds them since 2022-11-15)."""
        params: dict[str, Any] = {"limit": 100}
        if charge_id:
            params["charge"] = charge_id
        if payment_intent_id:
            params["payment_intent"] = payment_intent_id
        page = await self._call("list_refunds", self.client.v1.refunds.list_async(
            params))  # type: ignore[arg-type]
        return [r.to_dict() async for r in page.auto_paging_iter()]

    async def capture_payment_intent(self, payment_intent_id: str, *, amount: int | None,
                                     idempotency_key: str) -> stripe.PaymentIntent:
        params: dict[str, Any] = {} if amount is None else {"amount_to_capture": amount}
        return await self._call("capture_payment_intent",
                                self.client.v1.payment_intents.capture_async(
                                    payment_intent_id, params,  # type: ignore[arg-type]
                                    {"idempotency_key": idempotency_key}))

    async def cancel_payment_intent(self, payment_intent_id: str, *, idempotency_key: str
                                    ) -> stripe.PaymentIntent:
        return await self._call("cancel_payment_intent",
                                self.client.v1.payment_intents.cancel_async(
                                    payment_intent_id, {},
                                    {"idempotency_key": idempotency_key}))

    async def retrieve_payment_intent(self, payment_intent_id: str) -> stripe.PaymentIntent:
        return await self._call("retrieve_payment_intent",
                                self.client.v1.payment_intents.retrieve_async(
                                    payment_intent_id))

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
