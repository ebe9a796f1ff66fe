"""Errors on the MCP binding: JSON-RPC ``-32000`` with the ACP ``Error`` in ``data``.

The ACP ``Error`` is the one REST renders (``AppError.body()``); only ``param`` is moved to
where the field lives in the tool's arguments: a header becomes its ``meta`` field, a
JSONPath into the request body gains ``$.payload``, an unknown id points at ``$.id``.
"""

from __future__ import annotations

from typing import Any

from jsonschema import ValidationError as SchemaError
from mcp.shared.exceptions import MCPError

from models.errors import AppError

ACP_ERROR = -32000
_HEADER_PARAMS = {"API-Version": "$.meta.api_version",
                  "Idempotency-Key": "$.meta.idempotency_key",
                  "Signature": "$.meta.signature", "Timestamp": "$.meta.timestamp"}


def json_path(loc: tuple[Any, ...]) -> str:
    """RFC 9535 JSONPath of a location in the tool's arguments."""
    path = "$"
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def binding_param(param: str | None, code: str) -> str | None:
    if param is None:
        return "$.id" if code.endswith("not_found") else None
    if param in _HEADER_PARAMS:
        return _HEADER_PARAMS[param]
    if param == "$":
        return "$.payload"
    if param.startswith("$.") or param.startswith("$["):
        return "$.payload" + param[1:]
    return param


def acp_error(body: dict[str, Any], *, rebase: bool = True) -> MCPError:
    """An ACP ``Error`` body (fresh or replayed from the idempotency store) on the wire.
    ``rebase``: ``param`` is a REST one (header name or body JSONPath), not yet a path into
    the tool's arguments."""
    data = dict(body)
    param = binding_param(data.get("param"), str(data.get("code", ""))) if rebase \
        else data.get("param")
    if param is None:
        data.pop("param", None)
    else:
        data["param"] = param
    return MCPError(ACP_ERROR, str(data.get("message", "Request failed")), data)


def from_app_error(exc: AppError) -> MCPError:
    return acp_error(exc.body())


def from_schema_error(error: SchemaError) -> MCPError:
    """The first JSON Schema violation of a tool's arguments, as ``invalid_request``."""
    path = list(error.absolute_path)
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = next((f for f in error.validator_value if f not in error.instance), None)
        if missing is not None:
            path.append(missing)
        code = "missing_required_field"
        message = f"Missing required field: {json_path(tuple(path))}"
    else:
        code = "invalid_type" if error.validator == "type" else "invalid_value"
        message = f"{json_path(tuple(path))}: {error.message[:300]}"
    return acp_error({"type": "invalid_request", "code": code, "message": message,
                      "param": json_path(tuple(path))}, rebase=False)
