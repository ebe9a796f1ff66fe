"""Validate payloads against the official ACP JSON Schema bundles (draft 2020-12).

The spec lives beside the project in ``../shared/acp-spec`` (or ``REELCART_ACP_SPEC_DIR``).
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


def spec_dir() -> Path:
    configured = os.environ.get("REELCART_ACP_SPEC_DIR")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parent.parent.parent / "shared" / "acp-spec"


def require_spec() -> Path:
    root = spec_dir()
    if not (root / "spec" / VERSION).is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"ACP spec not found at {root}")
        pytest.skip(f"ACP spec not found at {root} (set REELCART_ACP_SPEC_DIR)")
    return root


@cache
def _bundles() -> tuple[dict[str, Any], Registry]:
    root = require_spec() / "spec" / VERSION / "json-schema"
    bundles = {p.name: json.loads(p.read_text()) for p in sorted(root.glob("schema.*.json"))}
    pairs = []
    for name, bundle in bundles.items():
        resource = Resource.from_contents(bundle, default_specification=DRAFT202012)
        pairs.append((bundle["$id"], resource))
        for other in bundles.values():
            pairs.append((urllib.parse.urljoin(other["$id"], name), resource))
    return bundles, Registry().with_resources(pairs)


@cache
def validator(name: str, bundle: str = "schema.agentic_checkout.json") -> Draft202012Validator:
    bundles, registry = _bundles()
    return Draft202012Validator({"$ref": f"{bundles[bundle]['$id']}#/$defs/{name}"},
                                registry=registry, format_checker=FormatChecker())


def assert_valid(payload: Any, name: str, bundle: str = "schema.agentic_checkout.json") -> None:
    errors = sorted(validator(name, bundle).iter_errors(payload), key=lambda e: list(e.path))
    if errors:
        details = "\n".join(f"  at {'/'.join(map(str, e.path)) or '<root>'}: {e.message[:300]}"
                            for e in errors[:10])
        raise AssertionError(f"payload is not a valid ACP {name}:\n{details}")


def examples() -> dict[str, Any]:
    path = require_spec() / "examples" / VERSION / "examples.agentic_checkout.json"
    data: dict[str, Any] = json.loads(path.read_text())
    return data
