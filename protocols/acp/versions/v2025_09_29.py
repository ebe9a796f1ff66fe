"""2025-12-12 → 2025-09-29 (spec/2025-09-29 vs spec/2025-12-12); agents also send this
version as ``2025-09-12``.

Requests:
* ``fulfillment_address`` (an ``Address``) instead of ``fulfillment_details``.
* ``fulfillment_option_id`` (one id) instead of ``selected_fulfillment_options``.
* No ``affiliate_attribution``, ``authentication_result`` or cancel body.

Responses:
* ``fulfillment_address`` and ``fulfillment_option_id`` instead of the newer fields.
* No ``authentication_required`` status (→ ``not_ready_for_payment``) and no
  ``authentication_metadata``.
* Line items carry only ``id``, ``item``, ``base_amount``, ``discount``, ``subtotal``,
  ``tax``, ``total``; totals have no ``description``.
* Links: ``seller_shop_policies`` (the return policy's place); payment methods are the
  strings ``["card"]``.
"""

from __future__ import annotations

from models.statuses import CheckoutStatus
from protocols.acp.versions.base import Json, Op, UpContext, VersionChange, pick, replace_prefix

_LINE_KEYS = ("id", "item", "base_amount", "discount", "subtotal", "tax", "total")
_LINK_TYPES = {"terms_of_use": "terms_of_use", "privacy_policy": "privacy_policy",
               "return_policy": "seller_shop_policies"}


class Change(VersionChange):
    version = "2025-09-29"

    def request_up(self, op: Op, body: Json, ctx: UpContext) -> Json:
        if op in (Op.create, Op.update):
            if "fulfillment_address" in body:
                address = body.pop("fulfillment_address")
                body["fulfillment_details"] = None if address is None else {"address": address}
            if "fulfillment_option_id" in body:
                option_id = body.pop("fulfillment_option_id")
                body["selected_fulfillment_options"] = None if option_id is None else [
                    {"type": "shipping", "shipping": {"option_id": option_id, "item_ids": []}}]
        return body

    def response_down(self, body: Json) -> Json:
        details = body.pop("fulfillment_details", None)
        if isinstance(details, dict) and details.get("address"):
            body["fulfillment_address"] = details["address"]
        selected = body.pop("selected_fulfillment_options", None) or []
        ids = [inner["option_id"] for s in selected
               if isinstance(inner := s.get(s.get("type")), dict)]
        if ids:
            body["fulfillment_option_id"] = ids[0]
        if body["status"] == CheckoutStatus.authentication_required:
            body["status"] = CheckoutStatus.not_ready_for_payment.value
        body.pop("authentication_metadata", None)
        body["line_items"] = [pick(line, _LINE_KEYS) for line in body["line_items"]]
        body["totals"] = [pick(t, ("type", "display_text", "amount")) for t in body["totals"]]
        body["links"] = [{"type": _LINK_TYPES[link["type"]], "url": link["url"]}
                         for link in body["links"] if link["type"] in _LINK_TYPES]
        provider = body.get("payment_provider")
        if isinstance(provider, dict):
            provider["supported_payment_methods"] = ["card"]
        return body

    def param_down(self, param: str) -> str:
        param = replace_prefix(param, "$.fulfillment_details.address", "$.fulfillment_address")
        param = replace_prefix(param, "$.fulfillment_details", "$.fulfillment_address")
        if param.startswith("$.selected_fulfillment_options"):
            return "$.fulfillment_option_id"
        return param


CHANGE = Change()
