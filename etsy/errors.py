"""Etsy failures, in the two families the callers act on (as for Shopify).

* ``EtsyUnavailable``: try again later (429, 5xx, network). ``ambiguous`` is True when the
  request may have been carried out (5xx or a lost answer after sending).
* ``EtsyRejected``: Etsy said no (4xx other than 429); retrying the same call will not help.
"""

from __future__ import annotations

from models.errors import AppError


class EtsyUnavailable(Exception):
    def __init__(self, message: str, *, ambiguous: bool, retry_after: float | None = None,
                 rate_limited: bool = False) -> None:
        super().__init__(message)
        self.ambiguous = ambiguous
        self.retry_after = retry_after
        self.rate_limited = rate_limited


class EtsyRejected(Exception):
    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class EtsyNotConnected(AppError):
    status_code = 409
    code = "etsy_not_connected"


class InvalidEtsySignature(AppError):
    status_code = 401
    code = "invalid_signature"
