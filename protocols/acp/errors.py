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
    """The first pydantic problem as a 400 with a JSONPath ``param``; the message names
    the first few problems (so every missing required field of a small body is named)
    and counts the rest."""
    errors = list(errors) or [{"type": "invalid", "loc": (), "msg": "Invalid request"}]
    code = _CODE_BY_PYDANTIC_TYPE.get(str(errors[0].get("type")), "invalid_value")
    if code == "invalid_json":
        return InvalidRequest("The request body is not valid JSON.", code=code)
    paths = [_where(e) for e in errors]
    shown = [f"{'The request body ($)' if path == '$' else path}: "
             f"{e.get('msg', 'invalid value')}"
             for path, e in zip(paths[:_NAMED], errors[:_NAMED], strict=True)]
    message = "; ".join(shown)
    if len(errors) > _NAMED:
        rest = len(errors) - _NAMED
        message += f" (and {rest} more problem{'s' if rest > 1 else ''})"
    return InvalidRequest(message, code=code, param=paths[0])


_NAMED = 3  # problems named in the message; the rest are counted


def _where(error: Any) -> str:
    """The problem's JSONPath in the request body (``$`` for the body itself)."""
    loc = tuple(error.get("loc", ()))
    if loc and loc[0] == "body":
        loc = loc[1:]
    return json_path(loc)
