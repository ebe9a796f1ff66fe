"""Building the Etsy integration from settings (called by the composition root)."""

from __future__ import annotations

import asyncio
from typing import Protocol

import httpx
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from attribution.ledger import LedgerPolicy
from etsy.client import EtsyApi, OAuthClient, Sleep
from etsy.service import EtsyIntegration, TokenStore


class EtsySettings(Protocol):
    """The settings the integration reads (``api.settings.Settings`` fits)."""

    @property
    def etsy_enabled(self) -> bool: ...
    etsy_keystring: str | None
    etsy_shared_secret: SecretStr | None
    etsy_shop_id: str | None
    etsy_token_key: SecretStr | None
    etsy_access_token: SecretStr | None
    etsy_refresh_token: SecretStr | None
    etsy_api_base: str


def build_etsy(settings: EtsySettings, sessionmaker: async_sessionmaker[AsyncSession],
               http: httpx.AsyncClient, ledger_policy: LedgerPolicy,
               sleep: Sleep | None = None, video_http: httpx.AsyncClient | None = None
               ) -> EtsyIntegration | None:
    """``http`` talks to Etsy only; ``video_http`` (the outbound-policy client) fetches the
    merchant's video files."""
    if not settings.etsy_enabled:
        return None
    assert settings.etsy_keystring is not None
    assert settings.etsy_shared_secret is not None
    secret = settings.etsy_shared_secret.get_secret_value()
    oauth = OAuthClient(http, keystring=settings.etsy_keystring, shared_secret=secret,
                        base_url=settings.etsy_api_base)
    key = settings.etsy_token_key
    tokens = TokenStore(
        sessionmaker, oauth, Fernet(key.get_secret_value().encode()) if key else None,
        env_access_token=settings.etsy_access_token.get_secret_value()
        if settings.etsy_access_token else None,
        env_refresh_token=settings.etsy_refresh_token.get_secret_value()
        if settings.etsy_refresh_token else None)
    api = EtsyApi(http, keystring=settings.etsy_keystring, shared_secret=secret, tokens=tokens,
                  base_url=settings.etsy_api_base, sleep=sleep or asyncio.sleep)
    return EtsyIntegration(sessionmaker=sessionmaker, api=api, tokens=tokens, http=http,
                           shop_id=settings.etsy_shop_id, ledger_policy=ledger_policy,
                           video_http=video_http)
