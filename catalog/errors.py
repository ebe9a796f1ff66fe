from __future__ import annotations

from models.errors import InvalidRequest, NotFound


class InvalidCursor(InvalidRequest):
    code = "invalid_cursor"

    def __init__(self) -> None:
        super().__init__("The cursor is not valid; pass next_cursor from the previous page.",
                         param="$.cursor")


class InvalidFilter(InvalidRequest):
    code = "invalid_value"


class ProductNotFound(NotFound):
    code = "product_not_found"

    def __init__(self, product_id: str) -> None:
        super().__init__(f"Product {product_id!r} does not exist.", param="$.product_id")
