"""Validate payloads against the official ACP JSON Schema bundles (draft 2020-12).

The spec is carried in ``tests/spec/acp-spec`` (unchanged copies with their Apache-2.0 LICENSE
and NOTICE; ``REELCART_ACP_SPEC_DIR`` points elsewhere, e.g. at a newer checkout).
Bundles are registered locally under their ``$id`` and under every sibling-relative alias
so cross-file ``$ref``s resolve without any network access.
"""

from __future__ import annotations

import json
import os
import urllib.parse
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

VERSION = "2026-04-17"
VERSIONS = ("2025-09-29", "2025-12-12", "2026-01-16", "2026-01-30", "2026-04-17")


def spec_dir() -> Path:
    configured = os.environ.get("REELCART_ACP_SPEC_DIR")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parent / "spec" / "acp-spec"


def require_spec() -> Path:
    """The spec folder; missing is a failure (it ships with the tests), never a skip."""
    root = spec_dir()
    if not (root / "spec" / VERSION).is_dir():
        pytest.fail(f"ACP spec not found at {root} (tests/spec/acp-spec ships with the project; "
                    "REELCART_ACP_SPEC_DIR overrides it)")
    return root


def _repair(version: str, name: str, bundle: dict[str, Any]) -> dict[str, Any]:
    """Two published defects of the 2025-09-29 bundle, repaired so it can validate at all:
    ``exclusiveMinimum: true`` (draft-04 style; draft 2020-12 wants a number) on
    ``Item.quantity``, and ``CheckoutSessionBase`` forbidding the ``order`` property that
    ``CheckoutSessionWithOrder`` requires (fixed upstream in 2025-12-12)."""
    if version != "2025-09-29" or name != "schema.agentic_checkout.json":
        return bundle
    defs = bundle["$defs"]
    quantity = defs["Item"]["properties"]["quantity"]
    if quantity.get("exclusiveMinimum") is True:
        quantity["exclusiveMinimum"] = quantity.pop("minimum", 0)
    defs["CheckoutSessionBase"]["properties"].setdefault("order", {"$ref": "#/$defs/Order"})
    return bundle


@cache
def _bundles(version: str = VERSION) -> tuple[dict[str, Any], Registry]:
    root = require_spec() / "spec" / version / "json-schema"
    bundles = {p.name: _repair(version, p.name, json.loads(p.read_text()))
               for p in sorted(root.glob("schema.*.json"))}
    pairs = []
    for name, bundle in bundles.items():
        resource = Resource.from_contents(bundle, default_specification=DRAFT202012)
        pairs.append((bundle["$id"], resource))
        for other in bundles.values():
            pairs.append((urllib.parse.urljoin(other["$id"], name), resource))
    return bundles, Registry().with_resources(pairs)


@cache
def validator(name: str, bundle: str = "schema.agentic_checkout.json",
              version: str = VERSION) -> Draft202012Validator:
    bundles, registry = _bundles(version)
    return Draft202012Validator({"$ref": f"{bundles[bundle]['$id']}#/$defs/{name}"},
                                registry=registry, format_checker=FormatChecker())


def assert_valid(payload: Any, name: str, bundle: str = "schema.agentic_checkout.json",
                 version: str = VERSION) -> None:
    errors = sorted(validator(name, bundle, version).iter_errors(payload),
                    key=lambda e: list(e.path))
    if errors:
        details = "\n".join(f"  at {'/'.join(map(str, e.path)) or '<root>'}: {e.message[:300]}"
                            for e in errors[:10])
        raise AssertionError(f"payload is not a valid ACP {version} {name}:\n{details}")


def examples(version: str = VERSION) -> dict[str, Any]:
    path = require_spec() / "examples" / version / "examples.agentic_checkout.json"
    data: dict[str, Any] = json.loads(path.read_text())
    return data
