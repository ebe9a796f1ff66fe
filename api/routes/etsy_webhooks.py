"""``POST /webhooks/etsy``: Etsy's ``order.paid`` (and later events), verified on the raw
body, stored once per ``webhook-id``, acknowledged at once, processed by the worker."""

from __future__ import annotations

import json
import time

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from api.deps import RuntimeDep
from etsy.errors import InvalidEtsySignature
from etsy.schemas import verify_webhook
from models.errors import InvalidRequest, NotFound
from webhooks import inbox

router = APIRouter(prefix="/webhooks", tags=["webhooks"])


@router.post("/etsy", response_class=Response, operation_id="etsyWebhook")
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
