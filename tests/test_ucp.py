"""UCP 2026-04-08 over REST: discovery, negotiation, the checkout lifecycle, idempotency,
escalation, orders, simulation hook. Every UCP response is validated against the official
JSON Schemas and the ``ucp-sdk`` models (``tests.ucp_schema``)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from api.runtime import Runtime
from checkout.profile import DiscountCode, MerchantProfile
from models import PaymentAttempt, SandboxCharge
from tests import ucp_schema
from tests.conftest import sandbox_runtime
from tests.ucp_platform import Platform, platform_profile, ucp_platform

ADDRESS = {"id": "dest_home", "street_address": "1 Market St", "address_locality":
           "San Francisco", "address_region": "CA", "postal_code": "94105",
           "address_country": "US", "first_name": "Ada", "last_name": "Buyer"}
CODES = [DiscountCode(code="10OFF", type="percentage", value=10),
         DiscountCode(code="WELCOME20", type="percentage", value=20),
         DiscountCode(code="FIXED500", type="fixed_amount", value=500)]


def merchant_config(tmp_path: Path) -> Path:
    path = tmp_path / "merchant.json"
    path.write_text(MerchantProfile(discount_codes=CODES).model_dump_json())
    return path


@pytest.fixture
async def shop(database_url: str, tmp_path: Path) -> AsyncIterator[Runtime]:
    async with sandbox_runtime(database_url, merchant_config=merchant_config(tmp_path),
                               merchant_api_keys=["merchant-key"],
                               ucp_simulation_secret="sim-secret") as rt:
        yield rt


def create_body(item: str = "item_123", quantity: int = 1, **extra: object) -> dict:
    return {"line_items": [{"item": {"id": item}, "quantity": quantity}], **extra}


def shipping(selected_option: str | None = None) -> dict:
    method: dict = {"type": "shipping", "destinations": [ADDRESS],
                    "selected_destination_id": "dest_home"}
    if selected_option:
        method["groups"] = [{"id": "group_1", "selected_option_id": selected_option}]
    return {"methods": [method]}


def payment(token: str = "success_token", handler: str = "mock_payment_handler") -> dict:
    return {"payment": {"instruments": [{
        "id": "instr_1", "handler_id": handler, "type": "card",
        "display": {"brand": "visa", "last_digits": "4242"},
        "credential": {"type": "token", "token": token}}]}}


async def ready_checkout(platform: Platform, client, **extra: Any) -> dict:
    resp = await client.post("/ucp/checkout-sessions", headers=platform.headers(),
                             json=create_body(fulfillment=shipping(), **extra))
    assert resp.status_code == 201, resp.text
    body = resp.json()
    ucp_schema.checkout(body)
    return body


async def test_discovery_profile(shop: Runtime, backend: str) -> None:
    async with ucp_platform(shop) as (_, client):
        resp = await client.get("/.well-known/ucp")
        assert resp.status_code == 200
        assert "public" in resp.headers["cache-control"]
        body = resp.json()
        profile = ucp_schema.business_profile(body)
        service = body["ucp"]["services"]["dev.ucp.shopping"][0]
        assert service["transport"] == "rest"
        assert service["endpoint"] == "https://shop.test/ucp"
        assert set(body["ucp"]["capabilities"]) == {
            "dev.ucp.shopping.checkout", "dev.ucp.shopping.fulfillment",
            "dev.ucp.shopping.discount", "dev.ucp.shopping.order"}
        assert body["ucp"]["capabilities"]["dev.ucp.shopping.fulfillment"][0]["extends"] == \
            "dev.ucp.shopping.checkout"
        assert profile.payment_handlers is not None
        assert body["ucp"]["payment_handlers"]["com.reelcart.sandbox"][0]["id"] == \
            "mock_payment_handler"
        (jwk,) = body["signing_keys"]
        assert {jwk["kty"], jwk["crv"], jwk["alg"]} == {"EC", "P-256", "ES256"}
        assert "d" not in jwk  # never the private part
        # Discovery is public: no negotiation, a future version still gets the profile.
        again = await client.get("/.well-known/ucp", headers={
            "UCP-Agent": 'profile="..."; version="2099-01-01"'})
        assert again.status_code == 200
        assert (await client.post("/.well-known/ucp", content=b"x")).status_code in (400, 405)


async def test_checkout_lifecycle_validates(shop: Runtime, backend: str) -> None:
    async with ucp_platform(shop) as (platform, client):
        created = await client.post("/ucp/checkout-sessions", headers=platform.headers("k1"),
                                    json=create_body(quantity=2, buyer={
                                        "email": "ada@example.com", "first_name": "Ada",
                                        "consent": {"marketing": True, "analytics": False}}))
        assert created.status_code == 201, created.text
        c = created.json()
        ucp_schema.checkout(c)
        assert c["status"] == "incomplete"  # no destination yet
        assert c["currency"] == "USD"
        assert c["line_items"][0]["item"] == {"id": "item_123", "title": "Vintage Denim Jacket",
                                              "price": 300}
        assert {t["type"]: t["amount"] for t in c["totals"]} == {"subtotal": 600, "total": 600}
        assert c["buyer"]["consent"] == {"marketing": True, "analytics": False}
        assert any(m["path"] == "$.fulfillment.methods[0].selected_destination_id"
                   for m in c["messages"])
        assert set(c["ucp"]["capabilities"]) == {"dev.ucp.shopping.checkout",
                                                 "dev.ucp.shopping.fulfillment",
                                                 "dev.ucp.shopping.discount"}
        # Destination → options; choose express; a code.
        upd = await client.put(f"/ucp/checkout-sessions/{c['id']}", headers=platform.headers(),
                               json={"line_items": [{"item": {"id": "item_123"}, "quantity": 2}],
                                     "fulfillment": shipping("ship_express"),
                                     "discounts": {"codes": ["10OFF", "NOPE"]}})
        assert upd.status_code == 200, upd.text
        u = ucp_schema.checkout(upd.json()).model_dump(mode="json")
        u = upd.json()
        group = u["fulfillment"]["methods"][0]["groups"][0]
        assert [o["id"] for o in group["options"]] == ["ship_standard", "ship_express"]
        assert group["selected_option_id"] == "ship_express"
        totals = {t["type"]: t["amount"] for t in u["totals"]}
        # 600 − 10 % = 540; + 1499 express; CA tax 7.25 % of 540 = 39.
        assert totals == {"subtotal": 600, "discount": -60, "fulfillment": 1499, "tax": 39,
                          "total": 540 + 1499 + 39}
        assert u["discounts"]["applied"] == [{
            "code": "10OFF", "title": "10OFF", "amount": 60, "method": "across",
            "allocations": [{"path": "$.line_items[0]", "amount": 60}]}]
        assert any(m["code"] == "discount_code_invalid" and m["type"] == "warning"
                   for m in u["messages"])
        assert u["status"] == "ready_for_complete"
        got = await client.get(f"/ucp/checkout-sessions/{c['id']}", headers=platform.headers())
        assert got.json() == u
        done = await client.post(f"/ucp/checkout-sessions/{c['id']}/complete",
                                 headers=platform.headers("k2"), json=payment())
        assert done.status_code == 200, done.text
        d = done.json()
        ucp_schema.checkout(d)
        assert d["status"] == "completed"
        assert d["order"]["permalink_url"].startswith("https://shop.test/order-status/")
        assert "credential" not in json.dumps(d["payment"])  # never echoed
        order = await client.get(f"/ucp/orders/{d['order']['id']}", headers=platform.headers())
        assert order.status_code == 200
        o = order.json()
        ucp_schema.order(o)
        assert o["checkout_id"] == c["id"]
        assert o["fulfillment"]["expectations"][0]["description"] == "Express"
        assert o["line_items"][0]["quantity"] == {"original": 2, "total": 2, "fulfilled": 0}
        assert {t["type"]: t["amount"] for t in o["totals"]}["total"] == 540 + 1499 + 39
        # Closed sessions refuse changes (never 200, never 5xx); orders are read-only.
        for method, path, body in (("PUT", "", create_body()), ("POST", "/complete", payment()),
                                   ("POST", "/cancel", None)):
            resp = await client.request(method, f"/ucp/checkout-sessions/{c['id']}{path}",
                                        headers=platform.headers(), json=body)
            assert resp.status_code == 409, resp.text
            assert resp.json()["code"] == "invalid_status"
        assert (await client.put(f"/ucp/orders/{o['id']}", headers=platform.headers(),
                                 json=o)).status_code == 405


async def test_stacked_and_fixed_discounts(shop: Runtime, backend: str) -> None:
    async with ucp_platform(shop) as (platform, client):
        c = (await client.post("/ucp/checkout-sessions", headers=platform.headers(),
                               json=create_body("item_3ds_001"))).json()  # 5000
        for codes, total, applied in ((["10OFF", "WELCOME20"], 3600, [500, 900]),
                                      (["FIXED500"], 4500, [500])):
            resp = await client.put(f"/ucp/checkout-sessions/{c['id']}",
                                    headers=platform.headers(),
                                    json={"line_items": [{"item": {"id": "item_3ds_001"}}],
                                          "discounts": {"codes": codes}})
            body = resp.json()
            ucp_schema.checkout(body)
            assert {t["type"]: t["amount"] for t in body["totals"]}["total"] == total
            assert [a["amount"] for a in body["discounts"]["applied"]] == applied


async def test_business_errors(shop: Runtime, backend: str) -> None:
    async with ucp_platform(shop) as (platform, client):
        for item, quantity, text in (("last-unit", 5, "Insufficient stock"),
                                     ("nope", 1, "not found")):
            resp = await client.post("/ucp/checkout-sessions", headers=platform.headers(),
                                     json=create_body(item, quantity))
            assert resp.status_code == 400
            assert text in resp.text
            ucp_schema.error_response(resp.json())
        bad = await client.post("/ucp/checkout-sessions", headers=platform.headers(),
                                content=b"{not json")
        assert bad.status_code == 400
        ucp_schema.error_response(bad.json())
        c = (await client.post("/ucp/checkout-sessions", headers=platform.headers(),
                               json=create_body())).json()
        missing = await client.post(f"/ucp/checkout-sessions/{c['id']}/complete",
                                    headers=platform.headers(), json=payment())
        assert missing.status_code == 400
        assert "Fulfillment address and option must be selected" in missing.text
        ready = await ready_checkout(platform, client)
        declined = await client.post(f"/ucp/checkout-sessions/{ready['id']}/complete",
                                     headers=platform.headers("d1"), json=payment("fail_token"))
        assert declined.status_code == 402
        ucp_schema.error_response(declined.json())
        assert declined.json()["messages"][0]["code"] == "payment_declined"
        # The decline was recorded (the session is open again) and a retry can succeed.
        got = (await client.get(f"/ucp/checkout-sessions/{ready['id']}",
                                headers=platform.headers())).json()
        assert got["status"] == "ready_for_complete"
        unknown = await client.post(f"/ucp/checkout-sessions/{ready['id']}/complete",
                                    headers=platform.headers(), json=payment(handler="gpay"))
        assert unknown.status_code == 400
        ok = await client.post(f"/ucp/checkout-sessions/{ready['id']}/complete",
                               headers=platform.headers(), json=payment())
        assert ok.json()["status"] == "completed"


async def test_repeated_items_share_the_line_quantity_cap(shop: Runtime, backend: str) -> None:
    """The checkout core merges lines repeating an item: their sum has the 100,000 cap
    (UCP's error_response, at the later line's quantity)."""
    async with ucp_platform(shop) as (platform, client):
        line = {"item": {"id": "lut-pack-personal"}, "quantity": 60_000}
        resp = await client.post("/ucp/checkout-sessions", headers=platform.headers(),
                                 json={"line_items": [line, line]})
        assert resp.status_code == 400
        ucp_schema.error_response(resp.json())
        [message] = resp.json()["messages"]
        assert message["path"] == "$.line_items[1].quantity"
        assert "120,000" in message["content"]


async def test_idempotency(shop: Runtime, backend: str) -> None:
    async with ucp_platform(shop) as (platform, client):
        body = create_body(fulfillment=shipping())
        first = await client.post("/ucp/checkout-sessions", headers=platform.headers("same"),
                                  json=body)
        again = await client.post("/ucp/checkout-sessions", headers=platform.headers("same"),
                                  json=body)
        assert (again.status_code, again.json()) == (first.status_code, first.json())
        conflict = await client.post("/ucp/checkout-sessions", headers=platform.headers("same"),
                                     json={**body, "line_items": [{"item": {"id": "item_123"},
                                                                   "quantity": 3}]})
        assert conflict.status_code == 409
        assert conflict.json()["code"] == "idempotency_conflict"
        cid = first.json()["id"]
        url = f"/ucp/checkout-sessions/{cid}/complete"
        one = await client.post(url, headers=platform.headers("pay"), json=payment())
        two = await client.post(url, headers=platform.headers("pay"), json=payment())
        assert one.status_code == two.status_code == 200
        assert one.json() == two.json()
        assert two.headers.get("idempotent-replayed") == "true"
        other = await client.post(url, headers=platform.headers("pay"),
                                  json=payment("another_token"))
        assert other.status_code == 409
        # Charged exactly once.
        async with shop.read_sessionmaker() as db:
            assert await db.scalar(select(func.count()).select_from(PaymentAttempt)) == 1
            assert await db.scalar(select(func.count()).select_from(SandboxCharge)) == 1


async def test_escalation_hands_the_buyer_to_our_page(shop: Runtime, backend: str) -> None:
    async with ucp_platform(shop) as (platform, client):
        c = await ready_checkout(platform, client)
        resp = await client.post(f"/ucp/checkout-sessions/{c['id']}/complete",
                                 headers=platform.headers(), json=payment("spt_test_3ds"))
        assert resp.status_code == 200, resp.text
        body = resp.json()
        ucp_schema.checkout(body)
        assert body["status"] == "requires_escalation"
        assert body["continue_url"].startswith("https://shop.test/order-status/ord_")
        assert any(m["code"] == "requires_escalation" for m in body["messages"])


async def test_negotiation_errors(shop: Runtime, backend: str) -> None:
    async with ucp_platform(shop) as (platform, client):
        url = "/ucp/checkout-sessions"
        missing = await client.post(url, json=create_body())
        assert (missing.status_code, missing.json()["code"]) == (400, "invalid_profile_url")
        future = await client.post(url, json=create_body(), headers={
            "UCP-Agent": f'profile="{platform.profile_url}"; version="2099-01-01"'})
        assert (future.status_code, future.json()["code"]) == (422, "version_unsupported")
        private = await client.post(url, json=create_body(), headers={
            "UCP-Agent": 'profile="http://10.0.0.7/profile.json"'})
        assert (private.status_code, private.json()["code"]) == (400, "invalid_profile_url")
        gone = await client.post(url, json=create_body(), headers={
            "UCP-Agent": f'profile="http://127.0.0.1:{platform.port}/missing.json"'})
        assert (gone.status_code, gone.json()["code"]) == (424, "profile_unreachable")
    async with ucp_platform(shop, profile={"agent": {"name": "old"}}) as (platform, client):
        old = await client.post("/ucp/checkout-sessions", json=create_body(),
                                headers=platform.headers())
        assert (old.status_code, old.json()["code"]) == (422, "profile_malformed")


async def test_capability_intersection(shop: Runtime, backend: str) -> None:
    async with ucp_platform(shop) as (platform, client):
        platform.profile = platform_profile(platform.port, capabilities=[
            "dev.ucp.shopping.checkout", "dev.ucp.shopping.discount"])
        c = (await client.post("/ucp/checkout-sessions", headers=platform.headers(),
                               json=create_body(fulfillment=shipping()))).json()
        ucp_schema.checkout(c)
        assert set(c["ucp"]["capabilities"]) == {"dev.ucp.shopping.checkout",
                                                 "dev.ucp.shopping.discount"}
        assert "fulfillment" not in c


async def test_sessions_are_scoped_to_the_platform(shop: Runtime, backend: str) -> None:
    async with ucp_platform(shop) as (platform, client):
        c = await ready_checkout(platform, client)
        # The ACP API does not see UCP sessions as its own and vice versa.
        acp = await client.get(f"/checkout_sessions/{c['id']}", headers={
            "Authorization": "Bearer test-agent-key", "API-Version": "2026-04-17"})
        assert acp.status_code == 404
        unknown = await client.get(f"/ucp/checkout-sessions/cs_{uuid.uuid4().hex}",
                                   headers=platform.headers())
        assert unknown.status_code == 404
        ucp_schema.error_response(unknown.json())


async def test_simulation_hook(shop: Runtime, database_url: str, backend: str) -> None:
    async with ucp_platform(shop) as (platform, client):
        c = await ready_checkout(platform, client)
        order_id = (await client.post(f"/ucp/checkout-sessions/{c['id']}/complete",
                                      headers=platform.headers(), json=payment())
                    ).json()["order"]["id"]
        hook = f"/testing/simulate-shipping/{order_id}"
        assert (await client.post(hook)).status_code == 403
        assert (await client.post(hook, headers={"Simulation-Secret": "x"})).status_code == 403
        assert (await client.post("/testing/simulate-shipping/ord_nope", headers={
            "Simulation-Secret": "sim-secret"})).status_code == 404
        shipped = await client.post(hook, headers={"Simulation-Secret": "sim-secret"})
        assert shipped.status_code == 200
        o = ucp_schema.order(shipped.json())
        assert o.fulfillment.events
        assert o.fulfillment.events[0].type == "shipped"
        assert shipped.json()["line_items"][0]["status"] == "fulfilled"
    # Without a configured secret the hook does not exist.
    async with sandbox_runtime(database_url) as plain, ucp_platform(plain) as (_, client):
        assert (await client.post(hook, headers={"Simulation-Secret": "sim-secret"})
                ).status_code == 404


@pytest.mark.httpx_mock(should_mock=lambda r: r.url.host != "127.0.0.1")
async def test_google_pay_card_token_charges_through_stripe(stripe_runtime: Runtime,
                                                            fake_stripe, backend: str) -> None:
    """``com.google.pay`` → one PaymentIntent confirmed with the gateway's card token."""
    async with ucp_platform(stripe_runtime) as (platform, client):
        profile = (await client.get("/.well-known/ucp")).json()
        gpay = profile["ucp"]["payment_handlers"]["com.google.pay"][0]
        assert gpay["id"] == "google_pay"
        assert "com.reelcart.sandbox" not in profile["ucp"]["payment_handlers"]
        c = await ready_checkout(platform, client)
        token = json.dumps({"id": "tok_visa", "object": "token", "type": "card"})
        done = await client.post(f"/ucp/checkout-sessions/{c['id']}/complete",
                                 headers=platform.headers(),
                                 json=payment(token, handler="google_pay"))
        assert done.status_code == 200, done.text
        assert ucp_schema.checkout(done.json()).status == "completed"
        (request,) = fake_stripe.created_payment_intents()
        form = request.content.decode()
        assert "payment_method_data[type]=card&payment_method_data[card][token]=tok_visa" in form
        assert "shared_payment_granted_token" not in form
        c2 = await ready_checkout(platform, client)
        declined = await client.post(f"/ucp/checkout-sessions/{c2['id']}/complete",
                                     headers=platform.headers(),
                                     json=payment("tok_chargeDeclined", handler="google_pay"))
        assert declined.status_code == 402
        bad = await client.post(f"/ucp/checkout-sessions/{c2['id']}/complete",
                                headers=platform.headers(),
                                json=payment("4242424242424242", handler="google_pay"))
        assert bad.status_code == 400  # never a raw card number


async def test_signed_platform_requests_are_verified(shop: Runtime, backend: str) -> None:
    """A platform that signs (RFC 9421, signed here by the independent
    ``http-message-signatures`` package) is checked against its profile's signing_keys."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from http_message_signatures import HTTPMessageSigner, MappingKeyResolver
    from http_message_signatures.algorithms import ECDSA_P256_SHA256

    from protocols.ucp.signing import SigningKey

    key = ec.generate_private_key(ec.SECP256R1())
    jwk = SigningKey("platform-2026", key).public_jwk()
    async with ucp_platform(shop) as (platform, client):
        profile = platform_profile(platform.port)
        profile["signing_keys"] = [jwk]
        platform.profile = profile
        signer = HTTPMessageSigner(signature_algorithm=ECDSA_P256_SHA256, key_resolver=(
            MappingKeyResolver(public_keys={}, private_keys={"platform-2026": key})))

        def signed(body: bytes, kid: str = "platform-2026") -> httpx.Request:
            request = httpx.Request("POST", "https://shop.test/ucp/checkout-sessions",
                                    content=body, headers={**platform.headers("sig-1")})
            signer.sign(request, key_id="platform-2026", label="sig1", include_alg=False,
                        covered_component_ids=("@method", "@authority", "@path",
                                               "ucp-agent", "idempotency-key",
                                               "content-digest", "content-type"),
                        body=body)
            if kid != "platform-2026":
                request.headers["Signature-Input"] = request.headers["Signature-Input"] \
                    .replace("platform-2026", kid)
            return request

        body = json.dumps(create_body()).encode()
        ok = await client.send(signed(body))
        assert ok.status_code == 201, ok.text
        tampered = signed(body)
        tampered.headers["Idempotency-Key"] = "sig-2"  # a signed component changed
        bad = await client.send(tampered)
        assert (bad.status_code, bad.json()["code"]) == (401, "signature_invalid")
        unknown = await client.send(signed(body, kid="stolen-key"))
        assert (unknown.status_code, unknown.json()["code"]) == (401, "key_not_found")
        other_body = signed(body)
        swapped = httpx.Request("POST", other_body.url, headers=other_body.headers,
                                content=json.dumps(create_body(quantity=9)).encode())
        digest = await client.send(swapped)
        assert (digest.status_code, digest.json()["code"]) == (400, "digest_mismatch")
