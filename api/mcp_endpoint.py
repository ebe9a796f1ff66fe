"""The MCP endpoint's wiring: the agent's bearer key (as on REST) → a tool ``Caller``."""

from __future__ import annotations

from datetime import timedelta
from functools import partial

from starlette.datastructures import Headers
from starlette.types import Scope

from api.auth import authenticate
from api.deps import check_signature
from api.runtime import Runtime
from protocols.mcp.caller import Caller
from protocols.mcp.server import McpEndpoint
from protocols.ucp.mcp_tools import UcpTools


async def authenticate_caller(scope: Scope) -> Caller:
    runtime: Runtime = scope["app"].state.runtime
    agent = await authenticate(runtime, Headers(scope=scope).get("authorization"))
    settings = runtime.settings
    retention = timedelta(hours=settings.idempotency_retention_hours)
    lock = timedelta(seconds=settings.idempotency_lock_seconds)
    ucp = runtime.ucp
    return Caller(
        agent_id=agent.id, checkout=runtime.checkout, sessionmaker=runtime.sessionmaker,
        read_sessionmaker=runtime.read_sessionmaker, profile=runtime.profile,
        idempotency_retention=retention, idempotency_lock=lock,
        check_signature=partial(check_signature, runtime, agent),
        ucp=UcpTools(service=ucp.service, resolver=ucp.resolver,
                     sessionmaker=runtime.sessionmaker,
                     read_sessionmaker=runtime.read_sessionmaker,
                     idempotency_retention=retention, idempotency_lock=lock))


def mcp_endpoint() -> McpEndpoint:
    return McpEndpoint(authenticate_caller)
