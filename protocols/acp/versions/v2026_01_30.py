"""2026-04-17 → 2026-01-30 (spec/2026-01-30 vs spec/2026-04-17 JSON Schema + OpenAPI).

* Messages have no ``resolution``; payment handlers no ``display_name``/``display_order``;
  ``Address`` has no ``company``; no ``marketing_consent_options`` or ``order_notes``.
* ``Order`` is the small confirmation object: ``id``, ``checkout_session_id``,
  ``order_number``, ``permalink_url``, ``status`` (confirmed | processing | shipped |
  delivered), ``confirmation`` (no ``order_notes``), ``support``.
* Idempotency-Key is optional; a key reused with another body is 409
  ``request_not_idempotent`` (the 422 rule arrived in 2026-04-17).
"""

from __future__ import annotations

from protocols.acp.versions.base import Json, VersionChange, pick

_ORDER_KEYS = ("id", "checkout_session_id", "order_number", "permalink_url", "status",
               "estimated_delivery", "confirmation", "support")
_ORDER_STATUS = {"confirmed": "confirmed", "processing": "processing", "shipped": "shipped",
                 "completed": "delivered", "delivered": "delivered"}


def _strip_company(holder: Json | None) -> None:
    if holder and isinstance(holder.get("address"), dict):
        holder["address"].pop("company", None)


class Change(VersionChange):
    version = "2026-01-30"

    def response_down(self, body: Json) -> Json:
        body.pop("marketing_consent_options", None)
        body.pop("order_notes", None)
        for message in body.get("messages", []):
            message.pop("resolution", None)
        payment = body.get("capabilities", {}).get("payment", {})
        for handler in payment.get("handlers", []):
            handler.pop("display_name", None)
            handler.pop("display_order", None)
        _strip_company(body.get("fulfillment_details"))
        order = body.get("order")
        if isinstance(order, dict):
            down = pick(order, _ORDER_KEYS)
            status = _ORDER_STATUS.get(str(down.get("status")))
            if status is None:
                down.pop("status", None)  # canceled / manual_review: no 2026-01-30 value
            else:
                down["status"] = status
            if isinstance(down.get("confirmation"), dict):
                down["confirmation"].pop("order_notes", None)
            body["order"] = down
        return body


CHANGE = Change()
