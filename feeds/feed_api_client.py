"""Client for an agent-hosted ACP Feed API (``POST /feeds``, ``GET /feeds/{id}``,
``PATCH /feeds/{id}/products``), over an injected ``httpx.AsyncClient``.

Transient failures (transport errors, 429, 5xx) are retried with exponential backoff,
honouring ``Retry-After``; 4xx answers are final (``FeedApiRejected``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from models.outbound import OutboundRefused, error_excerpt, retry_after_seconds

API_VERSION = "2026-04-17"


class FeedApiUnavailable(Exception):
    pass


class FeedApiRejected(Exception):
    pass


class FeedApiClient:
    def __init__(self, http: httpx.AsyncClient, base_url: str, token: str | None, *,
                 max_attempts: int = 5, max_delay: float = 30.0,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self._headers = {"API-Version": API_VERSION, "Content-Type": "application/json"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self.max_attempts = max_attempts
        self.max_delay = max_delay
        self._sleep = sleep
        self.retries = 0

    async def _request(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        delay = 0.5
        for attempt in range(1, self.max_attempts + 1):
            try:
                response = await self.http.request(
                    method, f"{self.base_url}{path}", json=body, headers=self._headers,
                    timeout=httpx.Timeout(60.0, connect=5.0))
            except OutboundRefused as exc:  # permanent: the policy refused the target
                raise FeedApiRejected(f"{method} {path}: {exc}") from None
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}"
                wait = delay
            else:
                if response.status_code < 400:
                    try:
                        result = response.json()
                    except ValueError:
                        raise FeedApiRejected(f"{method} {path}: HTTP "
                                              f"{response.status_code} without a JSON body"
                                              ) from None
                    if not isinstance(result, dict):
                        raise FeedApiRejected(f"{method} {path}: the answer is not an object")
                    return result
                if response.status_code != 429 and response.status_code < 500:
                    raise FeedApiRejected(f"{method} {path}: HTTP {response.status_code} "
                                          f"{error_excerpt(response.text) or ''}")
                problem = f"HTTP {response.status_code}"
                wait = retry_after_seconds(response.headers.get("retry-after"),
                                           cap=self.max_delay) or delay
            if attempt == self.max_attempts:
                raise FeedApiUnavailable(f"{method} {path}: {problem} after {attempt} tries")
            self.retries += 1
            await self._sleep(min(wait, self.max_delay))
            delay = min(delay * 2, self.max_delay)
        raise AssertionError("unreachable")

    async def create_feed(self, target_country: str | None) -> dict[str, Any]:
        body = {"target_country": target_country} if target_country else {}
        return await self._request("POST", "/feeds", body)

    async def get_feed(self, feed_id: str) -> dict[str, Any]:
        return await self._request("GET", f"/feeds/{feed_id}")

    async def upsert_products(self, feed_id: str, products: list[dict[str, Any]]
                              ) -> dict[str, Any]:
        return await self._request("PATCH", f"/feeds/{feed_id}/products",
                                   {"products": products})
