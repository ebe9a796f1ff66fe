"""The composition root: settings in, wired engines, providers and services out."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from api.settings import Settings
from checkout.profile import MerchantProfile
from checkout.service import CheckoutService
from checkout.tax import RateTableTaxProvider
from models import Agent
from models.db import create_engine, create_sessionmaker, is_sqlite
from payments.provider import PaymentProvider
from payments.sandbox import SandboxProvider

DEV_AGENT_ID = "agt_development"


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass
class Runtime:
    settings: Settings
    engine: AsyncEngine
    read_engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    read_sessionmaker: async_sessionmaker[AsyncSession]
    profile: MerchantProfile
    provider: PaymentProvider
    checkout: CheckoutService
    dev_key_hashes: frozenset[str]

    async def ensure_dev_agent(self) -> None:
        """Development keys (REELCART_AGENT_API_KEYS) act as one built-in agent."""
        if not self.dev_key_hashes:
            return
        dialect_insert = sqlite_insert if is_sqlite(self.settings.database_url) else pg_insert
        async with self.sessionmaker() as db, db.begin():
            await db.execute(dialect_insert(Agent).values(
                id=DEV_AGENT_ID, name="development").on_conflict_do_nothing())

    async def close(self) -> None:
        await self.engine.dispose()
        if self.read_engine is not self.engine:
            await self.read_engine.dispose()


def build_provider(settings: Settings, sessionmaker: async_sessionmaker[AsyncSession],
                   profile: MerchantProfile) -> PaymentProvider:
    if settings.payments_provider == "sandbox":
        return SandboxProvider(sessionmaker, profile.merchant_id)
    raise ValueError(f"unknown payments provider {settings.payments_provider!r}")


def build_runtime(settings: Settings) -> Runtime:
    url = settings.database_url
    engine = create_engine(url, pool_size=settings.database_pool_size)
    read_engine = create_engine(url, sqlite_immediate=False) if is_sqlite(url) else engine
    sessionmaker = create_sessionmaker(engine)
    profile = settings.merchant_profile()
    provider = build_provider(settings, sessionmaker, profile)
    checkout = CheckoutService(
        profile=profile, provider=provider, tax=RateTableTaxProvider(profile),
        session_ttl=timedelta(seconds=settings.checkout_session_ttl_seconds),
        public_base_url=settings.public_base_url,
    )
    return Runtime(
        settings=settings, engine=engine, read_engine=read_engine, sessionmaker=sessionmaker,
        read_sessionmaker=create_sessionmaker(read_engine), profile=profile, provider=provider,
        checkout=checkout,
        dev_key_hashes=frozenset(hash_api_key(k.get_secret_value())
                                 for k in settings.agent_api_keys),
    )
