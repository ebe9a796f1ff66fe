"""UCP errors. Protocol errors (overview.md "Error Handling") render as ``{code, content}``
with their HTTP status; failures about the request's content render as the spec's
``error_response`` (``ucp`` with status ``error``, ``messages[]``, ``continue_url``)."""

from __future__ import annotations

from typing import Any

from models.errors import AppError
from protocols.ucp import UCP_VERSION


class UcpError(AppError):
    """``messages``: render as an error_response; otherwise ``{code, content}``."""

    def __init__(self, status: int, code: str, content: str, *, path: str | None = None,
                 severity: str = "recoverable", as_messages: bool = False,
                 continue_url: str | None = None, headers: dict[str, str] | None = None
                 ) -> None:
        super().__init__(content, code=code, status_code=status, param=path, headers=headers)
        self.severity = severity
        self.as_messages = as_messages
        self.continue_url = continue_url

    def body(self) -> dict[str, Any]:
        if not self.as_messages:
            out: dict[str, Any] = {"code": self.code, "content": self.message}
        else:
            message: dict[str, Any] = {"type": "error", "code": self.code,
                                       "content": self.message, "severity": self.severity}
            if self.param:
                message["path"] = self.param
            out = {"ucp": {"version": UCP_VERSION, "status": "error"}, "messages": [message]}
        if self.continue_url:
            out["continue_url"] = self.continue_url
        return out


def invalid(content: str, path: str | None = None, code: str = "invalid") -> UcpError:
    return UcpError(400, code, content, path=path, as_messages=True)


def from_core(exc: AppError, continue_url: str | None = None) -> UcpError:
    """A core (ACP-shaped) error in UCP's shape and status conventions."""
    if isinstance(exc, UcpError):
        return exc
    path = exc.param
    if exc.status_code == 405:  # a completed / canceled session accepts no change
        return UcpError(409, "invalid_status", exc.message)
    if exc.status_code == 404:
        return UcpError(404, "not_found", exc.message, as_messages=True,
                        severity="unrecoverable")
    if exc.status_code in (409, 429, 503):
        return UcpError(exc.status_code, exc.code, exc.message, headers=exc.headers)
    if exc.code == "invalid_item_id" and exc.message.startswith("Unknown item id"):
        return UcpError(400, "item_unavailable",
                        exc.message.replace("Unknown item id", "Product not found:"), path=path,
                        as_messages=True, continue_url=continue_url)
    return UcpError(exc.status_code if exc.status_code < 500 else 500, exc.code, exc.message,
                    path=path, as_messages=exc.status_code < 500)
