"""Incoming webhooks: verify the signature on the raw body, store once, answer fast."""

from __future__ import annotations

import base64
import hashlib
import hmac

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from api import jsonbody
from api.deps import RuntimeDep
from models.errors import AppError, InvalidRequest, NotFound
from payments.stripe_client import StripeGateway
from webhooks import inbox

router = APIRouter(prefix="/webhooks", tags=["webhooks"])


class InvalidSignature(AppError):
    status_code = 400
    code = "invalid_signature"


@router.post("/stripe", response_class=Response, operation_id="stripeWebhook")
async def stripe_webhook(request: Request, runtime: RuntimeDep) -> Response:
    secret = runtime.settings.stripe_webhook_secret
    if secret is None:  # an empty secret would "verify" forged events
        raise NotFound("Stripe webhooks are not configured.", code="webhook_not_configured")
    payload = await request.body()
    if not StripeGateway.verify_webhook(payload, request.headers.get("stripe-signature"),
                                        secret.get_secret_value()):
        raise InvalidSignature("Stripe-Signature is missing, stale or does not match.")
    try:
        event = jsonbody.parse(payload)  # strictly UTF-8: stored as text below
        event_id, event_type = str(event["id"]), str(event["type"])
    except (ValueError, KeyError, TypeError):
        raise InvalidRequest("Not a Stripe event.", code="invalid_event") from None
    async with runtime.sessionmaker() as db, db.begin():
        stored = await inbox.store(db, source="stripe", external_id=event_id, type_=event_type,
                                   payload=payload.decode("utf-8"))
    runtime.wake_worker()
    return Response(orjson.dumps({"received": True, "duplicate": not stored}),
                    media_type="application/json")


class InvalidShopifySignature(AppError):
    status_code = 401
    code = "invalid_signature"


def shopify_hmac_ok(raw: bytes, header: str | None, secret: str) -> bool:
    if not header or not secret:
        return False
    digest = base64.b64encode(hmac.new(secret.encode(), raw, hashlib.sha256).digest()).decode()
    return hmac.compare_digest(digest, header.strip())


@router.post("/shopify", response_class=Response, operation_id="shopifyWebhook")
async def shopify_webhook(request: Request, runtime: RuntimeDep) -> Response:
    secret = runtime.settings.shopify_webhook_secret
    if secret is None:
        raise NotFound("Shopify webhooks are not configured.", code="webhook_not_configured")
    raw = await request.body()
    headers = request.headers
    signature = headers.get("x-shopify-hmac-sha256") or headers.get("shopify-hmac-sha256")
    if not shopify_hmac_ok(raw, signature, secret.get_secret_value()):
        raise InvalidShopifySignature("X-Shopify-Hmac-Sha256 is missing or does not match.")
    webhook_id = headers.get("x-shopify-webhook-id") or headers.get("shopify-webhook-id")
    topic = headers.get("x-shopify-topic") or headers.get("shopify-topic")
    if not webhook_id or not topic:
        raise InvalidRequest("X-Shopify-Webhook-Id and X-Shopify-Topic are required.",
                             code="invalid_event")
    try:
        jsonbody.parse(raw)  # strictly UTF-8 (Shopify sends UTF-8; stored as text below)
    except ValueError:
        raise InvalidRequest("Not UTF-8 JSON.", code="invalid_event") from None
    async with runtime.sessionmaker() as db, db.begin():
        stored = await inbox.store(db, source="shopify", external_id=webhook_id[:200],
                                   type_=topic[:100], payload=raw.decode("utf-8"))
    runtime.wake_worker()
    return Response(orjson.dumps({"received": True, "duplicate": not stored}),
                    media_type="application/json")
