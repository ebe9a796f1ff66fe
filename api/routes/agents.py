"""Merchant API: the agents that sell for us, and where their order webhooks go."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field, HttpUrl
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from api.deps import MerchantCallDep
from models import Agent
from models.errors import InvalidRequest, NotFound

router = APIRouter(prefix="/agents", tags=["merchant: agents"])


class WebhookConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: HttpUrl = Field(description="The agent's order_events endpoint")
    secret: str = Field(min_length=16, max_length=200, description="HMAC key from the agent")


def _agent_json(agent: Agent) -> dict[str, Any]:
    return {"id": agent.id, "name": agent.name, "webhook_url": agent.webhook_url,
            "webhook_secret_set": bool(agent.webhook_secret),
            "request_signing": bool(agent.signing_secret)}


@router.get("", response_class=Response, operation_id="listAgents")
async def list_agents(call: MerchantCallDep) -> Response:
    async def handler(db: Any) -> dict[str, Any]:
        agents = await db.scalars(select(Agent).order_by(Agent.name))
        return {"data": [_agent_json(a) for a in agents]}
    return await call.read(handler)


@router.post("/{agent_id}/webhook", response_class=Response, operation_id="setAgentWebhook")
async def set_webhook(agent_id: Annotated[str, Path(max_length=64)], body: WebhookConfig,
                      call: MerchantCallDep) -> Response:
    _check_outbound(call, str(body.url))

    async def handler(db: Any) -> dict[str, Any]:
        agent = await _locked_agent(db, agent_id)
        agent.webhook_url = str(body.url)
        agent.webhook_secret = body.secret
        return _agent_json(agent)
    return await call.write(handler)


class FeedApiConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: HttpUrl = Field(description="Base URL of the agent's ACP Feed API")
    token: str | None = Field(default=None, max_length=500)
    target_country: str | None = Field(default=None, pattern="^[A-Z]{2}$")


@router.post("/{agent_id}/feed", response_class=Response, operation_id="setAgentFeedApi")
async def set_feed_api(agent_id: Annotated[str, Path(max_length=64)], body: FeedApiConfig,
                       call: MerchantCallDep) -> Response:
    _check_outbound(call, str(body.url))

    async def handler(db: Any) -> dict[str, Any]:
        agent = await _locked_agent(db, agent_id)
        agent.feed_api_url = str(body.url).rstrip("/")
        agent.feed_api_token = body.token
        agent.feed_target_country = body.target_country
        return {**_agent_json(agent), "feed_api_url": agent.feed_api_url,
                "feed_id": agent.feed_id}
    return await call.write(handler)


def _check_outbound(call: MerchantCallDep, url: str) -> None:
    """The outbound-URL policy at configuration time (checked again at every delivery)."""
    problem = call.runtime.settings.outbound_policy().problem(url)
    if problem is not None:
        raise InvalidRequest(f"This URL cannot be used: {problem}.", code="invalid_url",
                             param="$.url")


async def _locked_agent(db: AsyncSession, agent_id: str) -> Agent:
    agent = await db.get(Agent, agent_id, with_for_update=True)
    if agent is None:
        raise NotFound(f"Agent {agent_id!r} does not exist.", code="agent_not_found")
    return agent
