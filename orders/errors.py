from __future__ import annotations

from models.errors import InvalidRequest, NotFound
from models.money import currency_exponent


def amount_text(amount: int, currency: str) -> str:
    """Minor units as people read them in a message: ``9999999, 'usd'`` →
    ``'99,999.99 USD'``; ``5000, 'jpy'`` → ``'5,000 JPY'`` (the currency's exponent)."""
    exp = currency_exponent(currency)
    sign = "-" if amount < 0 else ""
    whole, frac = divmod(abs(amount), 10**exp)
    return f"{sign}{whole:,}{f'.{frac:0{exp}d}' if exp else ''} {currency.upper()}"


class OrderNotFound(NotFound):
    code = "order_not_found"

    def __init__(self, order_id: str) -> None:
        super().__init__(f"Order {order_id!r} does not exist.")


class RefundNotAllowed(InvalidRequest):
    code = "refund_not_allowed"


class CaptureNotAllowed(InvalidRequest):
    code = "capture_not_allowed"


class AlreadyForwarded(InvalidRequest):
    code = "already_forwarded"
