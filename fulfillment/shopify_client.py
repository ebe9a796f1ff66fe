"""A small Shopify Admin GraphQL client over an injected ``httpx.AsyncClient``.

Errors, as in httpx, come in two families:

* ``ShopifyUnavailable`` — retry later. ``ambiguous`` is True when the request may have
  been executed (5xx, read timeout after sending): ``orderCreate`` has no idempotency, so
  the caller must look the order up before sending it again. Throttling (``THROTTLED``,
  HTTP 429) and connect failures are not ambiguous: Shopify did not run the mutation.
* ``ShopifyRejected`` — Shopify said no (``userErrors``, 4xx): retrying will not help.
"""

from __future__ import annotations

from typing import Any

import httpx


class ShopifyUnavailable(Exception):
    def __init__(self, message: str, *, ambiguous: bool, retry_after: float | None = None
                 ) -> None:
        super().__init__(message)
        self.ambiguous = ambiguous
        self.retry_after = retry_after


class ShopifyRejected(Exception):
    pass


FIND_ORDER = """query FindOrderBySourceIdentifier($q: String!) {
  orders(first: 1, query: $q) { nodes { id legacyResourceId name sourceIdentifier } }
}"""

ORDER_CREATE = """mutation OrderCreate($order: OrderCreateOrderInput!,
                                       $options: OrderCreateOptionsInput) {
  orderCreate(order: $order, options: $options) {
    order { id legacyResourceId name sourceIdentifier displayFinancialStatus }
    userErrors { field message code }
  }
}"""


PRODUCTS_PAGE = """query CatalogPage($cursor: String) {
  shop { currencyCode }
  products(first: 50, after: $cursor, sortKey: ID) {
    pageInfo { hasNextPage endCursor }
    nodes {
      id legacyResourceId title description vendor onlineStoreUrl handle
      images(first: 5) { nodes { url altText } }
      variants(first: 100) {
        nodes { id legacyResourceId title sku price compareAtPrice inventoryQuantity
                availableForSale selectedOptions { name value } image { url } }
      }
    }
  }
}"""


class ShopifyAdmin:
    def __init__(self, http: httpx.AsyncClient, *, shop: str, access_token: str,
                 api_version: str, timeout: float = 15.0) -> None:
        domain = shop if "." in shop else f"{shop}.myshopify.com"
        self.endpoint = f"https://{domain}/admin/api/{api_version}/graphql.json"
        self.http = http
        self._token = access_token
        self._timeout = timeout

    async def _graphql(self, operation: str, query: str, variables: dict[str, Any]
                       ) -> dict[str, Any]:
        try:
            response = await self.http.post(
                self.endpoint, json={"operationName": operation, "query": query,
                                     "variables": variables},
                headers={"X-Shopify-Access-Token": self._token}, timeout=self._timeout)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise ShopifyUnavailable(f"{operation}: {type(exc).__name__}",
                                     ambiguous=False) from None
        except httpx.HTTPError as exc:  # sent, answer lost: it may have happened
            raise ShopifyUnavailable(f"{operation}: {type(exc).__name__}",
                                     ambiguous=True) from None
        if response.status_code == 429:
            retry = response.headers.get("retry-after", "2")
            raise ShopifyUnavailable(f"{operation}: HTTP 429", ambiguous=False,
                                     retry_after=float(retry) if retry.replace(
                                         ".", "", 1).isdigit() else 2.0)
        if response.status_code >= 500:
            raise ShopifyUnavailable(f"{operation}: HTTP {response.status_code}",
                                     ambiguous=True)
        if response.status_code >= 400:
            raise ShopifyRejected(f"{operation}: HTTP {response.status_code} "
                                  f"{response.text[:200]}")
        body = response.json()
        errors = body.get("errors") or []
        if errors:
            codes = {(e.get("extensions") or {}).get("code") for e in errors}
            if "THROTTLED" in codes:
                raise ShopifyUnavailable(f"{operation}: throttled", ambiguous=False,
                                         retry_after=_throttle_wait(body))
            if "INTERNAL_SERVER_ERROR" in codes:
                raise ShopifyUnavailable(f"{operation}: internal error", ambiguous=True)
            raise ShopifyRejected(f"{operation}: {errors[0].get('message')}")
        data: dict[str, Any] = body.get("data") or {}
        return data

    async def find_order_by_source_identifier(self, source_identifier: str
                                              ) -> dict[str, Any] | None:
        data = await self._graphql("FindOrderBySourceIdentifier", FIND_ORDER,
                                   {"q": f"source_identifier:'{source_identifier}'"})
        nodes = ((data.get("orders") or {}).get("nodes")) or []
        match = [n for n in nodes if n.get("sourceIdentifier") == source_identifier]
        return match[0] if match else None

    async def products_page(self, cursor: str | None) -> dict[str, Any]:
        """One page of products with their variants; ``pageInfo`` says how to continue."""
        return await self._graphql("CatalogPage", PRODUCTS_PAGE, {"cursor": cursor})

    async def order_create(self, order: dict[str, Any], options: dict[str, Any]
                           ) -> dict[str, Any]:
        data = await self._graphql("OrderCreate", ORDER_CREATE,
                                   {"order": order, "options": options})
        result = data.get("orderCreate") or {}
        if result.get("userErrors"):
            messages = "; ".join(f"{'.'.join(e.get('field') or [])}: {e.get('message')}"
                                 for e in result["userErrors"])
            raise ShopifyRejected(messages)
        created: dict[str, Any] | None = result.get("order")
        if not created:
            raise ShopifyUnavailable("OrderCreate: no order in the answer", ambiguous=True)
        return created


def _throttle_wait(body: dict[str, Any]) -> float:
    cost = (body.get("extensions") or {}).get("cost") or {}
    status = cost.get("throttleStatus") or {}
    try:
        missing = float(cost.get("requestedQueryCost", 10)) - float(
            status.get("currentlyAvailable", 0))
        return max(1.0, missing / max(float(status.get("restoreRate", 50)), 1.0))
    except (TypeError, ValueError):
        return 2.0
