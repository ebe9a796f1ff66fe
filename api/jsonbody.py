"""Limits every JSON request body must respect, checked once before any route sees it.

JSON itself bounds neither nesting nor numbers, but what we do with a body does: orjson
(our serializer) stops at 255 levels and 64-bit integers, PostgreSQL ``BIGINT`` at 2^63,
Python at its recursion limit. A body past these limits is refused up front with an
ACP-shaped 400 naming the offending place (``param``), instead of failing somewhere deep
inside as a 500. Bodies must be UTF-8 (RFC 8259 §8.1): a UTF-16 body is refused too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

MAX_DEPTH = 64
INT_MIN, INT_MAX = -(2**63), 2**63 - 1
_MAX_INT_DIGITS = 20


@dataclass(frozen=True, slots=True)
class JsonProblem:
    code: str
    message: str
    param: str | None = None

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "invalid_request", "code": self.code,
                               "message": self.message}
        if self.param is not None:
            out["param"] = self.param
        return out


class BadJson(ValueError):
    def __init__(self, problem: JsonProblem) -> None:
        super().__init__(problem.message)
        self.problem = problem


class _TooLong:
    """An integer literal too long to be in range (never converted: Python caps that)."""


def _parse_int(text: str) -> int | _TooLong:
    return int(text) if len(text.lstrip("-")) <= _MAX_INT_DIGITS else _TooLong()


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _path(parts: list[str | int]) -> str:
    out = "$"
    for part in reversed(parts):
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _find(value: Any, depth: int) -> tuple[str, list[str | int]] | None:
    if isinstance(value, dict | list):
        if depth >= MAX_DEPTH:
            return "json_too_deep", []
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, child in items:
            if isinstance(child, dict | list | int | _TooLong):
                found = _find(child, depth + 1)
                if found is not None:
                    found[1].append(key)
                    return found
        return None
    if isinstance(value, _TooLong) or (
            isinstance(value, int) and not isinstance(value, bool)
            and not INT_MIN <= value <= INT_MAX):
        return "integer_out_of_range", []
    return None


def parse(raw: bytes, *, exact_numbers: bool = False) -> Any:
    """The body as JSON; raises :class:`BadJson` (a ``ValueError``) with the problem.
    ``exact_numbers``: numbers with a fraction or exponent as ``Decimal`` (as
    ``idempotency.canonical`` reads them), not ``float``."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadJson(JsonProblem("invalid_json", "The request body must be UTF-8 JSON.")
                         ) from None
    try:
        value = json.loads(text, parse_int=_parse_int, parse_constant=_no_constants,
                           parse_float=Decimal if exact_numbers else None)
    except RecursionError:
        raise BadJson(JsonProblem(
            "json_too_deep", f"JSON may nest at most {MAX_DEPTH} levels.")) from None
    except ValueError:
        raise BadJson(JsonProblem("invalid_json", "The request body is not valid JSON.")
                         ) from None
    found = _find(value, 0)
    if found is None:
        return value
    code, parts = found
    where = _path(parts)
    if code == "json_too_deep":
        raise BadJson(JsonProblem(code, f"JSON may nest at most {MAX_DEPTH} levels.",
                                     where))
    raise BadJson(JsonProblem(code, "Integers must be between -2^63 and 2^63-1.", where))


def problem(raw: bytes) -> JsonProblem | None:
    """What is wrong with a JSON body, or None (an empty body is the route's business)."""
    return check(raw)[0]


def check(raw: bytes) -> tuple[JsonProblem | None, ParsedBody | None]:
    """``problem`` and, for a sound non-empty body, the body as parsed (``ParsedBody``),
    so that the request's hash needs no second parse."""
    if not raw.strip():
        return None, None
    try:
        value = parse(raw, exact_numbers=True)
    except BadJson as exc:
        return exc.problem, None
    return None, ParsedBody(raw, value)


@dataclass(frozen=True, slots=True)
class ParsedBody:
    """A request body the middleware checked, and its JSON value with exact numbers (what
    ``idempotency.canonical.canonical_json`` would parse from it: ints within range,
    ``Decimal`` for the rest, no NaN). Kept in the ASGI scope's state under ``STATE_KEY``
    for the idempotency hash; nothing else reads or changes the value."""

    raw: bytes
    value: Any

    def value_of(self, body: bytes) -> Any:
        """The parsed value if ``body`` is the body checked, else ``NOT_PARSED``."""
        return self.value if body == self.raw else NOT_PARSED


NOT_PARSED = object()
STATE_KEY = "reelcart.parsed_body"
