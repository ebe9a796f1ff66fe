from __future__ import annotations

from models.errors import AppError, Conflict, InvalidRequest, MethodNotAllowed, NotFound


class CheckoutSessionNotFound(NotFound):
    code = "checkout_session_not_found"

    def __init__(self, session_id: str) -> None:
        super().__init__(f"Checkout session {session_id!r} does not exist.")


class CheckoutSessionClosed(MethodNotAllowed):
    """Completed, canceled or expired sessions accept no further changes (ACP: 405)."""

    def __init__(self, session_id: str, status: str, action: str) -> None:
        super().__init__(
            f"Checkout session {session_id} is {status}; it cannot be {action}.",
            code=f"checkout_session_{status}",
        )


class CheckoutInProgress(Conflict):
    code = "checkout_in_progress"

    def __init__(self, session_id: str) -> None:
        super().__init__(
            f"A payment for checkout session {session_id} is being processed; retry shortly.",
            headers={"Retry-After": "1"},
        )


class InvalidItem(InvalidRequest):
    code = "invalid_item_id"


class QuantityTooLarge(InvalidRequest):
    """Lines repeating an item id are merged; their sum has the single line's cap."""
    code = "invalid_value"


class UnsupportedCurrency(InvalidRequest):
    code = "unsupported_currency"


class RequiresAuthentication(InvalidRequest):
    code = "requires_3ds"

    def __init__(self) -> None:
        super().__init__(
            "This checkout session requires issuer authentication. Call complete again with "
            "'authentication_result' from the 3-D Secure flow.",
            param="$.authentication_result",
        )


class InvalidPaymentData(InvalidRequest):
    code = "invalid_payment_data"


__all__ = [
    "AppError",
    "CheckoutInProgress",
    "CheckoutSessionClosed",
    "CheckoutSessionNotFound",
    "InvalidItem",
    "InvalidPaymentData",
    "QuantityTooLarge",
    "RequiresAuthentication",
    "UnsupportedCurrency",
]
