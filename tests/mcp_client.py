"""Drive ``/mcp`` with the official MCP client (``ClientSession`` over streamable HTTP)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import httpx2
import pytest
from fastapi import FastAPI
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from api.app import create_app
from api.runtime import Runtime
from tests.conftest import AGENT_KEY, API_VERSION, Agent


@asynccontextmanager
async def serving(rt: Runtime) -> AsyncIterator[FastAPI]:
    """The real app with its lifespan running (the MCP SDK's task group lives there)."""
    app = create_app(rt)
    async with app.router.lifespan_context(app):
        yield app


@asynccontextmanager
async def mcp_session(target: FastAPI | str, key: str | None = AGENT_KEY
                      ) -> AsyncIterator[ClientSession]:
    """An initialized MCP client session: in-process on ``target`` (an app) or over the
    network (a base URL)."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    if isinstance(target, str):
        http = httpx2.AsyncClient(base_url=target, headers=headers, timeout=60)
        url = f"{target}/mcp"
    else:
        http = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=target),
                                  base_url="http://test", headers=headers)
        url = "http://test/mcp"
    async with http, streamable_http_client(url, http_client=http) as (read, write), \
            ClientSession(read, write) as session:
        await session.initialize()
        yield session


def rest_agent(app: FastAPI, key: str = AGENT_KEY) -> Agent:
    return Agent(httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                   base_url="http://test"), key)


def meta(key: str | None = "new", **extra: Any) -> dict[str, Any]:
    """Binding ``meta``; ``key="new"`` → a fresh idempotency key, ``None`` → none."""
    out: dict[str, Any] = {"api_version": API_VERSION, **extra}
    if key is not None:
        out["idempotency_key"] = f"mcp-{uuid.uuid4()}" if key == "new" else key
    return out


async def call(session: ClientSession, name: str, arguments: dict[str, Any]
               ) -> tuple[dict[str, Any], dict[str, Any]]:
    """(structuredContent, result _meta) of a successful call; checks the text twin."""
    result = await session.call_tool(name, arguments)
    assert not result.is_error, result
    assert result.structured_content is not None
    text = result.content[0]
    assert text.type == "text"
    assert json.loads(text.text) == result.structured_content
    return result.structured_content, dict(result.meta or {})


async def call_error(session: ClientSession, name: str, arguments: dict[str, Any]
                     ) -> dict[str, Any]:
    """The ACP ``Error`` of a call that must fail with JSON-RPC -32000."""
    with pytest.raises(MCPError) as caught:
        await session.call_tool(name, arguments)
    assert caught.value.code == -32000, caught.value
    data: dict[str, Any] = caught.value.data
    assert caught.value.message == data["message"]
    return data
