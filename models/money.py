"""Money is an integer in minor units with an ISO 4217 currency beside it. Never a float."""

from __future__ import annotations

from dataclasses import dataclass

# ISO 4217 currencies whose minor unit is not 1/100.
ZERO_DECIMAL = frozenset(
    {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv",
     "xaf", "xof", "xpf"}
)
THREE_DECIMAL = frozenset({"bhd", "jod", "kwd", "omr", "tnd"})


def currency_exponent(currency: str) -> int:
    code = currency.lower()
    if code in ZERO_DECIMAL:
        return 0
    if code in THREE_DECIMAL:
        return 3
    return 2


def format_minor(amount: int, currency: str) -> str:
    """``1999, 'usd'`` → ``'19.99 USD'`` (the OpenAI feed's price format)."""
    exp = currency_exponent(currency)
    sign = "-" if amount < 0 else ""
    whole, frac = divmod(abs(amount), 10**exp) if exp else (abs(amount), 0)
    body = f"{whole}.{frac:0{exp}d}" if exp else f"{whole}"
    return f"{sign}{body} {currency.upper()}"


def parse_major(text: str, currency: str) -> int:
    """Parse ``'19.99'`` into minor units without going through float."""
    exp = currency_exponent(currency)
    raw = text.strip().replace(",", "")
    if not raw or raw.count(".") > 1:
        raise ValueError(f"not a price: {text!r}")
    negative = raw.startswith("-")
    raw = raw.lstrip("+-")
    whole, _, frac = raw.partition(".")
    if not (whole or frac) or not (whole + frac).isdigit():
        raise ValueError(f"not a price: {text!r}")
    if len(frac) > exp:
        if set(frac[exp:]) - {"0"}:
            raise ValueError(f"{text!r} has more decimals than {currency.upper()} allows")
        frac = frac[:exp]
    value = int(whole or "0") * 10**exp + int(frac.ljust(exp, "0") or "0")
    return -value if negative else value


@dataclass(frozen=True, slots=True)
class Money:
    amount: int
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.amount, int) or isinstance(self.amount, bool):
            raise TypeError("Money.amount must be an int in minor units")

    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise ValueError(f"currency mismatch: {self.currency} vs {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)


def apply_rate_bps(amount: int, rate_bps: int) -> int:
    """``amount × rate`` with the rate in basis points, rounded half up, in integers only."""
    numerator = amount * rate_bps
    quotient, remainder = divmod(numerator, 10_000)
    return quotient + (1 if remainder * 2 >= 10_000 else 0)
