from __future__ import annotations

from models.errors import InvalidRequest


class InvalidFulfillment(InvalidRequest):
    code = "invalid_fulfillment"
