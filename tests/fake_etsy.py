"""A stateful fake of Etsy's Open API v3 (served through pytest-httpx), built from the
published shapes: ``ShopListing`` with ``includes=Images,Inventory``, ``ListingInventory``
(products → offerings, ``Money`` = amount/divisor/currency_code), ``ShopReceipt`` with
``transactions`` and ``shipments``, ``ListingVideo``, the OAuth token endpoint, the
``x-api-key: keystring:shared_secret`` rule, the rate-limit headers, and Standard-Webhooks
signed ``order.paid`` deliveries (``{event_type, resource_url, shop_id}``).

Like Etsy, an inventory update replaces the products and issues new product and offering
ids. Faults are scripted: ``throttle(n, retry_after)`` answers 429 n times;
``faults[operation] = [...]`` with ``"500"`` or ``"commit_then_500"`` (the write happens,
the answer is lost).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import re
import secrets
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

import httpx

BASE = "https://api.etsy.com"
API_PATTERN = re.compile(r"https://api\.etsy\.com/v3/.*")
KEYSTRING = "etsykeystring123"
SHARED_SECRET = "etsysharedsecret456"
USER_ID = 77001
SHOP_ID = 5550001
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"etsy-webhook-signing-key-32bytes").decode()
VIDEO_HOST = "https://cdn.videos.test"
Json = dict[str, Any]


def money(minor: int, currency: str = "USD") -> Json:
    return {"amount": minor, "divisor": 100, "currency_code": currency}


@dataclass
class FakeEtsy:
    listings: dict[int, Json] = field(default_factory=dict)
    inventories: dict[int, Json] = field(default_factory=dict)
    receipts: dict[int, Json] = field(default_factory=dict)
    videos: dict[int, list[Json]] = field(default_factory=dict)
    uploads: list[tuple[int, bytes]] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    puts: list[tuple[int, Json]] = field(default_factory=list)
    shipments_posted: list[tuple[int, str]] = field(default_factory=list)
    faults: dict[str, list[str]] = field(default_factory=dict)
    throttled: list[str] = field(default_factory=list)
    access_tokens: set[str] = field(default_factory=set)
    refresh_tokens: set[str] = field(default_factory=set)
    token_requests: list[Json] = field(default_factory=list)
    challenges: dict[str, str] = field(default_factory=dict)  # code → code_challenge
    remaining_today: int = 10_000
    clock: int = 1_780_000_000
    ids: Any = field(default_factory=lambda: itertools.count(900_001))

    # ------------------------------------------------------------------ seller-side setup

    def tick(self) -> int:
        self.clock += 10
        return self.clock

    def add_listing(self, listing_id: int, title: str, products: list[Json], *,
                    description: str = "Handmade.", images: int = 1) -> None:
        """``products``: [{"sku", "price" (minor), "quantity", "values": [(pid, vid, name,
        value)]}]."""
        self.listings[listing_id] = {
            "listing_id": listing_id, "user_id": USER_ID, "shop_id": SHOP_ID, "title": title,
            "description": description, "state": "active", "quantity": 0,
            "url": f"https://www.etsy.com/listing/{listing_id}/x", "is_digital": False,
            "has_variations": any(p.get("values") for p in products),
            "price": money(products[0]["price"]), "skus": [p.get("sku") or "" for p in products],
            "images": [{"listing_id": listing_id, "listing_image_id": listing_id * 10 + i,
                        "rank": i + 1, "alt_text": None,
                        "url_fullxfull": f"https://i.etsystatic.com/{listing_id}/{i}.jpg",
                        "url_570xN": f"https://i.etsystatic.com/{listing_id}/{i}_570.jpg"}
                       for i in range(images)],
            "created_timestamp": self.clock, "updated_timestamp": self.tick(),
            "last_modified_timestamp": self.clock}
        self.inventories[listing_id] = {
            "products": [self._product(p) for p in products],
            "price_on_property": [], "quantity_on_property": [p[0] for p in (
                products[0].get("values") or [])], "sku_on_property": []}
        self._sync_quantity(listing_id)

    def _product(self, spec: Json) -> Json:
        return {"product_id": next(self.ids), "sku": spec.get("sku") or "", "is_deleted": False,
                "offerings": [{"offering_id": next(self.ids), "quantity": spec["quantity"],
                               "is_enabled": True, "is_deleted": False,
                               "price": money(spec["price"])}],
                "property_values": [{"property_id": pid, "property_name": name,
                                     "scale_id": None, "scale_name": None,
                                     "value_ids": [vid], "values": [value]}
                                    for pid, vid, name, value in spec.get("values") or []]}

    def _sync_quantity(self, listing_id: int) -> None:
        self.listings[listing_id]["quantity"] = sum(
            o["quantity"] for p in self.inventories[listing_id]["products"]
            for o in p["offerings"])

    def touch(self, listing_id: int, **changes: Any) -> None:
        self.listings[listing_id].update(changes)
        self.listings[listing_id]["updated_timestamp"] = self.tick()

    def quantity(self, listing_id: int, sku: str | None = None) -> int:
        for product in self.inventories[listing_id]["products"]:
            if sku is None or product["sku"] == sku:
                return int(product["offerings"][0]["quantity"])
        raise KeyError(sku)

    def sell(self, listing_id: int, quantity: int = 1, sku: str | None = None) -> int:
        """A buyer pays on Etsy: Etsy takes its own stock and writes a receipt."""
        product = next(p for p in self.inventories[listing_id]["products"]
                       if sku is None or p["sku"] == sku)
        offering = product["offerings"][0]
        if offering["quantity"] < quantity:
            raise ValueError("sold out on Etsy")
        offering["quantity"] -= quantity
        self._sync_quantity(listing_id)
        receipt_id = next(self.ids)
        listing = self.listings[listing_id]
        price = offering["price"]["amount"]
        now = self.tick()
        self.receipts[receipt_id] = {
            "receipt_id": receipt_id, "receipt_type": 0, "seller_user_id": USER_ID,
            "buyer_user_id": 4242, "buyer_email": None, "name": "Grace Hopper",
            "first_line": "1 Main St", "second_line": None, "city": "Arlington",
            "state": "VA", "zip": "22201", "status": "paid", "country_iso": "US",
            "formatted_address": "Grace Hopper\n1 Main St\nArlington, VA 22201",
            "payment_method": "cc", "message_from_buyer": None, "is_paid": True,
            "is_shipped": False, "create_timestamp": now, "created_timestamp": now,
            "update_timestamp": now, "updated_timestamp": now, "is_gift": False,
            "grandtotal": money(price * quantity + 500 + 100),
            "subtotal": money(price * quantity), "total_price": money(price * quantity),
            "total_shipping_cost": money(500), "total_tax_cost": money(100),
            "total_vat_cost": money(0), "discount_amt": money(0), "gift_wrap_price": money(0),
            "shipments": [], "refunds": [],
            "transactions": [{
                "transaction_id": next(self.ids), "title": listing["title"],
                "seller_user_id": USER_ID, "buyer_user_id": 4242, "quantity": quantity,
                "receipt_id": receipt_id, "is_digital": False, "listing_id": listing_id,
                "transaction_type": "listing", "product_id": product["product_id"],
                "sku": product["sku"], "price": offering["price"], "shipping_cost": money(500),
                "variations": [{"property_id": pv["property_id"], "value_id": pv["value_ids"][0],
                                "formatted_name": pv["property_name"],
                                "formatted_value": pv["values"][0]}
                               for pv in product["property_values"]],
                "product_data": product["property_values"], "create_timestamp": now,
                "paid_timestamp": now, "shipped_timestamp": None}]}
        return receipt_id

    def issue_tokens(self) -> Json:
        access, refresh = f"{USER_ID}.{secrets.token_urlsafe(12)}", \
            f"{USER_ID}.{secrets.token_urlsafe(12)}"
        self.access_tokens.add(access)
        self.refresh_tokens.add(refresh)
        return {"access_token": access, "token_type": "Bearer", "expires_in": 3600,
                "refresh_token": refresh}

    def throttle(self, times: int, retry_after: str = "1") -> None:
        self.throttled.extend([retry_after] * times)

    def count(self, operation: str) -> int:
        return self.calls.count(operation)

    # ------------------------------------------------------------------ HTTP

    def _json(self, status: int, body: Any) -> httpx.Response:
        self.remaining_today -= 1
        return httpx.Response(status, json=body, headers={
            "x-limit-per-second": "10", "x-remaining-this-second": "9",
            "x-limit-per-day": "10000", "x-remaining-today": str(self.remaining_today)})

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.headers.get("x-api-key") != f"{KEYSTRING}:{SHARED_SECRET}":
            return httpx.Response(403, json={
                "error": "Shared secret is required in x-api-key header."})
        if path == "/v3/public/oauth/token":
            return self._token(request)
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        if token not in self.access_tokens:
            return httpx.Response(401, json={"error": "invalid_token",
                                             "error_description": "access token is invalid"})
        if self.throttled:
            retry_after = self.throttled.pop(0)
            self.calls.append("429")
            return httpx.Response(429, headers={
                "retry-after": retry_after, "x-limit-per-day": "10000",
                "x-remaining-today": str(self.remaining_today)},
                json={"error": "You have exceeded your quota."})
        for pattern, method, name in ROUTES:
            match = re.fullmatch(pattern, path)
            if match and request.method == method:
                self.calls.append(name)
                queue = self.faults.get(name) or []
                fault = queue.pop(0) if queue else None
                if fault == "500":
                    return self._json(500, {"error": "Internal error"})
                response: httpx.Response = getattr(self, name)(request, *match.groups())
                if fault == "commit_then_500":
                    return self._json(500, {"error": "Internal error"})
                return response
        return self._json(404, {"error": f"no route {request.method} {path}"})

    def _token(self, request: httpx.Request) -> httpx.Response:
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        self.token_requests.append(form)
        if form.get("client_id") != KEYSTRING:
            return httpx.Response(400, json={"error": "invalid_client"})
        if form.get("grant_type") == "refresh_token":
            if form.get("refresh_token") not in self.refresh_tokens:
                return httpx.Response(400, json={"error": "invalid_grant"})
            self.refresh_tokens.discard(form["refresh_token"])  # rotated on use
            return httpx.Response(200, json=self.issue_tokens())
        if form.get("grant_type") == "authorization_code":
            challenge = self.challenges.pop(form.get("code", ""), None)
            verifier = form.get("code_verifier", "")
            computed = base64.urlsafe_b64encode(
                hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            if challenge is None or computed != challenge:
                return httpx.Response(400, json={"error": "invalid_grant"})
            return httpx.Response(200, json=self.issue_tokens())
        return httpx.Response(400, json={"error": "unsupported_grant_type"})

    # ------------------------------------------------------------------ operations

    def getMe(self, request: httpx.Request) -> httpx.Response:  # noqa: N802
        return self._json(200, {"user_id": USER_ID, "shop_id": SHOP_ID})

    def getListingsByShop(self, request: httpx.Request, shop: str  # noqa: N802
                          ) -> httpx.Response:
        params = request.url.params
        assert params.get("state") == "active"
        limit, offset = int(params.get("limit", 25)), int(params.get("offset", 0))
        assert 1 <= limit <= 100
        includes = (params.get("includes") or "").split(",")
        ordered = sorted(self.listings.values(), key=lambda lst: (
            lst["updated_timestamp"], lst["listing_id"]), reverse=True)
        page = []
        for listing in ordered[offset:offset + limit]:
            item = {k: v for k, v in listing.items() if k != "images"}
            if "Images" in includes:
                item["images"] = listing["images"]
            if "Inventory" in includes:
                item["inventory"] = self.inventories[listing["listing_id"]]
            page.append(item)
        return self._json(200, {"count": len(ordered), "results": page})

    def getListingInventory(self, request: httpx.Request, listing: str  # noqa: N802
                            ) -> httpx.Response:
        return self._json(200, self.inventories[int(listing)])

    def updateListingInventory(self, request: httpx.Request, listing: str  # noqa: N802
                               ) -> httpx.Response:
        body = json.loads(request.content, parse_float=Decimal)
        listing_id = int(listing)
        self.puts.append((listing_id, body))
        products = []
        for spec in body["products"]:
            offerings = []
            for offering in spec["offerings"]:
                price = Decimal(str(offering["price"]))
                if not isinstance(offering["quantity"], int) or offering["quantity"] < 0:
                    return self._json(400, {"error": "quantity must be a non-negative int"})
                offerings.append({"offering_id": next(self.ids),
                                  "quantity": offering["quantity"],
                                  "is_enabled": offering.get("is_enabled", True),
                                  "is_deleted": False,
                                  "price": money(int(price * 100))})
            products.append({"product_id": next(self.ids), "sku": spec.get("sku") or "",
                             "is_deleted": False, "offerings": offerings,
                             "property_values": [{**pv, "scale_name": None}
                                                 for pv in spec.get("property_values") or []]})
        self.inventories[listing_id] = {
            "products": products, "price_on_property": body.get("price_on_property") or [],
            "quantity_on_property": body.get("quantity_on_property") or [],
            "sku_on_property": body.get("sku_on_property") or []}
        self._sync_quantity(listing_id)
        self.touch(listing_id)
        return self._json(200, self.inventories[listing_id])

    def getShopReceipts(self, request: httpx.Request, shop: str  # noqa: N802
                        ) -> httpx.Response:
        params = request.url.params
        since = int(params.get("min_last_modified", 0))
        limit, offset = int(params.get("limit", 25)), int(params.get("offset", 0))
        chosen = sorted((r for r in self.receipts.values()
                         if r["updated_timestamp"] >= since
                         and (params.get("was_paid") != "true" or r["is_paid"])),
                        key=lambda r: (r["updated_timestamp"], r["receipt_id"]))
        return self._json(200, {"count": len(chosen), "results": chosen[offset:offset + limit]})

    def getShopReceipt(self, request: httpx.Request, shop: str, receipt: str  # noqa: N802
                       ) -> httpx.Response:
        found = self.receipts.get(int(receipt))
        return self._json(200, found) if found else self._json(404, {"error": "not found"})

    def createReceiptShipment(self, request: httpx.Request, shop: str,  # noqa: N802
                              receipt: str) -> httpx.Response:
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        found = self.receipts[int(receipt)]
        found["shipments"].append({
            "receipt_shipping_id": next(self.ids), "carrier_name": form["carrier_name"],
            "tracking_code": form["tracking_code"],
            "shipment_notification_timestamp": self.tick()})
        found["is_shipped"] = True
        found["updated_timestamp"] = self.clock
        self.shipments_posted.append((int(receipt), form["tracking_code"]))
        return self._json(200, found)

    def uploadListingVideo(self, request: httpx.Request, shop: str,  # noqa: N802
                           listing: str) -> httpx.Response:
        assert request.headers["content-type"].startswith("multipart/form-data")
        content = request.content
        self.uploads.append((int(listing), content))
        video = {"video_id": next(self.ids), "height": 1080, "width": 1920,
                 "thumbnail_url": "https://v.etsystatic.com/thumb.jpg",
                 "video_url": "https://v.etsystatic.com/video.mp4", "video_state": "active"}
        self.videos.setdefault(int(listing), []).append(video)
        return self._json(201, video)

    def deleteListingVideo(self, request: httpx.Request, shop: str, listing: str,  # noqa: N802
                           video: str) -> httpx.Response:
        kept = [v for v in self.videos.get(int(listing), []) if v["video_id"] != int(video)]
        self.videos[int(listing)] = kept
        return httpx.Response(204)


ROUTES = [
    (r"/v3/application/users/me", "GET", "getMe"),
    (r"/v3/application/shops/(\d+)/listings", "GET", "getListingsByShop"),
    (r"/v3/application/listings/(\d+)/inventory", "GET", "getListingInventory"),
    (r"/v3/application/listings/(\d+)/inventory", "PUT", "updateListingInventory"),
    (r"/v3/application/shops/(\d+)/receipts", "GET", "getShopReceipts"),
    (r"/v3/application/shops/(\d+)/receipts/(\d+)", "GET", "getShopReceipt"),
    (r"/v3/application/shops/(\d+)/receipts/(\d+)/tracking", "POST", "createReceiptShipment"),
    (r"/v3/application/shops/(\d+)/listings/(\d+)/videos", "POST", "uploadListingVideo"),
    (r"/v3/application/shops/(\d+)/listings/(\d+)/videos/(\d+)", "DELETE",
     "deleteListingVideo"),
]


def order_paid_delivery(receipt_id: int, *, secret: str = WEBHOOK_SECRET,
                        webhook_id: str | None = None, timestamp: int | None = None
                        ) -> tuple[bytes, dict[str, str]]:
    """A signed ``order.paid`` delivery, as Etsy sends it (Standard Webhooks)."""
    raw = json.dumps({"event_type": "order.paid",
                      "resource_url": f"{BASE}/v3/application/shops/{SHOP_ID}/receipts/"
                                      f"{receipt_id}",
                      "shop_id": SHOP_ID}).encode()
    msg_id = webhook_id or f"msg_{secrets.token_hex(8)}"
    stamp = str(timestamp if timestamp is not None else int(time.time()))
    key = base64.b64decode(secret.removeprefix("whsec_"))
    sig = base64.b64encode(hmac.new(key, f"{msg_id}.{stamp}.".encode() + raw,
                                    hashlib.sha256).digest()).decode()
    return raw, {"content-type": "application/json", "webhook-id": msg_id,
                 "webhook-timestamp": stamp, "webhook-signature": f"v1,{sig}"}
