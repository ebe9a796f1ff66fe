"""Agent authentication (Bearer API keys; only SHA-256 hashes are stored)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.runtime import DEV_AGENT_ID, Runtime, hash_api_key
from models import Agent, AgentApiKey, MerchantApiKey
from models.base import new_id, utc_now
from models.errors import Unauthorized

KEY_PREFIX = "rck_"
MERCHANT_KEY_PREFIX = "rcm_"


@dataclass(frozen=True, slots=True)
class AgentPrincipal:
    id: str
    name: str
    signing_secret: str | None


def generate_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


async def authenticate(runtime: Runtime, authorization: str | None) -> AgentPrincipal:
    digest = hash_api_key(_bearer(authorization))
    if digest in runtime.dev_key_hashes:
        return AgentPrincipal(DEV_AGENT_ID, "development", None)
    cached = runtime.agent_keys.get(digest)
    if cached is not None:  # verified less than REELCART_API_KEY_CACHE_SECONDS ago
        return cached
    async with runtime.read_sessionmaker() as db:
        row = (await db.execute(
            select(Agent.id, Agent.name, Agent.signing_secret)
            .join(AgentApiKey, AgentApiKey.agent_id == Agent.id)
            .where(AgentApiKey.key_hash == digest, AgentApiKey.revoked_at.is_(None))
        )).first()
    if row is None:
        if await _is_merchant_key(runtime, digest):  # the caller holds it: nothing leaks
            raise Unauthorized("This is a merchant API key; agent routes need an agent key.")
        raise Unauthorized("The API key is not valid or has been revoked.")
    principal = AgentPrincipal(row.id, row.name, row.signing_secret)
    runtime.agent_keys.put(digest, principal)
    return principal


async def create_agent_key(db: AsyncSession, name: str, *, signing_secret: str | None = None
                           ) -> tuple[Agent, str]:
    """Create (or reuse) the agent named ``name`` and issue a new key. Returns the raw key,
    which is shown once and never stored."""
    agent = await db.scalar(select(Agent).where(Agent.name == name))
    if agent is None:
        agent = Agent(id=new_id("agt"), name=name, signing_secret=signing_secret,
                      created_at=utc_now())
        db.add(agent)
    elif signing_secret:
        agent.signing_secret = signing_secret
    key = generate_api_key()
    db.add(AgentApiKey(id=new_id("key"), agent_id=agent.id, key_hash=hash_api_key(key),
                       key_prefix=key[:12], created_at=utc_now()))
    await db.flush()
    return agent, key


@dataclass(frozen=True, slots=True)
class MerchantPrincipal:
    id: str
    name: str


def _bearer(authorization: str | None) -> str:
    if not authorization:
        raise Unauthorized("Missing Authorization header; send 'Authorization: Bearer <key>'.")
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > 512:
        raise Unauthorized("The Authorization header must be 'Bearer <key>'.")
    return token


async def authenticate_merchant(runtime: Runtime, authorization: str | None
                                ) -> MerchantPrincipal:
    """Merchant API keys are a separate namespace: an agent key never opens it."""
    digest = hash_api_key(_bearer(authorization))
    if digest in runtime.dev_merchant_key_hashes:
        return MerchantPrincipal("mk_development", "development")
    cached = runtime.merchant_keys.get(digest)
    if cached is not None:
        return cached
    async with runtime.read_sessionmaker() as db:
        row = (await db.execute(select(MerchantApiKey.id, MerchantApiKey.name).where(
            MerchantApiKey.key_hash == digest, MerchantApiKey.revoked_at.is_(None)))).first()
    if row is None:
        if await _is_agent_key(runtime, digest):  # the caller holds it: nothing leaks
            raise Unauthorized(
                "This is an agent API key; merchant routes need a merchant API key.")
        raise Unauthorized("The merchant API key is not valid or has been revoked.")
    principal = MerchantPrincipal(row.id, row.name)
    runtime.merchant_keys.put(digest, principal)
    return principal


async def _is_agent_key(runtime: Runtime, digest: str) -> bool:
    """Only on the refusal path: is this a live key of the agent kind?"""
    if digest in runtime.dev_key_hashes or runtime.agent_keys.get(digest) is not None:
        return True
    async with runtime.read_sessionmaker() as db:
        return await db.scalar(select(AgentApiKey.id).where(
            AgentApiKey.key_hash == digest, AgentApiKey.revoked_at.is_(None))) is not None


async def _is_merchant_key(runtime: Runtime, digest: str) -> bool:
    """Only on the refusal path: is this a live key of the merchant kind?"""
    if digest in runtime.dev_merchant_key_hashes or runtime.merchant_keys.get(digest):
        return True
    async with runtime.read_sessionmaker() as db:
        return await db.scalar(select(MerchantApiKey.id).where(
            MerchantApiKey.key_hash == digest, MerchantApiKey.revoked_at.is_(None))) is not None


async def create_merchant_key(db: AsyncSession, name: str) -> str:
    key = MERCHANT_KEY_PREFIX + secrets.token_urlsafe(32)
    db.add(MerchantApiKey(id=new_id("mk"), name=name, key_hash=hash_api_key(key),
                          key_prefix=key[:12], created_at=utc_now()))
    await db.flush()
    return key
