"""The composition root: settings in, wired engines, providers and services out."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from fractions import Fraction
from functools import cached_property
from typing import Any

import httpx
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from api.keycache import KeyCache
from api.settings import Settings
from api.ucp_runtime import TOPIC as UCP_ORDER_WEBHOOK
from api.ucp_runtime import UcpBinding, build_ucp
from attribution.ledger import LedgerPolicy
from attribution.rules import Windows
from checkout.profile import MerchantProfile
from checkout.service import CheckoutService
from checkout.tax import RateTableTaxProvider
from commissions import ledger as commission_ledger  # noqa: F401 (joins the attribution ledger)
from commissions.events import transfer_event_handlers
from commissions.service import CommissionPolicy
from etsy.hooks import ETSY_STOCK, ETSY_TRACKING
from etsy.service import EtsyIntegration
from etsy.wiring import build_etsy
from feeds.destinations import FeedDestination
from feeds.feed_api_client import FeedApiClient
from feeds.openai_spec import spec_for
from feeds.refresh import FEEDS_REFRESH, FeedRefresher
from fulfillment.agent_webhooks import AgentWebhookDeliverer
from fulfillment.forwarding import ShopifyForwarder
from fulfillment.shopify_client import ShopifyAdmin
from fulfillment.shopify_events import ShopifyEventHandlers
from links.buffer import TouchBuffer
from links.cache import LinkTargetCache
from models import Agent
from models.db import WalCheckpointer, create_engine, create_sessionmaker, is_sqlite
from models.outbound import outbound_client
from orders.capture import CapturePolicy, CaptureWorker
from orders.notify import AGENT_WEBHOOK, SHOPIFY_ORDER
from payment_events.stripe_events import StripeEventHandlers
from payments.provider import PaymentProvider
from payments.sandbox import SandboxProvider
from payments.sandbox_transfers import SandboxTransfers
from payments.stripe_client import StripeConfig, StripeGateway
from payments.stripe_provider import StripeProvider
from payments.transfers import StripeTransfers, TransferClient
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
    # The clock of the API-key caches (tests pass one they can advance).
    key_clock: Callable[[], float] = time.monotonic
    # SQLite in a long-running process: WAL checkpoints on a thread (``run_background``).
    checkpointer: WalCheckpointer | None = None

    async def run_background(self, stop: asyncio.Event) -> None:
        """What a long-running process (API, worker) runs beside its work until ``stop``."""
        if self.checkpointer is not None:
            await self.checkpointer.run(stop)

    @cached_property
    def agent_keys(self) -> KeyCache[Any]:
        """Agent keys verified recently (``api.keycache``): principals of ``api.auth``."""
        return KeyCache(self.settings.api_key_cache_seconds, clock=self.key_clock)

    @cached_property
    def merchant_keys(self) -> KeyCache[Any]:
        return KeyCache(self.settings.api_key_cache_seconds, clock=self.key_clock)

    @cached_property
    def link_targets(self) -> LinkTargetCache:
        """Shoppable-link redirect targets, cached a few seconds per process."""
        return LinkTargetCache()

    @cached_property
    def touch_buffer(self) -> TouchBuffer:
        """Clicks and pixel views, written in batches (flushed again by ``close``)."""
        return TouchBuffer(self.engine)

    @cached_property
    def ucp(self) -> UcpBinding:
        return build_ucp(self)

    def wake_worker(self) -> None:
        self.worker_wakeup.set()

    # Built once per runtime: the worker asks for them on every poll.
    @cached_property
    def etsy(self) -> EtsyIntegration | None:
        return build_etsy(self.settings, self.sessionmaker, self.http,
                          self.checkout.ledger_policy, video_http=self.outbound_http)

    @cached_property
    def inbox_handlers(self) -> dict[str, Handler]:
        return {**StripeEventHandlers(self.checkout, self.stripe).registry(),
                **ShopifyEventHandlers(self.provider).registry(),
                **transfer_event_handlers(),
                **(self.etsy.inbox_handlers() if self.etsy else {})}

    @cached_property
    def outbox_deliverers(self) -> dict[str, Deliverer]:
        deliverers: dict[str, Deliverer] = {
            AGENT_WEBHOOK: AgentWebhookDeliverer(self.sessionmaker, self.outbound_http)}
        if self.shopify is not None:
            deliverers[SHOPIFY_ORDER] = ShopifyForwarder(self.sessionmaker, self.shopify)
        deliverers[UCP_ORDER_WEBHOOK] = self.ucp.deliverer
        deliverers[FEEDS_REFRESH] = self.feed_refresher()
        if self.etsy is not None:
            deliverers[ETSY_STOCK] = self.etsy.deliver_stock
            deliverers[ETSY_TRACKING] = self.etsy.deliver_tracking
        return deliverers

    @cached_property
    def transfers(self) -> TransferClient:
        """Connect transfers: Stripe's with the Stripe provider, offline in the sandbox."""
        if self.settings.payments_provider == "stripe" and self.stripe is not None:
            return StripeTransfers(self.stripe)
        return SandboxTransfers(self.sessionmaker)

    @cached_property
    def commission_policy(self) -> CommissionPolicy:
        s = self.settings
        return CommissionPolicy(default_model=s.commission_default_model,
                                return_window_days=s.commission_return_window_days,
                                minimum_payout=s.payout_minimum_amount,
                                link_ttl_days=s.statement_link_ttl_days)

    @cached_property
    def captures(self) -> CaptureWorker:
        """Manual capture: captures, releases and expiry warnings (run by the worker)."""
        return CaptureWorker(self.sessionmaker, self.provider, self.checkout.capture_policy)

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

    def feed_refresher(self) -> FeedRefresher:
        return FeedRefresher(
            self.sessionmaker, self.settings.feeds_dir, self.settings.feed_config(self.profile),
            self.feed_destinations, spec=spec_for(self.settings.openai_feed_spec_version))

    def feed_destinations(self) -> list[FeedDestination]:
        """Every destination the settings configure (the agents' Feed APIs always)."""
        return build_feed_destinations(self.settings, self.outbound_http, self.feed_client)

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
        if "touch_buffer" in self.__dict__:  # queued clicks and views are written first
            await self.touch_buffer.close()
        if "outbox" in self.__dict__:  # deliveries still in flight end first
            await self.outbox.aclose()
        await self.http.aclose()
        await self.outbound_http.aclose()
        if self.stripe is not None:
            await self.stripe.close()
        await self.engine.dispose()
        if self.read_engine is not self.engine:
            await self.read_engine.dispose()


def build_feed_destinations(settings: Settings, http: httpx.AsyncClient,
                            feed_client: Callable[[str, str | None], FeedApiClient]
                            ) -> list[FeedDestination]:
    """``http`` is the outbound-policy client: partner hosts (Google, Stripe and Stripe's
    upload URLs) go through the same policy as merchant-configured ones; the SFTP host is
    resolved and checked by the policy at delivery time, and dialled at the checked
    address."""
    from feeds.destinations import (
        AcpFeedApiDestination,
        GoogleMerchantDestination,
        OpenAISftpDestination,
        StripeCatalogDestination,
    )

    destinations: list[FeedDestination] = [AcpFeedApiDestination(feed_client)]
    if settings.openai_sftp_host:
        from feeds.sftp import SftpTarget

        assert settings.openai_sftp_username is not None
        assert settings.openai_sftp_host_key is not None
        key_file = settings.openai_sftp_private_key_file
        destinations.append(OpenAISftpDestination(SftpTarget(
            host=settings.openai_sftp_host, port=settings.openai_sftp_port,
            username=settings.openai_sftp_username, host_key=settings.openai_sftp_host_key,
            remote_dir=settings.openai_sftp_remote_dir,
            password=settings.openai_sftp_password.get_secret_value()
            if settings.openai_sftp_password else None,
            private_key=key_file.read_text() if key_file else None),
            fmt=settings.openai_sftp_format, resolve=vetted_sftp_address(settings)))
    if settings.google_merchant_enabled:
        from feeds.google_client import MerchantApiClient, ServiceAccount

        assert settings.google_service_account_file is not None
        account = ServiceAccount.from_json(settings.google_service_account_file.read_bytes())
        destinations.append(GoogleMerchantDestination(
            MerchantApiClient(http, account, base_url=settings.google_merchant_api_base,
                              calls_per_minute=settings.google_merchant_calls_per_minute),
            account_id=str(settings.google_merchant_account_id),
            data_source_id=str(settings.google_merchant_data_source_id),
            content_language=settings.google_merchant_content_language,
            feed_label=settings.google_merchant_feed_label
            or settings.merchant_profile().target_country,
            batch_size=settings.google_merchant_batch_size))
    if settings.stripe_catalog_enabled and settings.stripe_api_key is not None:
        from feeds.stripe_catalog import StripeCatalogClient

        destinations.append(StripeCatalogDestination(StripeCatalogClient(
            http, settings.stripe_api_key.get_secret_value(),
            base_url=settings.stripe_api_base or "https://api.stripe.com",
            api_version=settings.stripe_catalog_api_version)))
    return destinations


def vetted_sftp_address(settings: Settings) -> Callable[[str], Awaitable[str]]:
    policy = settings.outbound_policy()

    async def vetted(host: str) -> str:
        return (await policy.resolve(host, settings.openai_sftp_port))[0]
    return vetted


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
    return SandboxProvider(sessionmaker, profile.merchant_id,
                           manual_capture=settings.sandbox_capture_method == "manual")


def capture_policy(settings: Settings) -> CapturePolicy:
    return CapturePolicy(
        delay=timedelta(hours=settings.stripe_capture_delay_hours)
        if settings.stripe_capture_delay_hours else None,
        authorization_lifetime=timedelta(days=settings.stripe_authorization_days),
        warn_before=timedelta(hours=settings.stripe_authorization_warn_hours))


@asynccontextmanager
async def database(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A sessionmaker on the configured database for one-off work (CLI commands); the
    engine is disposed on exit. The API and the worker use ``build_runtime``."""
    engine = create_engine(settings.database_url,
                           sqlite_lock_timeout=settings.sqlite_lock_timeout_seconds)
    try:
        yield create_sessionmaker(engine)
    finally:
        await engine.dispose()


def settle_heap() -> None:
    """Take everything start-up created (modules, FastAPI/pydantic/SQLAlchemy structures:
    ~240,000 objects) out of the garbage collector's view with ``gc.freeze()``.

    Without it every full (generation 2) collection walks all of them — 50-400 ms on the
    event loop, once every few hundred requests, measured as most of the create p99 at
    concurrency 1 (issue 16). Frozen objects are never collected, which is right for
    objects that live as long as the process. The young generation's threshold is raised
    so it runs a tenth as often; each run stays short because requests free almost
    everything by reference counting.
    """
    import gc

    gc.collect()
    gc.freeze()
    _, second, third = gc.get_threshold()
    gc.set_threshold(7000, second, third)


def ledger_policy(settings: Settings) -> LedgerPolicy:
    click, view, per_model = settings.attribution_windows()
    return LedgerPolicy(
        window_days=click, view_window_days=view,
        model_windows=tuple((m, Windows(c, v)) for m, c, v in per_model),
        remix_share=Fraction(settings.attribution_remix_share_percent, 100))


def build_runtime(settings: Settings, *, key_clock: Callable[[], float] = time.monotonic,
                  long_running: bool = False) -> Runtime:
    """``long_running``: an API or worker process, which runs ``Runtime.run_background``
    (SQLite's WAL checkpoints move off the request path onto a thread)."""
    url = settings.database_url
    lock_timeout = settings.sqlite_lock_timeout_seconds
    checkpointer = WalCheckpointer(url) if long_running and is_sqlite(url) else None
    engine = create_engine(url, pool_size=settings.database_pool_size,
                           sqlite_lock_timeout=lock_timeout,
                           sqlite_autocheckpoint=checkpointer is None)
    read_engine = create_engine(url, sqlite_immediate=False, sqlite_lock_timeout=lock_timeout) \
        if is_sqlite(url) else engine
    sessionmaker = create_sessionmaker(engine)
    profile = settings.merchant_profile()
    stripe = build_stripe(settings)
    provider = build_provider(settings, sessionmaker, profile, stripe)
    checkout = CheckoutService(
        profile=profile, provider=provider, tax=RateTableTaxProvider(profile),
        session_ttl=timedelta(seconds=settings.checkout_session_ttl_seconds),
        public_base_url=settings.public_base_url,
        forward_to_shopify=settings.shopify_enabled,
        ledger_policy=ledger_policy(settings),
        capture_policy=capture_policy(settings),
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
        key_clock=key_clock,
        checkpointer=checkpointer,
    )
    _ = runtime.ucp  # registers the UCP order-webhook listener in every process
    return runtime
