"""Canonical JSON and the request hash idempotency compares (also what request signatures
sign): key order and whitespace do not matter; ``1.0`` equals ``1``; array order does."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from typing import Any


def _normalise(value: Any) -> Any:
    if isinstance(value, Decimal):
        if value == value.to_integral_value():
            return int(value)
        return float(value)  # only for signing/hash text, never for money
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    return value


def canonical_json(body: bytes) -> bytes:
    """Key order and whitespace do not matter; ``1.0`` equals ``1``; array order does."""
    if not body.strip():
        return b""
    return canonical_of(json.loads(body, parse_float=Decimal))


def canonical_of(parsed: Any) -> bytes:
    """``canonical_json`` of a body already parsed (``parse_float=Decimal``)."""
    return json.dumps(_normalise(parsed), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode()


def request_hash(body: bytes) -> str:
    return hashlib.sha256(canonical_json(body)).hexdigest()


def parsed_hash(parsed: Any) -> str:
    """``request_hash`` of a non-empty body already parsed (``parse_float=Decimal``)."""
    return hashlib.sha256(canonical_of(parsed)).hexdigest()


def value_hash(value: Any) -> str:
    """``request_hash`` of an already-parsed JSON value (e.g. MCP tool arguments)."""
    return request_hash(json.dumps(value, ensure_ascii=False).encode())
