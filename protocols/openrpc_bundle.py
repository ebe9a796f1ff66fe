"""OpenRPC methods as MCP tool ``inputSchema``s: what the ACP and UCP MCP bindings share.

Both specs describe their MCP tools in an OpenRPC document whose param schemas point into
JSON Schema documents by ``$ref``; an MCP tool needs one self-contained schema. So each
tool's ``inputSchema`` is an object with the method's params as properties (required as
the method says) and every schema the params reach copied under ``$defs``. What a ``$ref``
names differs by spec (ACP: entries of one bundle's ``$defs``; UCP: whole documents by
``$id``), so the bindings pass how to load a schema and which refs in it to follow; the
walk, the closure and the assembly are here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

Json = dict[str, Any]


def load(path: Path) -> Json:
    document: Json = json.loads(path.read_text())
    return document


def method(document: Json, name: str) -> Json:
    """The OpenRPC method ``name`` (a shallow copy)."""
    for entry in document["methods"]:
        if entry["name"] == name:
            return dict(entry)
    raise KeyError(name)


def refs(node: Any, follow: Callable[[str], str | None]) -> set[str]:
    """Every ``$ref`` under ``node`` that ``follow`` maps to a schema key (None: not one
    to follow)."""
    found: set[str] = set()
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            key = follow(ref)
            if key is not None:
                found.add(key)
        for value in node.values():
            found |= refs(value, follow)
    elif isinstance(node, list):
        for value in node:
            found |= refs(value, follow)
    return found


def reachable(roots: Iterable[str], load_schema: Callable[[str], Json],
              refs_in: Callable[[str, Json], set[str]]) -> dict[str, Json]:
    """The schemas ``roots`` reach, each loaded once by ``load_schema(key)`` and followed
    through ``refs_in(key, schema)``, sorted by key."""
    out: dict[str, Json] = {}
    pending = list(roots)
    while pending:
        key = pending.pop()
        if key in out:
            continue
        out[key] = load_schema(key)
        pending.extend(refs_in(key, out[key]) - out.keys())
    return dict(sorted(out.items()))


def input_schema(entry: Json, param_schema: Callable[[Json], Json], defs: Json) -> Json:
    """An OpenRPC method's params as one object schema: ``param_schema(param)`` is each
    param's property (it may add what it reaches to ``defs``), ``defs`` goes under
    ``$defs`` if anything is in it."""
    properties: Json = {}
    required: list[str] = []
    for param in entry["params"]:
        properties[param["name"]] = param_schema(param)
        if param.get("required"):
            required.append(param["name"])
    schema: Json = {"type": "object", "properties": properties, "required": required}
    if defs:
        schema["$defs"] = defs
    return schema
