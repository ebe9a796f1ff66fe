"""The UCP MCP binding's tool input schemas (checkout-mcp.md, order-mcp.md,
``mcp.openrpc.json``).

The OpenRPC document and the JSON Schemas are carried unchanged under ``spec/2026-04-08``
(Apache 2.0, see its LICENSE and NOTICE). A tool's ``inputSchema`` is one self-contained
JSON Schema (2020-12 bundling): its params as properties (``meta`` from the OpenRPC
components, ``id``, ``checkout``) and every schema document the payload reaches embedded
under ``$defs`` with its own ``$id``, so the documents' relative ``$ref``s keep resolving.
The walk and the assembly are shared with the ACP binding (``protocols.openrpc_bundle``).

The checkout schema is the response shape annotated with ``ucp_request`` (per operation:
``omit`` / ``optional`` / ``required``); the request schema of ``create`` / ``update`` /
``complete`` is that shape with the annotations applied (omitted fields dropped, required
ones required), as the spec's schema tooling resolves them. The tool's payload is the
checkout with the extensions we negotiate (fulfillment, discount).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urldefrag, urljoin

from jsonschema import Draft202012Validator

from protocols import openrpc_bundle
from protocols.ucp import UCP_VERSION

Json = dict[str, Any]
SPEC_DIR = Path(__file__).resolve().parent / "spec" / UCP_VERSION
BASE = "https://ucp.dev/schemas/"
OPENRPC_REF = "../../schemas/shopping/checkout.json"
# The checkout payload: the base schema composed with the extensions we offer.
CHECKOUT_ROOTS = (BASE + "shopping/fulfillment.json#/$defs/dev.ucp.shopping.checkout",
                  BASE + "shopping/discount.json#/$defs/dev.ucp.shopping.checkout")
TOOLS = ("create_checkout", "get_checkout", "update_checkout", "complete_checkout",
         "cancel_checkout", "get_order")
OPERATION = {"create_checkout": "create", "update_checkout": "update",
             "complete_checkout": "complete"}


@cache
def openrpc() -> Json:
    return openrpc_bundle.load(SPEC_DIR / "services" / "shopping" / "mcp.openrpc.json")


@cache
def _documents() -> dict[str, Json]:
    """Every carried schema document by its ``$id``."""
    root = SPEC_DIR / "schemas"
    out: dict[str, Json] = {}
    for path in sorted(root.rglob("*.json")):
        document = openrpc_bundle.load(path)
        out[document.get("$id") or BASE + path.relative_to(root).as_posix()] = document
    return out


def _mode(annotation: Any, operation: str) -> str | None:
    if isinstance(annotation, str):
        return annotation
    if isinstance(annotation, dict):
        value = annotation.get(operation)
        return value if isinstance(value, str) else None
    return None


def for_operation(node: Any, operation: str) -> Any:
    """``node`` with its ``ucp_request`` annotations applied for ``operation``."""
    if isinstance(node, list):
        return [for_operation(item, operation) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: for_operation(value, operation) for key, value in node.items()
           if key != "ucp_request"}
    properties = node.get("properties")
    if isinstance(properties, dict):
        required = list(node.get("required") or [])
        kept: Json = {}
        for name, schema in properties.items():
            mode = _mode(schema.get("ucp_request"), operation) \
                if isinstance(schema, dict) else None
            if mode == "omit":
                required = [r for r in required if r != name]
                continue
            if mode == "required" and name not in required:
                required.append(name)
            elif mode == "optional":
                required = [r for r in required if r != name]
            kept[name] = for_operation(schema, operation)
        out["properties"] = kept
        if required:
            out["required"] = required
        else:
            out.pop("required", None)
    return out


def _documents_from(uri: str) -> Callable[[str], str | None]:
    """The document a ``$ref`` inside the document ``uri`` names (local refs: none)."""
    def follow(ref: str) -> str | None:
        return None if ref.startswith("#") else urldefrag(urljoin(uri, ref)).url
    return follow


def bundle(roots: tuple[str, ...], operation: str) -> Json:
    """Every document reachable from ``roots`` (absolute refs), annotations applied, keyed
    by a readable name for ``$defs``."""
    documents = _documents()

    def load(uri: str) -> Json:
        document: Json = for_operation(copy.deepcopy(documents[uri]), operation)
        document.setdefault("$id", uri)
        return document

    found = openrpc_bundle.reachable(
        [urldefrag(r).url for r in roots], load,
        lambda uri, document: openrpc_bundle.refs(document, _documents_from(uri)))
    return {uri.removeprefix(BASE).removesuffix(".json").replace("/", "."): document
            for uri, document in found.items()}


def _meta(name: str) -> Json:
    entry = method(name)
    schema = next(p["schema"] for p in entry["params"] if p["name"] == "meta")
    meta: Json = copy.deepcopy(openrpc()["components"]["schemas"]["meta"])
    extra_required: list[str] = []
    for part in schema.get("allOf", []):
        extra_required += part.get("required", [])
    meta["required"] = sorted({*meta.get("required", []), *extra_required})
    # Same idempotency rules as UCP REST: any 1-255 character key (a UUID is advised).
    meta["properties"]["idempotency-key"] = {
        **meta["properties"]["idempotency-key"], "minLength": 1, "maxLength": 255}
    return meta


def method(name: str) -> Json:
    return openrpc_bundle.method(openrpc(), name)


@cache
def input_schema(name: str) -> Json:
    """The bundled ``inputSchema`` of one UCP tool (treat as read-only)."""
    defs: Json = {}

    def param_schema(param: Json) -> Json:
        if param["name"] == "meta":
            return _meta(name)
        if param["schema"].get("$ref") == OPENRPC_REF:
            defs.update(bundle(CHECKOUT_ROOTS, OPERATION[name]))
            return {"allOf": [{"$ref": ref} for ref in CHECKOUT_ROOTS]}
        return copy.deepcopy(param["schema"])

    return openrpc_bundle.input_schema(method(name), param_schema, defs)


@cache
def validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(input_schema(name))
