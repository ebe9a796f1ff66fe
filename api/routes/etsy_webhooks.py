"""Etsy routes.

``POST /webhooks/etsy``: Etsy's ``order.paid`` (and later events), verified on the raw
body, stored once per ``webhook-id``, acknowledged at once, processed by the worker.

``GET /go/etsy/{listing_id}?rc_video=…``: the shoppable link to an Etsy listing put beside
a video; the click is recorded (Etsy reports no UTM data) and the buyer sent on to it.
"""

from __future__ import annotations

import json
import time

import orjson
from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from api.deps import RuntimeDep
from etsy import repository
from etsy.errors import InvalidEtsySignature
from etsy.schemas import product_id_for, verify_webhook
from models import Product
from models.errors import InvalidRequest, NotFound
from webhooks import inbox

router = APIRouter(tags=["etsy"])


@router.post("/webhooks/etsy", response_class=Response, operation_id="etsyWebhook")
async def etsy_webhook(request: Request, runtime: RuntimeDep) -> Response:
    secret = runtime.settings.etsy_webhook_secret
    if secret is None:
        raise NotFound("Etsy webhooks are not configured.", code="webhook_not_configured")
    raw = await request.body()
    headers = request.headers
    webhook_id = headers.get("webhook-id")
    if not verify_webhook(secret.get_secret_value(), webhook_id=webhook_id,
                          timestamp=headers.get("webhook-timestamp"), body=raw,
                          signature=headers.get("webhook-signature"), now=time.time()):
        raise InvalidEtsySignature("webhook-signature is missing, stale or does not match.")
    try:
        event = json.loads(raw)
        event_type = str(event["event_type"])
    except (ValueError, KeyError, TypeError):
        raise InvalidRequest("Not an Etsy event.", code="invalid_event") from None
    assert webhook_id is not None
    async with runtime.sessionmaker() as db, db.begin():
        stored = await inbox.store(db, source="etsy", external_id=webhook_id[:200],
                                   type_=event_type[:100], payload=raw.decode("utf-8"))
    runtime.wake_worker()
    return Response(orjson.dumps({"received": True, "duplicate": not stored}),
                    media_type="application/json")


@router.get("/go/etsy/{listing_id}", include_in_schema=False)
async def etsy_link(listing_id: str, runtime: RuntimeDep, rc_video: str | None = None,
                    utm_campaign: str | None = None) -> Response:
    if not listing_id.isdigit() or len(listing_id) > 20:
        raise NotFound("Unknown listing.", code="not_found")
    async with runtime.sessionmaker() as db, db.begin():
        product = await db.get(Product, product_id_for(listing_id))
        if product is None:
            raise NotFound("Unknown listing.", code="not_found")
        if rc_video and len(rc_video) <= 100:
            await repository.record_click(db, listing_id, rc_video,
                                          (utm_campaign or None) and utm_campaign[:200])
        url = product.url
    target = url if url and url.startswith("https://") else \
        f"https://www.etsy.com/listing/{listing_id}"
    return RedirectResponse(target, status_code=302)
