from __future__ import annotations

from models.errors import InvalidRequest, NotFound


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
