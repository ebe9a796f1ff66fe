"""The ACP MCP binding's tool input schemas, bundled from the OpenRPC document.

The OpenRPC file (``spec/2026-04-17``, carried unchanged with the ACP licence) points at the
JSON Schema bundle through relative ``$ref``s; the binding says servers MUST resolve and
bundle them before serving tool schemas. Each tool's ``inputSchema`` is therefore one
self-contained object: its params as properties, the OpenRPC ``meta`` schema inline, and
every ``$defs`` entry the payload reaches copied from the bundle (refs inside the bundle are
``#/$defs/…`` already, so they stay valid). The walk and the assembly are shared with the
UCP binding (``protocols.openrpc_bundle``).

One decision on top of the spec (issue 14): ``meta.idempotency_key`` is required on create,
update, complete and cancel, as ``Idempotency-Key`` is on REST.
"""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from protocols import openrpc_bundle

VERSION = "2026-04-17"
SPEC_DIR = Path(__file__).resolve().parent / "spec" / VERSION
BUNDLE_REF = "../json-schema/schema.agentic_checkout.json#/$defs/"
LOCAL_REF = "#/$defs/"
WRITE_TOOLS = frozenset({"create_checkout_session", "update_checkout_session",
                         "complete_checkout_session", "cancel_checkout_session"})

Json = dict[str, Any]


@cache
def openrpc() -> Json:
    return openrpc_bundle.load(SPEC_DIR / "openrpc.agentic_checkout.json")


@cache
def bundle() -> Json:
    return openrpc_bundle.load(SPEC_DIR / "schema.agentic_checkout.json")


def _local(ref: str) -> str | None:
    return ref.removeprefix(LOCAL_REF) if ref.startswith(LOCAL_REF) else None


def reachable_defs(root: str) -> dict[str, Any]:
    """``root`` and every ``$defs`` entry it reaches, copied from the bundle."""
    defs = bundle()["$defs"]
    return openrpc_bundle.reachable(
        [root], lambda name: copy.deepcopy(defs[name]),
        lambda _name, schema: openrpc_bundle.refs(schema, _local))


def _resolve(schema: Json, defs: dict[str, Any]) -> Json:
    """One OpenRPC param/result schema with its bundle ``$ref`` made local."""
    ref = schema.get("$ref", "")
    if ref.startswith(BUNDLE_REF):
        name = ref.removeprefix(BUNDLE_REF)
        defs.update(reachable_defs(name))
        return {"$ref": f"{LOCAL_REF}{name}"}
    if ref == "#/components/schemas/meta":
        return copy.deepcopy(openrpc()["components"]["schemas"]["meta"])
    return copy.deepcopy(schema)


def method(name: str) -> Json:
    return openrpc_bundle.method(openrpc(), name)


@cache
def input_schema(name: str) -> Json:
    """The bundled ``inputSchema`` of one checkout tool (treat as read-only)."""
    defs: dict[str, Any] = {}

    def param_schema(param: Json) -> Json:
        resolved = _resolve(param["schema"], defs)
        if "description" in param:
            resolved = {**resolved, "description": param["description"]}
        return resolved

    schema = openrpc_bundle.input_schema(method(name), param_schema, defs)
    if name in WRITE_TOOLS:
        meta = schema["properties"]["meta"]
        meta["required"] = [*meta["required"], "idempotency_key"]
        meta["properties"]["idempotency_key"] = {
            **meta["properties"]["idempotency_key"],
            "description": "Unique key for retry safety (1-255 chars, e.g. a UUID v4); "
                           "required here. Resend the same key with the same arguments to "
                           "retry safely. Maps to the Idempotency-Key header.",
            "minLength": 1, "maxLength": 255}
    if defs:
        schema["$defs"] = dict(sorted(defs.items()))
    return schema


@cache
def validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(input_schema(name))
