"""ACP's flat ``Error`` (``type``, ``code``, ``message``, ``param``) from request
validation problems. Domain errors (``models.errors.AppError``) already carry the status
and code; ``AppError.body()`` is the flat shape."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from models.errors import InvalidRequest

_CODE_BY_PYDANTIC_TYPE = {
    "missing": "missing_required_field",
    "json_invalid": "invalid_json",
    "model_attributes_type": "invalid_type",
    "model_type": "invalid_type",
    "dict_type": "invalid_type",
    "list_type": "invalid_type",
    "string_type": "invalid_type",
    "int_type": "invalid_type",
    "int_parsing": "invalid_type",
    "bool_type": "invalid_type",
    "literal_error": "invalid_value",
}


def json_path(loc: Sequence[Any]) -> str:
    path = "$"
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def from_validation_errors(errors: Sequence[Any]) -> InvalidRequest:
    """The first pydantic problem as a 400 with a JSONPath ``param`` (others counted)."""
    first = errors[0] if errors else {"type": "invalid", "loc": (), "msg": "Invalid request"}
    loc = tuple(first.get("loc", ()))
    if loc and loc[0] == "body":
        loc = loc[1:]
    code = _CODE_BY_PYDANTIC_TYPE.get(str(first.get("type")), "invalid_value")
    if code == "invalid_json":
        return InvalidRequest("The request body is not valid JSON.", code=code)
    where = json_path(loc) if loc else "the request"
    message = f"{where}: {first.get('msg', 'invalid value')}"
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return InvalidRequest(message, code=code, param=json_path(loc) if loc else None)
