"""All configuration, from ``REELCART_*`` environment variables (or a ``.env`` file).

Only ``api`` reads settings; domain code receives values and clients as arguments.
"""

from __future__ import annotations

import json
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import (
    Field,
    FilePath,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from checkout.profile import MerchantProfile
from feeds.builder import FeedConfig
from models.outbound import OutboundPolicy
from payments.stripe_client import STRIPE_API_VERSION

DEMO_PUBLIC_BASE_URL = "http://127.0.0.1:8000"
# Merchant profile fields whose built-in (demo store) value production must not keep.
DEMO_PROFILE_FIELDS = ("name", "merchant_id", "store_url", "terms_url", "privacy_url",
                       "return_policy_url", "support_email", "feed_id")


class Environment(StrEnum):
    development = "development"
    test = "test"
    production = "production"


class SignatureMode(StrEnum):
    off = "off"
    log = "log"
    enforce = "enforce"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REELCART_", env_file=".env", extra="ignore",
                                      env_ignore_empty=True)

    environment: Environment = Environment.development
    database_url: str = "sqlite+aiosqlite:///./reelcart.db"
    database_pool_size: int = 10
    sqlite_lock_timeout_seconds: float = Field(
        default=30, gt=0, le=600, description="SQLite: how long a request waits (without "
        "blocking others) for the write lock another process holds, then 503 database_busy")
    api_key_cache_seconds: float = Field(
        default=5, ge=0, le=300, description="How long an API process trusts a verified "
        "agent/merchant key before checking it again (revocation delay; 0 = every request)")
    public_base_url: str = Field(
        default=DEMO_PUBLIC_BASE_URL,
        description="Where agents reach us; used for discovery and order permalinks")
    agent_api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list, description="Comma-separated bearer keys for development")
    request_signature_mode: SignatureMode = SignatureMode.off
    request_signature_max_skew_seconds: int = 300
    checkout_session_ttl_seconds: int = 6 * 3600
    idempotency_retention_hours: int = Field(default=24, ge=24)
    idempotency_lock_seconds: int = Field(
        default=60, description="After this, an in-flight key whose owner died can be retaken")
    max_request_bytes: int = 1_048_576
    payments_provider: str = Field(default="sandbox", pattern="^(sandbox|stripe)$")
    stripe_api_key: SecretStr | None = None
    stripe_webhook_secret: SecretStr | None = None
    stripe_api_version: str = Field(
        default=STRIPE_API_VERSION, pattern=r"^\d{4}-\d{2}-\d{2}(\.[a-z]+)?$",
        description="The Stripe API version every request is pinned to (default: the "
        "version the pinned stripe SDK ships with)")
    stripe_spt_api_version: str | None = Field(
        default="2026-04-22.preview",
        description="Stripe-Version for shared-payment-token calls (a preview version)")
    stripe_spt_param: str = Field(
        default="payment_method_data.shared_payment_granted_token",
        description="Where the SPT goes in the PaymentIntent params (dotted path)")
    stripe_api_base: str | None = Field(default=None, description="Point the SDK elsewhere")
    stripe_max_network_retries: int = Field(default=2, ge=0, le=5)
    stripe_account_id: str = "acct_unset"
    stripe_capture_method: str = Field(default="automatic", pattern="^(automatic|manual)$")
    sandbox_capture_method: str = Field(
        default="automatic", pattern="^(automatic|manual)$",
        description="The sandbox PSP: capture at once, or authorise and capture later "
        "(all or part), as Stripe's capture_method=manual")
    stripe_capture_delay_hours: float = Field(
        default=0, ge=0, le=24 * 30, description="manual capture: also capture this long after "
        "authorisation even if nothing shipped (0 = only on the first shipment)")
    stripe_authorization_days: float = Field(
        default=7, gt=0, le=31, description="How long a card authorisation lasts (Stripe: "
        "about 7 days online)")
    stripe_authorization_warn_hours: float = Field(
        default=24, ge=0, description="Warn (dashboard + log) about uncaptured "
        "authorisations expiring within this many hours")
    stripe_3ds_acquirer_bin: str = "000000"
    stripe_3ds_acquirer_country: str = "US"
    stripe_3ds_acquirer_merchant_id: str = "unset"
    shopify_shop: str | None = Field(default=None, description="acme.myshopify.com")
    shopify_access_token: SecretStr | None = None
    shopify_api_version: str = "2026-04"
    shopify_webhook_secret: SecretStr | None = Field(
        default=None, description="The app's client secret (signs Shopify webhooks)")
    etsy_keystring: str | None = Field(default=None, description="Etsy app keystring")
    etsy_shared_secret: SecretStr | None = Field(
        default=None, description="Etsy app shared secret (x-api-key is keystring:secret)")
    etsy_shop_id: str | None = Field(default=None, description="Etsy shop id (else from connect)")
    etsy_redirect_uri: str = Field(
        default="https://localhost/etsy/callback",
        description="OAuth redirect URI registered for the Etsy app")
    etsy_token_key: SecretStr | None = Field(
        default=None, description="Fernet key encrypting Etsy OAuth tokens at rest")
    etsy_access_token: SecretStr | None = Field(
        default=None, description="Etsy tokens kept in the environment instead of connect")
    etsy_refresh_token: SecretStr | None = None
    etsy_webhook_secret: SecretStr | None = Field(
        default=None, description="whsec_… signing secret of the Etsy webhook endpoint")
    etsy_api_base: str = "https://api.etsy.com"
    etsy_poll_minutes: int = Field(
        default=5, ge=1, description="Poll getShopReceipts and push videos this often")
    merchant_api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list, description="Comma-separated merchant API keys for development")
    dashboard_user: SecretStr | None = Field(
        default=None, description="name:scrypt$… (from `reelcart user hash`): a dashboard "
        "login provisioned from configuration")
    dashboard_scrypt_log2_n: int = Field(
        default=17, ge=14, le=20, description="scrypt cost (N = 2^this) for dashboard "
        "passwords; OWASP: 17. Weaker stored hashes are upgraded at the next login")
    run_worker_in_process: bool = Field(
        default=True, description="`serve` also runs the inbox/outbox worker loop")
    worker_poll_seconds: float = 1.0
    outbox_concurrency: int = Field(
        default=32, ge=1, le=1000, description="Deliveries in flight per worker process")
    outbox_per_destination: int = Field(
        default=2, ge=1, le=100,
        description="Deliveries in flight per destination (agent endpoint), all workers")
    outbox_delivery_deadline_seconds: float = Field(
        default=30.0, gt=0, le=600, description="One delivery attempt ends after this")
    outbox_max_attempts: int = Field(
        default=20, ge=1, le=100, description="Then the message is dead-lettered")
    outbox_retention_days: int = Field(
        default=14, ge=1, description="Delivered outbox messages are deleted after this")
    inbox_retention_days: int = Field(
        default=14, ge=7, description="Processed webhook events are deleted after this "
        "(longer than partners retry, so a late duplicate is still recognised)")
    retention_sweep_minutes: int = Field(
        default=60, ge=1, description="How often the worker purges expired rows")
    merchant_config: Path | None = Field(
        default=None, description="JSON file with the merchant profile (rates, taxes, links)")
    feeds_dir: Path = Field(default=Path("./feeds_out"),
                            description="Where `feeds build` writes and /feeds serves from")
    feeds_refresh_minutes: int = Field(
        default=0, ge=0, description="Rebuild and push feeds this often (0 = only on demand)")
    openai_feed_spec_version: str = Field(
        default="currently-stable",
        description="OpenAI file-upload product spec version the feed follows")
    openai_sftp_host: str | None = Field(default=None, description="OpenAI's SFTP host")
    openai_sftp_port: int = Field(default=22, ge=1, le=65535)
    openai_sftp_username: str | None = None
    openai_sftp_password: SecretStr | None = None
    openai_sftp_private_key_file: Path | None = Field(
        default=None, description="Private key (OpenSSH/PEM) for key authentication")
    openai_sftp_host_key: str | None = Field(
        default=None, description="The server's public host key, pinned ('ssh-ed25519 AAAA…')")
    openai_sftp_remote_dir: str = "."
    openai_sftp_format: str = Field(default="jsonl", pattern="^(jsonl|csv|tsv)$")
    google_merchant_account_id: str | None = None
    google_merchant_data_source_id: str | None = Field(
        default=None, description="The API products data source that receives inputs")
    google_service_account_file: Path | None = Field(
        default=None, description="Service-account JSON key with Merchant Center access")
    google_merchant_content_language: str = "en"
    google_merchant_feed_label: str | None = Field(
        default=None, description="Defaults to the merchant's target country")
    google_merchant_api_base: str = "https://merchantapi.googleapis.com"
    google_merchant_batch_size: int = Field(default=100, ge=1, le=1000)
    google_merchant_calls_per_minute: int = Field(default=600, ge=1)
    stripe_catalog_enabled: bool = Field(
        default=False, description="Upload the catalog to Stripe's agentic commerce catalog "
        "(a private preview at Stripe: enable once Stripe has enabled it for the account)")
    stripe_catalog_api_version: str = "2026-04-22.dahlia"
    attribution_window_days: int | None = Field(
        default=None, ge=0, description="Deprecated name of the click window "
        "(REELCART_ATTRIBUTION_CLICK_WINDOW_DAYS); when set it wins, for old deployments")
    attribution_click_window_days: int = Field(
        default=7, ge=0, le=3650, description="Clicks and agent claims older than this earn "
        "no credit (0 = lifetime)")
    attribution_view_window_days: int = Field(
        default=1, ge=0, le=3650, description="Pixel views older than this earn no credit "
        "(0 = lifetime); views count only when no click does")
    attribution_model_windows: str = Field(
        default="", pattern=r"^((last_touch|first_touch|linear|position_based)="
        r"\d{1,4}/\d{1,4})?(,(last_touch|first_touch|linear|position_based)=\d{1,4}/\d{1,4})*$",
        description="Per-model click/view windows overriding the defaults, e.g. "
        "`first_touch=28/1,linear=14/1` (days; 0 = lifetime)")
    attribution_remix_share_percent: int = Field(
        default=0, ge=0, le=100, description="Share of a remix's credit that flows to its parent")
    commission_default_model: str = Field(
        default="last_touch", pattern="^(last_touch|first_touch|linear|position_based)$",
        description="Attribution model a contract pays on unless it names one")
    commission_return_window_days: int = Field(
        default=30, ge=0, le=3650, description="Commissions lock this long after the sale")
    payout_minimum_amount: int = Field(
        default=1000, ge=1, description="Smallest payout, minor units (smaller balances accrue)")
    statement_link_ttl_days: int = Field(
        default=30, ge=1, le=365, description="Shareable statement links expire after this")
    c2pa_trust_anchors_file: FilePath | None = Field(
        default=None, description="PEM bundle of the certificate authorities whose C2PA "
        "signers are trusted (e.g. the C2PA trust list); without it, valid Content "
        "Credentials are reported as 'valid' (signer not on a trust list)")
    provenance_max_video_bytes: int = Field(
        default=256 * 1024 * 1024, ge=1024, description="Largest video file fetched from a "
        "URL to read its Content Credentials")
    stripe_publishable_key: str | None = Field(
        default=None, description="pk_…: advertised in the Google Pay handler's UCP config")
    ucp_signing_key: SecretStr | None = Field(
        default=None, description="EC P-256 private key (PEM) signing UCP order webhooks; "
        "its public JWK is published in /.well-known/ucp (`reelcart ucp keygen`)")
    ucp_signing_key_id: str = "reelcart-ucp-1"
    ucp_simulation_secret: SecretStr | None = Field(
        default=None, description="Enables POST /testing/simulate-shipping/{order_id} "
        "(conformance testing only)")
    ucp_accept_legacy_agent_profiles: bool = Field(
        default=False, description="Accept platform profiles not in the 2026-04-08 shape "
        "(the conformance suite's mock agent)")
    outbound_allow_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Hosts, IPs or CIDRs that merchant-configured "
        "outbound URLs may reach although private (development, tests); empty by default")
    metrics_token: SecretStr | None = Field(
        default=None, description="When set, /metrics needs `Authorization: Bearer <it>`")
    log_level: str = "INFO"
    log_format: str = Field(default="json", pattern="^(json|text)$")
    run_migrations_on_start: bool = True

    @field_validator("agent_api_keys", "merchant_api_keys", "outbound_allow_hosts",
                     mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return [k.strip() for k in value.split(",") if k.strip()]
        return value

    @field_validator("openai_feed_spec_version")
    @classmethod
    def _known_spec(cls, value: str) -> str:
        from feeds.openai_spec import spec_for

        spec_for(value)
        return value

    @model_validator(mode="after")
    def _production_guards(self) -> Settings:
        if self.stripe_catalog_enabled and self.stripe_api_key is None:
            raise ValueError("REELCART_STRIPE_CATALOG_ENABLED needs REELCART_STRIPE_API_KEY")
        if self.openai_sftp_host and not (self.openai_sftp_username
                                          and self.openai_sftp_host_key):
            raise ValueError("REELCART_OPENAI_SFTP_HOST needs REELCART_OPENAI_SFTP_USERNAME "
                             "and REELCART_OPENAI_SFTP_HOST_KEY (the pinned host key)")
        if self.payments_provider == "stripe" and self.stripe_api_key is None:
            raise ValueError("REELCART_PAYMENTS_PROVIDER=stripe needs REELCART_STRIPE_API_KEY")
        if self.environment == Environment.production:
            if self.database_url.startswith("sqlite"):
                raise ValueError("production needs PostgreSQL (REELCART_DATABASE_URL)")
            if self.dashboard_scrypt_log2_n < 17:
                raise ValueError("production needs REELCART_DASHBOARD_SCRYPT_LOG2_N >= 17")
            if self.agent_api_keys or self.merchant_api_keys:
                raise ValueError("REELCART_AGENT_API_KEYS / REELCART_MERCHANT_API_KEYS are for "
                                 "development; use `reelcart agent-key create` / "
                                 "`reelcart merchant-key create` in production")
            if self.payments_provider == "sandbox":
                raise ValueError("REELCART_ENVIRONMENT=production refuses the sandbox payment "
                                 "provider (it charges nothing); set "
                                 "REELCART_PAYMENTS_PROVIDER=stripe and REELCART_STRIPE_API_KEY")
            if self.ucp_signing_key is None:
                raise ValueError("production needs REELCART_UCP_SIGNING_KEY (reelcart ucp keygen)")
            if self.ucp_simulation_secret is not None:
                raise ValueError("REELCART_UCP_SIMULATION_SECRET is for conformance testing")
            self._refuse_demo_defaults()
        return self

    def _refuse_demo_defaults(self) -> None:
        """Production never runs as the demo: its public address and its merchant profile
        (store name, merchant id, policy links, feed id) must be the merchant's own."""
        if self.public_base_url == DEMO_PUBLIC_BASE_URL or not self.public_base_url.startswith(
                "https://"):
            raise ValueError("production needs REELCART_PUBLIC_BASE_URL: the https:// address "
                             f"agents reach (not {self.public_base_url})")
        if self.merchant_config is None:
            raise ValueError("production needs REELCART_MERCHANT_CONFIG (your merchant "
                             "profile JSON: name, merchant_id, store and policy URLs, rates); "
                             "without it the built-in demo store profile would be served")
        try:
            profile = self.merchant_profile()
        except OSError as exc:
            raise ValueError(f"REELCART_MERCHANT_CONFIG cannot be read: {exc.strerror}: "
                             f"{self.merchant_config}") from None
        except ValueError as exc:  # JSON or the profile's own validation
            first = (exc.errors()[0] if isinstance(exc, ValidationError) else None)
            detail = (f"{'.'.join(map(str, first['loc']))}: {first['msg']}" if first
                      else (str(exc).splitlines() or [""])[0])
            raise ValueError(f"REELCART_MERCHANT_CONFIG is not a valid merchant profile "
                             f"({detail})") from None
        demo = MerchantProfile()
        kept = [name for name in DEMO_PROFILE_FIELDS
                if getattr(profile, name) == getattr(demo, name)]
        if kept:
            raise ValueError("production refuses the demo store's merchant profile: set "
                             f"{', '.join(kept)} in REELCART_MERCHANT_CONFIG")

    def attribution_windows(self) -> tuple[int | None, int | None,
                                           tuple[tuple[str, int | None, int | None], ...]]:
        """(click days, view days, per-model overrides); None = lifetime."""
        click = self.attribution_window_days if self.attribution_window_days is not None \
            else self.attribution_click_window_days
        per_model = []
        for item in filter(None, self.attribution_model_windows.split(",")):
            model, days = item.split("=")
            model_click, model_view = days.split("/")
            per_model.append((model, int(model_click) or None, int(model_view) or None))
        return click or None, self.attribution_view_window_days or None, tuple(per_model)

    def outbound_policy(self) -> OutboundPolicy:
        return OutboundPolicy.from_allow_list(
            self.outbound_allow_hosts, https_only=self.environment == Environment.production)

    @property
    def etsy_enabled(self) -> bool:
        return bool(self.etsy_keystring and self.etsy_shared_secret)

    @property
    def google_merchant_enabled(self) -> bool:
        return bool(self.google_merchant_account_id and self.google_merchant_data_source_id
                    and self.google_service_account_file)

    @property
    def shopify_enabled(self) -> bool:
        return bool(self.shopify_shop and self.shopify_access_token)

    def feed_config(self, profile: MerchantProfile | None = None) -> FeedConfig:
        """Pass the profile when it is already loaded (the runtime's): it lives in a file."""
        p = profile or self.merchant_profile()
        return FeedConfig(
            feed_id=p.feed_id, seller_name=p.name, seller_url=p.store_url,
            privacy_url=p.privacy_url, terms_url=p.terms_url,
            return_policy_url=p.return_policy_url, target_country=p.target_country,
            store_country=p.country, brand=p.default_brand,
            url_params=tuple(p.feed_url_params.items()),
            short_link_base=self.public_base_url,
            shipping=tuple((p.target_country, r.title, r.amount) for r in p.shipping_rates
                           if "*" in r.countries or p.target_country in r.countries))

    def merchant_profile(self) -> MerchantProfile:
        if self.merchant_config is None:
            return MerchantProfile()
        return MerchantProfile.model_validate(json.loads(self.merchant_config.read_text()))


def settings_error_line(exc: ValidationError) -> str:
    """One line for an operator: what is wrong with the configuration (no values echoed)."""
    problems = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        problems.append(f"REELCART_{where.upper()}: {message}" if where else message)
    return "invalid configuration: " + "; ".join(problems)


@lru_cache
def get_settings() -> Settings:
    return Settings()
