"""Etsy Open API v3 over an injected ``httpx.AsyncClient``.

Every request carries ``x-api-key: <keystring>:<shared secret>`` (required by Etsy since
January 2026) and the shop's OAuth 2.0 bearer token. Rate limits: Etsy answers 429 with
``Retry-After`` when the per-second or per-day allowance is spent; short waits are slept
here with exponential backoff, long ones (the daily quota) are raised to the caller so a
worker reschedules instead of blocking. The ``x-limit-per-day`` / ``x-remaining-today``
headers are kept in ``rate`` for the integration-health page. A 401 refreshes the token
once. Nothing here touches the database.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlencode

import httpx

from etsy.errors import EtsyRejected, EtsyUnavailable

API_BASE = "https://api.etsy.com"
AUTHORIZE_URL = "https://www.etsy.com/oauth/connect"
TOKEN_PATH = "/v3/public/oauth/token"
SCOPES = "listings_r listings_w transactions_r transactions_w shops_r"
MAX_SLEEP = 60.0  # longer waits (the daily quota) go back to the caller

Json = dict[str, Any]
Sleep = Callable[[float], Awaitable[None]]


class TokenProvider(Protocol):
    async def access_token(self, *, refresh: bool = False) -> str: ...


@dataclass
class RateState:
    limit_per_second: int | None = None
    remaining_this_second: int | None = None
    limit_per_day: int | None = None
    remaining_today: int | None = None
    throttled: int = 0  # 429 answers seen by this client
    last_retry_after: float | None = None

    def observe(self, headers: httpx.Headers) -> None:
        for attr, name in (("limit_per_second", "x-limit-per-second"),
                           ("remaining_this_second", "x-remaining-this-second"),
                           ("limit_per_day", "x-limit-per-day"),
                           ("remaining_today", "x-remaining-today")):
            value = headers.get(name)
            if value is not None and value.strip().lstrip("-").isdigit():
                setattr(self, attr, int(value))


def _retry_after(response: httpx.Response) -> float | None:
    raw = response.headers.get("retry-after")
    try:
        return max(float(raw), 0.0) if raw is not None else None
    except ValueError:
        return None


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict):
        return str(body.get("error") or body.get("error_description") or body)[:300]
    return str(body)[:300]


class EtsyApi:
    def __init__(self, http: httpx.AsyncClient, *, keystring: str, shared_secret: str,
                 tokens: TokenProvider, base_url: str = API_BASE, max_retries: int = 4,
                 sleep: Sleep = asyncio.sleep, timeout: float = 30.0) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.api_key = f"{keystring}:{shared_secret}"
        self.tokens = tokens
        self.max_retries = max_retries
        self.sleep = sleep
        self.timeout = timeout
        self.rate = RateState()

    async def _send(self, method: str, path: str, token: str, **kwargs: Any) -> httpx.Response:
        headers = {"x-api-key": self.api_key, "Authorization": f"Bearer {token}",
                   **kwargs.pop("headers", {})}
        return await self.http.request(method, f"{self.base_url}{path}", headers=headers,
                                       timeout=self.timeout, **kwargs)

    async def call(self, operation: str, method: str, path: str, **kwargs: Any) -> Any:
        """One Etsy operation: 429 backoff, one token refresh on 401, errors classified.
        Reads (GET) are also retried on 5xx and network errors; writes are not (the
        caller decides, because a write may have happened)."""
        safe = method == "GET"
        refreshed = False
        attempt = 0
        token = await self.tokens.access_token()
        while True:
            attempt += 1
            try:
                response = await self._send(method, path, token, **kwargs)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                if safe and attempt <= self.max_retries:
                    await self.sleep(min(2.0 ** attempt, MAX_SLEEP))
                    continue
                raise EtsyUnavailable(f"{operation}: {type(exc).__name__}",
                                      ambiguous=False) from None
            except httpx.HTTPError as exc:
                if safe and attempt <= self.max_retries:
                    await self.sleep(min(2.0 ** attempt, MAX_SLEEP))
                    continue
                raise EtsyUnavailable(f"{operation}: {type(exc).__name__}",
                                      ambiguous=True) from None
            self.rate.observe(response.headers)
            status = response.status_code
            if status == 429:
                self.rate.throttled += 1
                header = _retry_after(response)  # Etsy's word first, else exponential
                wait = header if header is not None else min(2.0 ** attempt, MAX_SLEEP)
                self.rate.last_retry_after = wait
                if attempt > self.max_retries or wait > MAX_SLEEP:
                    raise EtsyUnavailable(f"{operation}: HTTP 429 (rate limited)",
                                          ambiguous=False, retry_after=wait,
                                          rate_limited=True)
                await self.sleep(wait)  # Etsy did not run the request: resend as is
                continue
            if status == 401 and not refreshed:
                refreshed = True
                token = await self.tokens.access_token(refresh=True)
                continue
            if status >= 500:
                if safe and attempt <= self.max_retries:
                    await self.sleep(min(2.0 ** attempt, MAX_SLEEP))
                    continue
                raise EtsyUnavailable(f"{operation}: HTTP {status}", ambiguous=not safe)
            if status >= 400:
                raise EtsyRejected(f"{operation}: HTTP {status} {_message(response)}", status)
            if status == 204 or not response.content:
                return None
            return response.json()

    # ------------------------------------------------------------------ operations

    async def me(self) -> Json:
        result: Json = await self.call("getMe", "GET", "/v3/application/users/me")
        return result

    async def listings_page(self, shop_id: str, offset: int, limit: int = 100) -> Json:
        """getListingsByShop: active listings, most recently updated first, with their
        images and inventory (products, offerings, quantities, SKUs)."""
        result: Json = await self.call(
            "getListingsByShop", "GET", f"/v3/application/shops/{shop_id}/listings",
            params={"state": "active", "limit": limit, "offset": offset,
                    "sort_on": "updated", "sort_order": "desc",
                    "includes": "Images,Inventory"})
        return result

    async def listing_inventory(self, listing_id: str) -> Json:
        result: Json = await self.call("getListingInventory", "GET",
                                       f"/v3/application/listings/{listing_id}/inventory")
        return result

    async def update_listing_inventory(self, listing_id: str, body: bytes) -> Json:
        """updateListingInventory: the whole inventory (every product) is replaced. Setting
        absolute quantities makes a repeat harmless."""
        result: Json = await self.call(
            "updateListingInventory", "PUT", f"/v3/application/listings/{listing_id}/inventory",
            content=body, headers={"Content-Type": "application/json"})
        return result

    async def shop_receipts(self, shop_id: str, *, min_last_modified: int | None,
                            offset: int, limit: int = 100) -> Json:
        params: dict[str, Any] = {"was_paid": "true", "sort_on": "updated",
                                  "sort_order": "asc", "limit": limit, "offset": offset}
        if min_last_modified is not None:
            params["min_last_modified"] = min_last_modified
        result: Json = await self.call("getShopReceipts", "GET",
                                       f"/v3/application/shops/{shop_id}/receipts",
                                       params=params)
        return result

    async def shop_receipt(self, shop_id: str, receipt_id: str) -> Json:
        result: Json = await self.call(
            "getShopReceipt", "GET", f"/v3/application/shops/{shop_id}/receipts/{receipt_id}")
        return result

    async def create_receipt_shipment(self, shop_id: str, receipt_id: str, *,
                                      tracking_code: str, carrier_name: str) -> Json:
        result: Json = await self.call(
            "createReceiptShipment", "POST",
            f"/v3/application/shops/{shop_id}/receipts/{receipt_id}/tracking",
            data={"tracking_code": tracking_code, "carrier_name": carrier_name})
        return result

    async def upload_listing_video(self, shop_id: str, listing_id: str, *, name: str,
                                   content: bytes, content_type: str = "video/mp4") -> Json:
        result: Json = await self.call(
            "uploadListingVideo", "POST",
            f"/v3/application/shops/{shop_id}/listings/{listing_id}/videos",
            data={"name": name}, files={"video": (name, content, content_type)})
        return result

    async def delete_listing_video(self, shop_id: str, listing_id: str, video_id: str) -> None:
        await self.call("deleteListingVideo", "DELETE",
                        f"/v3/application/shops/{shop_id}/listings/{listing_id}/videos/"
                        f"{video_id}")


# ---------------------------------------------------------------------- OAuth 2.0 + PKCE

def pkce_pair() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge), RFC 7636."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(
        hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorization_url(*, keystring: str, redirect_uri: str, state: str, challenge: str,
                      scopes: str = SCOPES) -> str:
    return AUTHORIZE_URL + "?" + urlencode({
        "response_type": "code", "client_id": keystring, "redirect_uri": redirect_uri,
        "scope": scopes, "state": state, "code_challenge": challenge,
        "code_challenge_method": "S256"})


class OAuthClient:
    """The token endpoint: authorisation-code exchange and refresh."""

    def __init__(self, http: httpx.AsyncClient, *, keystring: str, shared_secret: str,
                 base_url: str = API_BASE) -> None:
        self.http = http
        self.keystring = keystring
        self.api_key = f"{keystring}:{shared_secret}"
        self.url = base_url.rstrip("/") + TOKEN_PATH

    async def _token(self, form: dict[str, str]) -> Json:
        try:
            response = await self.http.post(self.url, data=form,
                                            headers={"x-api-key": self.api_key}, timeout=30)
        except httpx.HTTPError as exc:
            raise EtsyUnavailable(f"token: {type(exc).__name__}", ambiguous=True) from None
        if response.status_code == 429 or response.status_code >= 500:
            raise EtsyUnavailable(f"token: HTTP {response.status_code}", ambiguous=True,
                                  retry_after=_retry_after(response))
        if response.status_code >= 400:
            raise EtsyRejected(f"token: {_message(response)}", response.status_code)
        body: Json = response.json()
        if not body.get("access_token"):
            raise EtsyRejected("token: no access_token in the answer")
        return body

    async def exchange_code(self, *, code: str, verifier: str, redirect_uri: str) -> Json:
        return await self._token({"grant_type": "authorization_code",
                                  "client_id": self.keystring, "redirect_uri": redirect_uri,
                                  "code": code, "code_verifier": verifier})

    async def refresh(self, refresh_token: str) -> Json:
        return await self._token({"grant_type": "refresh_token", "client_id": self.keystring,
                                  "refresh_token": refresh_token})
