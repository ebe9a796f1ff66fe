"""The error base every domain raises. ``api.errors`` renders it in the ACP flat shape.

ACP's ``Error.type`` is a closed enum: ``invalid_request`` | ``processing_error`` |
``service_unavailable``. The HTTP status and the ``code`` carry the detail.
"""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    status_code: int = 400
    type: str = "invalid_request"
    code: str = "invalid_request"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        status_code: int | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status_code is not None:
            self.status_code = status_code
        self.param = param
        self.headers = headers or {}
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"type": self.type, "code": self.code, "message": self.message}
        if self.param is not None:
            body["param"] = self.param
        body.update(self.extra)
        return body


class InvalidRequest(AppError):
    status_code = 400


class Unauthorized(AppError):
    status_code = 401
    code = "unauthorized"

    def __init__(self, message: str = "A valid bearer API key is required.", **kw: Any) -> None:
        kw.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(message, **kw)


class NotFound(AppError):
    status_code = 404
    code = "not_found"


class MethodNotAllowed(AppError):
    status_code = 405
    code = "method_not_allowed"


class Conflict(AppError):
    status_code = 409
    code = "conflict"


class ServiceUnavailable(AppError):
    status_code = 503
    type = "service_unavailable"
    code = "service_unavailable"


class ProcessingError(AppError):
    status_code = 500
    type = "processing_error"
    code = "processing_error"
