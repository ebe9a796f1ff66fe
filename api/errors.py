"""One place renders every error in the ACP flat shape: {type, code, message, param}."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from models.errors import AppError, ServiceUnavailable
from protocols.acp.errors import from_validation_errors

log = logging.getLogger("reelcart.errors")


def error_response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None
                   ) -> Response:
    return Response(orjson.dumps(body), status_code=status, headers=headers,
                    media_type="application/json")


async def _app_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, AppError)
    return error_response(exc.status_code, exc.body(), exc.headers)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    error = from_validation_errors(exc.errors())
    if request.url.path.startswith("/ucp/"):  # UCP: the spec's error_response
        from protocols.ucp.errors import invalid

        return error_response(400, invalid(error.message, error.param, code=error.code).body())
    return error_response(error.status_code, error.body())


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    codes = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large",
             401: "unauthorized", 415: "unsupported_media_type"}
    code = codes.get(exc.status_code, "invalid_request")
    detail = exc.detail if isinstance(exc.detail, str) else "Request failed"
    if request.url.path.startswith("/ucp/"):  # UCP protocol errors: {code, content}
        return error_response(exc.status_code, {"code": code, "content": detail},
                              dict(exc.headers or {}))
    return error_response(exc.status_code, {"type": "invalid_request", "code": code,
                                            "message": detail}, dict(exc.headers or {}))


async def _unexpected(_: Request, exc: Exception) -> Response:
    log.exception("unhandled error", exc_info=exc)
    return error_response(500, {"type": "processing_error", "code": "internal_error",
                                "message": "An internal error occurred; it has been logged."})


async def _database_error(request: Request, exc: Exception) -> Response:
    """A pooled connection the database dropped (server restart, failover, an idle
    socket a firewall forgot): SQLAlchemy has invalidated the pool, so the next request
    reconnects. The statement ran in a transaction that died with the connection, so
    nothing was half-written and a retry is safe: a prompt 503 with Retry-After, not a
    500. Any other database error is unexpected."""
    assert isinstance(exc, DBAPIError)
    if not exc.connection_invalidated:
        return await _unexpected(request, exc)
    log.warning("database connection lost; the pool reconnects on the next request")
    return await _app_error(request, ServiceUnavailable(
        "The database connection was lost; retry the request.",
        code="database_unavailable", headers={"Retry-After": "1"}))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(DBAPIError, _database_error)
    app.add_exception_handler(Exception, _unexpected)
