"""One place renders every error in the ACP flat shape: {type, code, message, param}."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from models.errors import AppError

log = logging.getLogger("reelcart.errors")


def error_response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None
                   ) -> Response:
    return Response(orjson.dumps(body), status_code=status, headers=headers,
                    media_type="application/json")


def json_path(loc: tuple[Any, ...]) -> str:
    path = "$"
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


_CODE_BY_PYDANTIC_TYPE = {
    "missing": "missing_required_field",
    "json_invalid": "invalid_json",
    "model_attributes_type": "invalid_type",
    "dict_type": "invalid_type",
    "list_type": "invalid_type",
    "string_type": "invalid_type",
    "int_type": "invalid_type",
    "int_parsing": "invalid_type",
    "bool_type": "invalid_type",
    "literal_error": "invalid_value",
}


async def _app_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, AppError)
    return error_response(exc.status_code, exc.body(), exc.headers)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first = errors[0] if errors else {"type": "invalid", "loc": (), "msg": "Invalid request"}
    loc = tuple(first.get("loc", ()))
    if loc and loc[0] == "body":
        loc = loc[1:]
    code = _CODE_BY_PYDANTIC_TYPE.get(str(first.get("type")), "invalid_value")
    if code == "invalid_json":
        message = "The request body is not valid JSON."
    else:
        where = json_path(loc) if loc else "the request"
        message = f"{where}: {first.get('msg', 'invalid value')}"
        if len(errors) > 1:
            message += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    body: dict[str, Any] = {"type": "invalid_request", "code": code, "message": message}
    if loc and code != "invalid_json":
        body["param"] = json_path(loc)
    if request.url.path.startswith("/ucp/"):  # UCP: the spec's error_response
        from protocols.ucp.errors import invalid

        return error_response(400, invalid(message, body.get("param"), code=code).body())
    return error_response(400, body)


async def _http_error(request: Request, exc: Exception) -> Response:
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


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
