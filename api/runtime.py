"""The composition root: settings in, wired engines, providers and services out."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from fractions import Fraction
from functools import cached_property

import httpx
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from api.settings import Settings
from api.ucp_runtime import TOPIC as UCP_ORDER_WEBHOOK
from api.ucp_runtime import UcpBinding, build_ucp
from attribution.ledger import LedgerPolicy
from checkout.profile import MerchantProfile
from checkout.service import CheckoutService
from checkout.tax import RateTableTaxProvider
from feeds.feed_api_client import FeedApiClient
from feeds.refresh import FEEDS_REFRESH, FeedRefresher
from fulfillment.agent_webhooks import AgentWebhookDeliverer
from fulfillment.forwarding import ShopifyForwarder
from fulfillment.shopify_client import ShopifyAdmin
from fulfillment.shopify_events import ShopifyEventHandlers
from models import Agent
from models.db import create_engine, create_sessionmaker, is_sqlite
from models.outbound import outbound_client
from orders.notify import AGENT_WEBHOOK, SHOPIFY_ORDER
from payment_events.stripe_events import StripeEventHandlers
from payments.provider import PaymentProvider
from payments.sandbox import SandboxProvider
from payments.stripe_client import StripeConfig, StripeGateway
from payments.stripe_provider import StripeProvider
from webhooks.inbox import Handler
from webhooks.outbox import Deliverer, OutboxDispatcher

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
    dev_merchant_key_hashes: frozenset[str]
    stripe: StripeGateway | None
    http: httpx.AsyncClient
    # For every merchant/agent-configured URL (webhooks, Feed APIs): the outbound policy.
    outbound_http: httpx.AsyncClient
    shopify: ShopifyAdmin | None
    # Wakes an in-process worker when a webhook arrives (an optimisation: it polls anyway).
    worker_wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    # When each periodic worker job last ran in this process (api.worker.PERIODIC).
    periodic_last_run: dict[str, float] = field(default_factory=dict)

    @cached_property
    def ucp(self) -> UcpBinding:
        return build_ucp(self)

    def wake_worker(self) -> None:
        self.worker_wakeup.set()

    # Built once per runtime: the worker asks for them on every poll.
    @cached_property
    def inbox_handlers(self) -> dict[str, Handler]:
        return {**StripeEventHandlers(self.checkout, self.stripe).registry(),
                **ShopifyEventHandlers(self.provider).registry()}

    @cached_property
    def outbox_deliverers(self) -> dict[str, Deliverer]:
        deliverers: dict[str, Deliverer] = {
            AGENT_WEBHOOK: AgentWebhookDeliverer(self.sessionmaker, self.outbound_http)}
        if self.shopify is not None:
            deliverers[SHOPIFY_ORDER] = ShopifyForwarder(self.sessionmaker, self.shopify)
        deliverers[UCP_ORDER_WEBHOOK] = self.ucp.deliverer
        deliverers[FEEDS_REFRESH] = FeedRefresher(
            self.sessionmaker, self.settings.feeds_dir, self.settings.feed_config(self.profile),
            self.feed_client)
        return deliverers

    @cached_property
    def outbox(self) -> OutboxDispatcher:
        s = self.settings
        return OutboxDispatcher(
            self.sessionmaker, self.outbox_deliverers, max_in_flight=s.outbox_concurrency,
            per_destination=s.outbox_per_destination,
            deadline=s.outbox_delivery_deadline_seconds, max_attempts=s.outbox_max_attempts,
            on_done=self.wake_worker)

    def feed_client(self, base_url: str, token: str | None) -> FeedApiClient:
        return FeedApiClient(self.outbound_http, base_url, token)

    async def ensure_dev_agent(self) -> None:
        """Development keys (REELCART_AGENT_API_KEYS) act as one built-in agent."""
        if not self.dev_key_hashes:
            return
        dialect_insert = sqlite_insert if is_sqlite(self.settings.database_url) else pg_insert
        async with self.sessionmaker() as db, db.begin():
            await db.execute(dialect_insert(Agent).values(
                id=DEV_AGENT_ID, name="development").on_conflict_do_nothing())

    async def ensure_configured_user(self) -> None:
        """REELCART_DASHBOARD_USER=name:hash provisions a login without the CLI."""
        if self.settings.dashboard_user is None:
            return
        from api.dashboard.auth import ensure_user_hash

        name, _, password_hash = self.settings.dashboard_user.get_secret_value().partition(":")
        if name and password_hash.startswith("scrypt$"):
            async with self.sessionmaker() as db, db.begin():
                await ensure_user_hash(db, name, password_hash)

    async def close(self) -> None:
        if "outbox" in self.__dict__:  # deliveries still in flight end first
            await self.outbox.aclose()
        await self.http.aclose()
        await self.outbound_http.aclose()
        if self.stripe is not None:
            await self.stripe.close()
        await self.engine.dispose()
        if self.read_engine is not self.engine:
            await self.read_engine.dispose()


def build_stripe(settings: Settings) -> StripeGateway | None:
    if settings.stripe_api_key is None:
        return None
    return StripeGateway(StripeConfig(
        api_key=settings.stripe_api_key.get_secret_value(),
        api_version=settings.stripe_api_version,
        spt_api_version=settings.stripe_spt_api_version,
        spt_param=settings.stripe_spt_param,
        api_base=settings.stripe_api_base,
        max_network_retries=settings.stripe_max_network_retries,
        manual_capture=settings.stripe_capture_method == "manual",
    ))


def build_provider(settings: Settings, sessionmaker: async_sessionmaker[AsyncSession],
                   profile: MerchantProfile, stripe: StripeGateway | None) -> PaymentProvider:
    if settings.payments_provider == "stripe":
        assert stripe is not None
        return StripeProvider(
            stripe, account_id=settings.stripe_account_id, merchant_name=profile.name,
            acquirer_bin=settings.stripe_3ds_acquirer_bin,
            acquirer_country=settings.stripe_3ds_acquirer_country,
            acquirer_merchant_id=settings.stripe_3ds_acquirer_merchant_id)
    return SandboxProvider(sessionmaker, profile.merchant_id)


@asynccontextmanager
async def database(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A sessionmaker on the configured database for one-off work (CLI commands); the
    engine is disposed on exit. The API and the worker use ``build_runtime``."""
    engine = create_engine(settings.database_url)
    try:
        yield create_sessionmaker(engine)
    finally:
        await engine.dispose()


def build_runtime(settings: Settings) -> Runtime:
    url = settings.database_url
    engine = create_engine(url, pool_size=settings.database_pool_size)
    read_engine = create_engine(url, sqlite_immediate=False) if is_sqlite(url) else engine
    sessionmaker = create_sessionmaker(engine)
    profile = settings.merchant_profile()
    stripe = build_stripe(settings)
    provider = build_provider(settings, sessionmaker, profile, stripe)
    checkout = CheckoutService(
        profile=profile, provider=provider, tax=RateTableTaxProvider(profile),
        session_ttl=timedelta(seconds=settings.checkout_session_ttl_seconds),
        public_base_url=settings.public_base_url,
        forward_to_shopify=settings.shopify_enabled,
        ledger_policy=LedgerPolicy(
            window_days=settings.attribution_window_days or None,
            remix_share=Fraction(settings.attribution_remix_share_percent, 100)),
    )
    http = httpx.AsyncClient(follow_redirects=False)
    shopify = None
    if settings.shopify_enabled:
        assert settings.shopify_shop is not None
        assert settings.shopify_access_token is not None
        shopify = ShopifyAdmin(http, shop=settings.shopify_shop,
                               access_token=settings.shopify_access_token.get_secret_value(),
                               api_version=settings.shopify_api_version)
    runtime = Runtime(
        settings=settings, engine=engine, read_engine=read_engine, sessionmaker=sessionmaker,
        read_sessionmaker=create_sessionmaker(read_engine), profile=profile, provider=provider,
        checkout=checkout,
        dev_key_hashes=frozenset(hash_api_key(k.get_secret_value())
                                 for k in settings.agent_api_keys),
        dev_merchant_key_hashes=frozenset(hash_api_key(k.get_secret_value())
                                          for k in settings.merchant_api_keys),
        stripe=stripe,
        http=http,
        outbound_http=outbound_client(settings.outbound_policy()),
        shopify=shopify,
    )
    _ = runtime.ucp  # registers the UCP order-webhook listener in every process
    return runtime
