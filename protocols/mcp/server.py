"""The merchant's MCP server: ``/mcp``, streamable HTTP, stateless, JSON responses.

Built on the official SDK's low-level ``Server`` (tool list and one ``tools/call`` handler
of our own, so ACP errors leave as JSON-RPC errors ``-32000`` with the ACP ``Error`` in
``data`` rather than as ``isError`` results). Every HTTP request is authenticated before the
SDK sees it, by the ``authenticate`` the composition root passes in (the agent's bearer key,
as on REST); the resulting ``Caller`` scopes sessions, idempotency and attribution exactly as
on REST. Stateless: the SDK keeps no session between requests and everything else is in the
database, so any process can answer any request.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import mcp_types as types
import orjson
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.shared.exceptions import MCPError
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from models.errors import AppError
from protocols.mcp import catalog_tools, checkout_tools, errors, openrpc
from protocols.mcp.caller import Caller
from protocols.mcp.checkout_tools import Outcome
from protocols.ucp import mcp_schemas as ucp_schemas
from protocols.ucp import mcp_tools as ucp_tools

log = logging.getLogger("reelcart.mcp")
PATH = "/mcp"
_CALLER = "reelcart.mcp.caller"
INSTRUCTIONS = (
    "ReelCart store tools. Find products with search_products (or from a video with "
    "list_shoppable_videos), then buy with the ACP checkout tools: create_checkout_session "
    "→ update_checkout_session (address, shipping option) → complete_checkout_session. "
    "Checkout tools take {meta, id, payload}; meta.api_version is \"2026-04-17\" and every "
    "create/update/complete/cancel needs a new meta.idempotency_key (reuse it only to retry "
    "the same call). Amounts are integers in minor units. Follow an order with get_order. "
    "UCP platforms use the UCP checkout tools instead (create_checkout, get_checkout, "
    "update_checkout, complete_checkout, cancel_checkout; meta[\"ucp-agent\"].profile names "
    "the platform profile) and get_order with {meta, id}.")

_READ_ONLY = types.ToolAnnotations(read_only_hint=True, open_world_hint=False)
_ANNOTATIONS = {
    "get_checkout_session": _READ_ONLY,
    "create_checkout_session": types.ToolAnnotations(read_only_hint=False,
                                                     destructive_hint=False,
                                                     open_world_hint=False),
    "update_checkout_session": types.ToolAnnotations(read_only_hint=False,
                                                     destructive_hint=False,
                                                     open_world_hint=False),
    "complete_checkout_session": types.ToolAnnotations(read_only_hint=False,
                                                       destructive_hint=True,
                                                       open_world_hint=True),
    "cancel_checkout_session": types.ToolAnnotations(read_only_hint=False,
                                                     destructive_hint=True,
                                                     open_world_hint=False),
}

_UCP_ANNOTATIONS = {
    "get_checkout": _READ_ONLY,
    "create_checkout": _ANNOTATIONS["create_checkout_session"],
    "update_checkout": _ANNOTATIONS["update_checkout_session"],
    "complete_checkout": _ANNOTATIONS["complete_checkout_session"],
    "cancel_checkout": _ANNOTATIONS["cancel_checkout_session"],
    "get_order": _READ_ONLY,
}
# One tool name in both sets: ``get_order`` is the ACP order tool (``{order_id}``) and UCP's
# order-mcp.md tool (``{meta, id}``); the arguments say which is meant (``is_ucp_call``).
SHARED = frozenset(catalog_tools.TOOLS) & frozenset(ucp_tools.TOOLS)


def shared_schema(name: str) -> dict[str, Any]:
    """A shared tool's ``inputSchema``: both forms' properties side by side (no top-level
    ``oneOf``, which several model providers refuse); each call is then validated against
    its own form's schema."""
    acp, ucp = catalog_tools.SCHEMAS[name], ucp_schemas.input_schema(name)
    schema: dict[str, Any] = {"type": "object", "additionalProperties": False,
                              "properties": {**acp["properties"], **ucp["properties"]}}
    if "$defs" in ucp:
        schema["$defs"] = ucp["$defs"]
    return schema


def is_ucp_call(name: str, arguments: dict[str, Any]) -> bool:
    """A UCP tool, or a shared one called in the UCP form (``meta`` / ``id``, no
    ``order_id``)."""
    if name not in ucp_tools.TOOLS:
        return False
    return name not in SHARED or ("order_id" not in arguments
                                  and ("meta" in arguments or "id" in arguments))


def tools() -> list[types.Tool]:
    out = [types.Tool(name=name, title=checkout_tools.TITLES[name],
                      description=checkout_tools.DESCRIPTIONS[name],
                      input_schema=openrpc.input_schema(name), annotations=_ANNOTATIONS[name])
           for name in checkout_tools.TOOLS]
    out += [types.Tool(name=name, title=catalog_tools.TITLES[name],
                       description=catalog_tools.DESCRIPTIONS[name],
                       input_schema=catalog_tools.SCHEMAS[name], annotations=_READ_ONLY)
            for name in catalog_tools.TOOLS if name not in SHARED]
    out += [types.Tool(name=name, title=ucp_tools.TITLES[name],
                       description=ucp_tools.DESCRIPTIONS[name],
                       input_schema=ucp_schemas.input_schema(name),
                       annotations=_UCP_ANNOTATIONS[name])
            for name in ucp_tools.TOOLS if name not in SHARED]
    out += [types.Tool(name=name, title=catalog_tools.TITLES[name],
                       description=f"{catalog_tools.DESCRIPTIONS[name]} Arguments: "
                                   f"{{order_id}}. {ucp_tools.DESCRIPTIONS[name]}",
                       input_schema=shared_schema(name), annotations=_READ_ONLY)
            for name in sorted(SHARED)]
    return out


async def _list_tools(_ctx: ServerRequestContext[Any],
                      _params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
    return types.ListToolsResult(tools=tools())


def _caller(ctx: ServerRequestContext[Any]) -> Caller:
    request = ctx.request
    caller = request.scope.get("state", {}).get(_CALLER) if request is not None else None
    if not isinstance(caller, Caller):  # only reachable if mounted without McpEndpoint
        raise MCPError(errors.ACP_ERROR, "Not authenticated",
                       {"type": "invalid_request", "code": "unauthorized",
                        "message": "Not authenticated"})
    return caller


def result(outcome: Outcome) -> types.CallToolResult:
    """The ACP object as ``structuredContent`` plus the same JSON as text."""
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=orjson.dumps(outcome.body).decode())],
        structured_content=outcome.body, meta=outcome.meta or None)


async def _call_tool(ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
                     ) -> types.CallToolResult:
    caller = _caller(ctx)
    arguments = dict(params.arguments or {})
    request_id = arguments.get("meta", {}).get("request_id") \
        if isinstance(arguments.get("meta"), dict) else None
    try:
        if params.name in checkout_tools.TOOLS:
            outcome = await checkout_tools.call(caller, params.name, arguments)
            if request_id:
                outcome.meta["request_id"] = request_id
        elif is_ucp_call(params.name, arguments):
            return await _call_ucp_tool(caller, params.name, arguments)
        elif params.name in catalog_tools.TOOLS:
            outcome = await catalog_tools.call(caller, params.name, arguments)
        else:
            raise MCPError(types.INVALID_PARAMS, f"Unknown tool: {params.name}")
        return result(outcome)
    except MCPError:
        raise
    except AppError as exc:
        raise errors.from_app_error(exc) from None
    except Exception:
        log.exception("MCP tool failed", extra={"tool": params.name})
        raise errors.acp_error({"type": "processing_error", "code": "internal_error",
                                "message": "An internal error occurred; it has been logged."
                                }) from None


async def _call_ucp_tool(caller: Caller, name: str, arguments: dict[str, Any]
                         ) -> types.CallToolResult:
    """A UCP tool: the checkout, order or ``error_response`` as ``structuredContent`` plus
    the same JSON as text; UCP protocol errors as JSON-RPC errors with ``{code, content}``."""
    if caller.ucp is None:
        raise MCPError(types.INVALID_PARAMS, f"Unknown tool: {name}")
    try:
        outcome = await ucp_tools.call(caller.ucp, name, arguments)
    except ucp_tools.ToolError as exc:
        raise MCPError(exc.code, exc.message, exc.data) from None
    except Exception:
        log.exception("UCP MCP tool failed", extra={"tool": name})
        raise MCPError(ucp_tools.INTERNAL_ERROR, "Internal error",
                       {"code": "internal_error",
                        "content": "An internal error occurred; it has been logged."}
                       ) from None
    meta = {"idempotent_replayed": True} if outcome.replayed else None
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=orjson.dumps(outcome.body).decode())],
        structured_content=outcome.body, is_error=outcome.is_error, meta=meta)


def build_server() -> Server[Any]:
    return Server("reelcart", version="0.1.0", title="ReelCart store",
                  instructions=INSTRUCTIONS, on_list_tools=_list_tools,
                  on_call_tool=_call_tool)


Authenticate = Callable[[Scope], Awaitable[Caller]]


class McpEndpoint:
    """ASGI app for ``/mcp``: ``authenticate`` (401 on failure), then the SDK's stateless
    streamable HTTP. ``run()`` must wrap the application's lifespan (the SDK's task group
    lives there)."""

    def __init__(self, authenticate: Authenticate) -> None:
        self.authenticate = authenticate
        self.server = build_server()
        self.manager = StreamableHTTPSessionManager(app=self.server, json_response=True,
                                                    stateless=True)

    def run(self) -> contextlib.AbstractAsyncContextManager[None]:
        return self.manager.run()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            caller = await self.authenticate(scope)
        except AppError as exc:  # 401 on the HTTP connection, before any JSON-RPC
            response = Response(orjson.dumps(exc.body()), status_code=exc.status_code,
                                headers=exc.headers, media_type="application/json")
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})[_CALLER] = caller
        await self.manager.handle_request(scope, receive, send)
