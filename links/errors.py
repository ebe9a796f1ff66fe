from __future__ import annotations

from models.errors import InvalidRequest, NotFound


class LinkNotFound(NotFound):
    code = "link_not_found"

    def __init__(self, code: str) -> None:
        super().__init__(f"Shoppable link {code!r} does not exist.", param="$.code")


class InvalidLink(InvalidRequest):
    code = "invalid_link"
