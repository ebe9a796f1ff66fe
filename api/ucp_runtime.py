"""Wiring for the UCP binding (part of the composition root: settings in, objects out)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from api.settings import Environment, Settings
from orders.notify import set_listener
from protocols.ucp.negotiation import ProfileResolver
from protocols.ucp.payments import handlers_for
from protocols.ucp.profile import BusinessProfile
from protocols.ucp.service import UcpCheckoutService
from protocols.ucp.signing import SigningKey
from protocols.ucp.webhooks import TOPIC, UcpWebhookDeliverer, listener

if TYPE_CHECKING:
    from api.runtime import Runtime

__all__ = ["TOPIC", "UcpBinding", "build_ucp", "signing_key"]


@dataclass
class UcpBinding:
    profile: BusinessProfile
    service: UcpCheckoutService
    resolver: ProfileResolver
    key: SigningKey
    deliverer: UcpWebhookDeliverer


def signing_key(settings: Settings) -> SigningKey:
    if settings.ucp_signing_key is not None:
        return SigningKey.from_pem(settings.ucp_signing_key_id,
                                   settings.ucp_signing_key.get_secret_value())
    if settings.environment == Environment.production:  # the settings guard refuses this
        raise ValueError("REELCART_UCP_SIGNING_KEY is required in production")
    # Development and tests: a key every process derives alike (never for production).
    return SigningKey.derived(settings.ucp_signing_key_id,
                              f"reelcart-dev-ucp:{settings.public_base_url}".encode())


def build_ucp(runtime: Runtime) -> UcpBinding:
    settings = runtime.settings
    key = signing_key(settings)
    handlers = handlers_for(
        settings.payments_provider, public_base_url=settings.public_base_url,
        stripe_account_id=settings.stripe_account_id,
        stripe_publishable_key=settings.stripe_publishable_key,
        merchant_name=runtime.profile.name)
    profile = BusinessProfile(settings.public_base_url, handlers, (key.public_jwk(),))
    service = UcpCheckoutService(core=runtime.checkout, profile=profile, handlers=handlers)
    resolver = ProfileResolver(
        runtime.outbound_http, policy=settings.outbound_policy(),
        accept_legacy=settings.ucp_accept_legacy_agent_profiles)
    deliverer = UcpWebhookDeliverer(
        runtime.sessionmaker, runtime.outbound_http, key,
        settings.public_base_url.rstrip("/") + "/.well-known/ucp", resolver.check_url)
    set_listener("ucp", listener(service))
    return UcpBinding(profile, service, resolver, key, deliverer)
