"""The dashboard's refund form, pure: an amount typed in major units becomes minor units
exactly (``Decimal``, the currency's exponent), and every refusal is worded in the order's
currency (``19.99 USD``), never in raw cents."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from models.money import currency_exponent, format_minor
from orders.disputes import CLOSED

AMOUNT = re.compile(r"\+?(\d{1,16}(\.\d*)?|\.\d+)")


class RefundRefused(ValueError):
    """Why the form cannot refund (a sentence for the merchant)."""


@dataclass(frozen=True, slots=True)
class RefundPlan:
    amount: int  # minor units
    currency: str
    refundable: int
    reason: str

    @property
    def amount_text(self) -> str:
        return format_minor(self.amount, self.currency)

    @property
    def major(self) -> str:
        """The amount as the form field carries it on the confirmation step (``19.99``)."""
        return self.amount_text.split(" ")[0]

    @property
    def remaining_text(self) -> str:
        return format_minor(self.refundable - self.amount, self.currency)

    @property
    def full(self) -> bool:
        return self.amount == self.refundable


def parse_amount(text: str, currency: str) -> int:
    """``'19.99'``, ``'USD'`` → ``1999``. Empty, negative, zero, non-numeric or too precise
    input is refused: the form never guesses an amount."""
    raw = text.strip().replace(",", "")
    code = currency.upper()
    if raw.upper().endswith(code):
        raw = raw[: -len(code)].strip()
    if not raw:
        raise RefundRefused("Enter the amount to refund, e.g. "
                            f"{format_minor(10 ** currency_exponent(currency), currency)}.")
    if raw.startswith("-"):
        raise RefundRefused("The refund amount must be more than zero.")
    if not AMOUNT.fullmatch(raw):
        raise RefundRefused(f"“{text.strip()[:30]}” is not an amount in {code}.")
    try:
        value = Decimal(raw)
    except InvalidOperation:  # pragma: no cover - the pattern admits only decimals
        raise RefundRefused(f"“{text.strip()[:30]}” is not an amount in {code}.") from None
    exponent = currency_exponent(currency)
    minor = value.scaleb(exponent)
    if minor != minor.to_integral_value():
        raise RefundRefused(f"{code} has {exponent} decimal places"
                            f"{'' if exponent else ' (whole amounts only)'}.")
    if minor <= 0:
        raise RefundRefused("The refund amount must be more than zero.")
    if minor > 10**15:
        raise RefundRefused("That amount is too large.")
    return int(minor)


def blocked(order: dict[str, Any]) -> str | None:
    """Why nothing can be refunded now (the button is disabled with this text), or None."""
    open_disputes = [d for d in order.get("disputes") or [] if d["status"] not in CLOSED]
    if open_disputes or order.get("payment_status") == "disputed":
        return "A dispute is open: the disputed funds are already held; refund after it closes."
    if int(order.get("refundable_amount") or 0) <= 0:
        return "Nothing left to refund."
    return None


def plan(order: dict[str, Any], amount_text: str, reason: str) -> RefundPlan:
    """Check a requested refund against the order (``merchant_order_json``)."""
    why = blocked(order)
    if why:
        raise RefundRefused(why)
    currency = str(order["currency"])
    amount = parse_amount(amount_text, currency)
    refundable = int(order["refundable_amount"])
    if amount > refundable:
        raise RefundRefused(f"{format_minor(amount, currency)} is more than the "
                            f"{format_minor(refundable, currency)} left to refund.")
    return RefundPlan(amount, currency, refundable, reason)
