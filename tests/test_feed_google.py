"""Google Merchant API destination, faked at HTTP from Google's documented shapes:
the OAuth 2.0 service-account JWT-bearer token exchange, and products_v1
``accounts.productInputs.insert`` / ``delete`` sent as an HTTP batch (multipart/mixed of
application/http parts). First full publish, incremental change, deletion, partner errors
and retry, a record per run; the TSV fallback feed is downloadable."""

from __future__ import annotations

import base64
import email.parser
import email.policy
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import orjson
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from pytest_httpx import HTTPXMock
from sqlalchemy import delete, select, update

from api.runtime import Runtime
from feeds.destinations import GoogleMerchantDestination, PublishContext, publish_all
from feeds.google_client import MerchantApiClient, ServiceAccount
from models import FeedDelivery, Product, Variant
from tests.conftest import app_client, sandbox_runtime

ACCOUNT, DATA_SOURCE = "1234567", "987"
TOKEN_URI = "https://oauth2.googleapis.com/token"
API = "https://merchantapi.googleapis.com"


def b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


@dataclass
class FakeMerchantApi:
    key: rsa.RSAPrivateKey
    inputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)  # (method, offer id)
    part_faults: dict[str, list[int]] = field(default_factory=dict)  # offer → statuses
    batch_faults: list[int] = field(default_factory=list)
    tokens: int = 0

    def token(self, request: httpx.Request) -> httpx.Response:
        form = parse_qs(request.content.decode())
        assert form["grant_type"] == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
        header, claims, signature = form["assertion"][0].split(".")
        self.key.public_key().verify(b64decode(signature), f"{header}.{claims}".encode(),
                                     padding.PKCS1v15(), hashes.SHA256())
        assert json.loads(b64decode(header)) == {"alg": "RS256", "typ": "JWT"}
        body = json.loads(b64decode(claims))
        assert body["iss"] == "feeds@shop.iam.gserviceaccount.com"
        assert body["scope"] == "https://www.googleapis.com/auth/content"
        assert body["aud"] == TOKEN_URI
        assert body["exp"] - body["iat"] <= 3600
        self.tokens += 1
        return httpx.Response(200, json={"access_token": f"ya29.token{self.tokens}",
                                         "expires_in": 3599, "token_type": "Bearer"})

    def batch(self, request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"].startswith("Bearer ya29.token")
        if self.batch_faults:
            return httpx.Response(self.batch_faults.pop(0), headers={"Retry-After": "2"},
                                  json={"error": {"code": 429, "status": "RESOURCE_EXHAUSTED",
                                                  "message": "Quota exceeded"}})
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
            + request.content)
        answers = []
        for part in message.iter_parts():
            assert part.get_content_type() == "application/http"
            raw = part.get_payload(decode=True).replace(b"\r\n", b"\n")
            head, _, body = raw.partition(b"\n\n")
            method, target, _ = head.split(b"\n")[0].decode().split(" ")
            status, answer = self.apply(method, target, body.strip())
            answers.append((part["Content-ID"], status, answer))
        boundary = "batch_response_boundary"
        out = b"".join(
            f"--{boundary}\r\nContent-Type: application/http\r\n"
            f"Content-ID: <response-{cid.strip('<>')}>\r\n\r\n"
            f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n\r\n".encode()
            + orjson.dumps(answer) + b"\r\n" for cid, status, answer in answers)
        return httpx.Response(200, content=out + f"--{boundary}--\r\n".encode(),
                              headers={"Content-Type":
                                       f"multipart/mixed; boundary={boundary}"})

    def apply(self, method: str, target: str, body: bytes) -> tuple[int, dict[str, Any]]:
        url = urlsplit(target)
        assert parse_qs(url.query)["dataSource"] == [
            f"accounts/{ACCOUNT}/dataSources/{DATA_SOURCE}"]
        if method == "POST":
            assert url.path == f"/products/v1/accounts/{ACCOUNT}/productInputs:insert"
            product = orjson.loads(body)
            offer = product["offerId"]
        else:
            match = re.fullmatch(rf"/products/v1/accounts/{ACCOUNT}/productInputs/"
                                 r"en~US~(.+)", url.path)
            assert match, url.path
            offer = match.group(1)
        self.calls.append((method, offer))
        faults = self.part_faults.get(offer)
        if faults:
            status = faults.pop(0)
            return status, {"error": {"code": status, "message": f"fault {status}"}}
        if method == "DELETE":
            return (200, {}) if self.inputs.pop(offer, None) else (404, {})
        attrs = product["productAttributes"]
        # Google's required attributes (product data specification), in API form
        for name in ("title", "description", "link", "imageLink", "availability", "price",
                     "brand", "condition"):
            assert attrs.get(name), name
        assert "mpn" in attrs or attrs.get("identifierExists") is False
        assert attrs["availability"] in ("IN_STOCK", "OUT_OF_STOCK", "PREORDER",
                                         "BACKORDER")
        assert re.fullmatch(r"\d+", attrs["price"]["amountMicros"])
        assert product["contentLanguage"] == "en"
        assert product["feedLabel"] == "US"
        self.inputs[offer] = product
        return 200, {**product,
                     "name": f"accounts/{ACCOUNT}/productInputs/en~US~{offer}",
                     "product": f"accounts/{ACCOUNT}/products/en~US~{offer}"}


@pytest.fixture
def google(httpx_mock: HTTPXMock) -> FakeMerchantApi:
    fake = FakeMerchantApi(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    httpx_mock.add_callback(fake.token, url=TOKEN_URI, is_reusable=True, is_optional=True)
    httpx_mock.add_callback(fake.batch, url=f"{API}/batch/products/v1", is_reusable=True,
                            is_optional=True)
    return fake


def service_account(fake: FakeMerchantApi) -> ServiceAccount:
    pem = fake.key.private_bytes(serialization.Encoding.PEM,
                                 serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption()).decode()
    return ServiceAccount.from_json(json.dumps({
        "type": "service_account", "client_email": "feeds@shop.iam.gserviceaccount.com",
        "private_key": pem, "token_uri": TOKEN_URI}))


async def run(rt: Runtime, fake: FakeMerchantApi, waits: list[float] | None = None
              ) -> tuple[str, FeedDelivery]:
    async def no_wait(seconds: float) -> None:
        if waits is not None:
            waits.append(seconds)

    client = MerchantApiClient(rt.outbound_http, service_account(fake), base_url=API,
                               calls_per_minute=6000, sleep=no_wait)
    destination = GoogleMerchantDestination(client, account_id=ACCOUNT,
                                            data_source_id=DATA_SOURCE, batch_size=25)
    ctx = PublishContext(rt.sessionmaker, rt.settings.feed_config(rt.profile),
                         Path(rt.settings.feeds_dir), None)
    [outcome] = await publish_all([destination], ctx)
    async with rt.read_sessionmaker() as db:
        record = await db.scalar(select(FeedDelivery).where(
            FeedDelivery.run_id == ctx.run_id))
    assert record is not None
    return outcome.status, record


async def test_full_then_incremental_then_deletion(database_url: str,
                                                   google: FakeMerchantApi,
                                                   backend: str) -> None:
    async with sandbox_runtime(database_url) as rt:
        status, first = await run(rt, google)
        assert status == "succeeded"
        assert first.mode == "full"
        assert first.items_sent == len(google.inputs) >= 72
        jacket = google.inputs["denim-jacket-m"]["productAttributes"]
        assert jacket["price"] == {"amountMicros": "97900000", "currencyCode": "USD"}
        assert jacket["itemGroupId"] == "denim-jacket"
        assert jacket["condition"] == "NEW"
        assert jacket["shipping"][0]["country"] == "US"
        assert google.tokens == 1  # one token for the whole run
        # Incremental: one price change → exactly one insert; nothing else is sent.
        google.calls.clear()
        async with rt.sessionmaker() as db, db.begin():
            await db.execute(update(Variant).where(Variant.id == "ceramic-mug-sand")
                             .values(price_amount=2650))
        status, second = await run(rt, google)
        assert status == "succeeded"
        assert second.mode == "incremental"
        assert google.calls == [("POST", "ceramic-mug-sand")]
        assert google.inputs["ceramic-mug-sand"]["productAttributes"]["price"][
            "amountMicros"] == "26500000"
        # Deletion: a product removed from the catalog is deleted at Google.
        google.calls.clear()
        async with rt.sessionmaker() as db, db.begin():
            await db.execute(delete(Variant).where(Variant.product_id == "poster"))
            await db.execute(delete(Product).where(Product.id == "poster"))
        status, third = await run(rt, google)
        assert status == "succeeded"
        assert third.items_deleted == 3
        assert sorted(google.calls) == [("DELETE", f"poster-{s}") for s in ("a1", "a2", "a3")]
        assert not any(k.startswith("poster-") for k in google.inputs)
        google.calls.clear()
        status, fourth = await run(rt, google)
        assert google.calls == []
        assert fourth.items_sent == 0


async def test_quota_and_item_errors_are_retried_or_recorded(database_url: str,
                                                             google: FakeMerchantApi,
                                                             backend: str) -> None:
    async with sandbox_runtime(database_url) as rt:
        google.batch_faults = [429]  # the whole first batch is throttled
        google.part_faults = {"lut-pack-team": [503], "ebook-pdf": [400]}
        waits: list[float] = []
        status, record = await run(rt, google, waits)
        assert status == "failed"  # one item was refused…
        assert record.items_failed == 1
        assert "ebook-pdf: HTTP 400" in (record.error or "")
        assert "lut-pack-team" in google.inputs  # …the throttled/5xx ones went through
        assert 2.0 in waits  # Retry-After honoured
        # The refused item is not acknowledged: the next run sends it (and only it) again.
        google.calls.clear()
        status, again = await run(rt, google)
        assert status == "succeeded"
        assert google.calls == [("POST", "ebook-pdf")]


async def test_tsv_fallback_feed_is_downloadable(database_url: str, tmp_path: Path,
                                                 backend: str) -> None:
    from feeds.publish import build_feeds

    async with sandbox_runtime(database_url, feeds_dir=tmp_path) as rt:
        report = await build_feeds(rt.sessionmaker, tmp_path, rt.settings.feed_config())
        assert report.files["google_tsv"] == ["google/products-00001.tsv"]
        async with app_client(rt) as client:
            response = await client.get("/feeds/google/products-00001.tsv")
    assert response.status_code == 200
    lines = response.text.splitlines()
    header = lines[0].split("\t")
    for required in ("id", "title", "description", "link", "image_link", "availability",
                     "price", "brand", "mpn", "identifier_exists", "condition", "shipping",
                     "video_link"):
        assert required in header
    row = dict(zip(header, next(r for r in lines if r.startswith("denim-jacket-m\t"))
                   .split("\t"), strict=True))
    assert row["price"] == "97.90 USD"
    assert row["availability"] == "in_stock"
    assert row["shipping"].startswith("US::Standard:5.99 USD")
