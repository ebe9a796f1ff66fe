"""The ACP MCP binding's tool input schemas, bundled from the OpenRPC document.

The OpenRPC file (``spec/2026-04-17``, carried unchanged with the ACP licence) points at the
JSON Schema bundle through relative ``$ref``s; the binding says servers MUST resolve and
bundle them before serving tool schemas. Each tool's ``inputSchema`` is therefore one
self-contained object: its params as properties, the OpenRPC ``meta`` schema inline, and
every ``$defs`` entry the payload reaches copied from the bundle (refs inside the bundle are
``#/$defs/…`` already, so they stay valid).

One decision on top of the spec (issue 14): ``meta.idempotency_key`` is required on create,
update, complete and cancel, as ``Idempotency-Key`` is on REST.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

VERSION = "2026-04-17"
SPEC_DIR = Path(__file__).resolve().parent / "spec" / VERSION
BUNDLE_REF = "../json-schema/schema.agentic_checkout.json#/$defs/"
WRITE_TOOLS = frozenset({"create_checkout_session", "update_checkout_session",
                         "complete_checkout_session", "cancel_checkout_session"})

Json = dict[str, Any]


@cache
def openrpc() -> Json:
    document: Json = json.loads((SPEC_DIR / "openrpc.agentic_checkout.json").read_text())
    return document


@cache
def bundle() -> Json:
    document: Json = json.loads((SPEC_DIR / "schema.agentic_checkout.json").read_text())
    return document


def _refs(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            found.add(ref.removeprefix("#/$defs/"))
        for value in node.values():
            found |= _refs(value)
    elif isinstance(node, list):
        for value in node:
            found |= _refs(value)
    return found


def reachable_defs(root: str) -> dict[str, Any]:
    """``root`` and every ``$defs`` entry it reaches, copied from the bundle."""
    defs = bundle()["$defs"]
    out: dict[str, Any] = {}
    pending = [root]
    while pending:
        name = pending.pop()
        if name in out:
            continue
        out[name] = copy.deepcopy(defs[name])
        pending.extend(_refs(defs[name]) - out.keys())
    return dict(sorted(out.items()))


def _resolve(schema: Json, defs: dict[str, Any]) -> Json:
    """One OpenRPC param/result schema with its bundle ``$ref`` made local."""
    ref = schema.get("$ref", "")
    if ref.startswith(BUNDLE_REF):
        name = ref.removeprefix(BUNDLE_REF)
        defs.update(reachable_defs(name))
        return {"$ref": f"#/$defs/{name}"}
    if ref == "#/components/schemas/meta":
        return copy.deepcopy(openrpc()["components"]["schemas"]["meta"])
    return copy.deepcopy(schema)


def method(name: str) -> Json:
    for entry in openrpc()["methods"]:
        if entry["name"] == name:
            return dict(entry)
    raise KeyError(name)


@cache
def input_schema(name: str) -> Json:
    """The bundled ``inputSchema`` of one checkout tool (treat as read-only)."""
    entry = method(name)
    defs: dict[str, Any] = {}
    properties: Json = {}
    required: list[str] = []
    for param in entry["params"]:
        resolved = _resolve(param["schema"], defs)
        if "description" in param:
            resolved = {**resolved, "description": param["description"]}
        properties[param["name"]] = resolved
        if param.get("required"):
            required.append(param["name"])
    if name in WRITE_TOOLS:
        meta = properties["meta"]
        meta["required"] = [*meta["required"], "idempotency_key"]
        meta["properties"]["idempotency_key"] = {
            **meta["properties"]["idempotency_key"],
            "description": "Unique key for retry safety (1-255 chars, e.g. a UUID v4); "
                           "required here. Resend the same key with the same arguments to "
                           "retry safely. Maps to the Idempotency-Key header.",
            "minLength": 1, "maxLength": 255}
    schema: Json = {"type": "object", "properties": properties, "required": required}
    if defs:
        schema["$defs"] = dict(sorted(defs.items()))
    return schema


@cache
def validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(input_schema(name))
