"""Validate UCP payloads against the official 2026-04-08 JSON Schemas (draft 2020-12, in
``tests/spec/ucp-spec/source/schemas``, carried unchanged with the spec's Apache-2.0 LICENSE, or
``REELCART_UCP_SPEC_DIR``; registered locally under
their ``$id`` so ``$ref``s resolve offline) and against the official ``ucp-sdk`` models."""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from ucp_sdk.models.schemas.shopping import checkout as sdk_checkout
from ucp_sdk.models.schemas.shopping import order as sdk_order
from ucp_sdk.models.schemas.shopping.payment import Payment
from ucp_sdk.models.schemas.ucp import BusinessSchema

sdk_checkout.Checkout.model_rebuild(_types_namespace={"Payment": Payment})

BASE = "https://ucp.dev/schemas/"


def spec_dir() -> Path:
    configured = os.environ.get("REELCART_UCP_SPEC_DIR")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parent / "spec" / "ucp-spec"


def require_spec() -> Path:
    """The spec folder; missing is a failure (it ships with the tests), never a skip."""
    root = spec_dir()
    if not (root / "source" / "schemas").is_dir():
        pytest.fail(f"UCP spec not found at {root} (tests/spec/ucp-spec ships with the project; "
                    "REELCART_UCP_SPEC_DIR overrides it)")
    return root


@cache
def _registry() -> Registry:
    root = require_spec() / "source" / "schemas"
    pairs = []
    for path in sorted(root.rglob("*.json")):
        document = json.loads(path.read_text())
        resource = Resource.from_contents(document, default_specification=DRAFT202012)
        pairs.append((document.get("$id") or BASE + path.relative_to(root).as_posix(),
                      resource))
    return Registry().with_resources(pairs)


@cache
def _validator(ref: str) -> Draft202012Validator:
    return Draft202012Validator({"$ref": BASE + ref}, registry=_registry(),
                                format_checker=FormatChecker())


def _check(ref: str, payload: Any) -> None:
    validator = _validator(ref)
    errors = sorted(validator.iter_errors(payload), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])


def checkout(payload: dict[str, Any]) -> sdk_checkout.Checkout:
    """A checkout response: base schema, fulfillment and discount extensions, SDK model."""
    for ref in ("shopping/checkout.json",
                "shopping/fulfillment.json#/$defs/dev.ucp.shopping.checkout",
                "shopping/discount.json#/$defs/dev.ucp.shopping.checkout"):
        _check(ref, payload)
    return sdk_checkout.Checkout(**payload)


def order(payload: dict[str, Any]) -> sdk_order.Order:
    _check("shopping/order.json", payload)
    return sdk_order.Order(**payload)


def error_response(payload: dict[str, Any]) -> None:
    _check("shopping/types/error_response.json", payload)
    assert payload["ucp"]["status"] == "error", payload
    assert payload["messages"], payload


def business_profile(payload: dict[str, Any]) -> BusinessSchema:
    _check("ucp.json#/$defs/business_schema", payload["ucp"])
    return BusinessSchema(**payload["ucp"])
