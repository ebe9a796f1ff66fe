"""2026-01-30 → 2026-01-16 (spec/2026-01-16 vs spec/2026-01-30).

Requests:
* ``items[{id, quantity}]`` (quantity required) instead of ``line_items[{id}]``; no
  ``currency`` (the merchant's default applies) and no ``capabilities``.
* ``selected_fulfillment_options[{type, shipping|digital: {option_id, item_ids}}]``.
* ``payment_data{token, provider, billing_address}`` instead of ``handler_id`` +
  ``instrument``: the token goes to the same payment provider as a delegated credential.
* ``authentication_result.outcome`` ∈ authenticated | failed | unavailable | rejected |
  attempt (mapped onto the newer outcome names).

Responses:
* Flat line items: ``item{id, quantity}``, ``base_amount``, ``discount``, ``subtotal``,
  ``tax``, ``total`` (+ ``name``, ``description``, ``images``, ``unit_amount``).
* ``payment_provider{provider, merchant_id, supported_payment_methods[{type,
  supported_card_networks}]}`` instead of ``capabilities``; no ``protocol``, ``locale``,
  ``timezone``, ``metadata``, timestamps.
* Fulfilment options: shipping and digital only; totals without ``breakdown``.
* Messages: ``info`` and ``error`` only (warnings become info); error codes limited to
  missing | invalid | out_of_stock | payment_declined | requires_sign_in | requires_3ds.
* Status has no ``expired`` (→ ``canceled``); ``Buyer`` needs first and last name;
  ``Order`` is ``{id, checkout_session_id, permalink_url}``; links are terms_of_use |
  privacy_policy | return_policy.
"""

from __future__ import annotations

from typing import Any

from models.errors import InvalidRequest
from models.statuses import CheckoutStatus
from protocols.acp.versions.base import (
    Json,
    Op,
    UpContext,
    VersionChange,
    pick,
    replace_prefix,
)

_SESSION_KEYS = ("id", "buyer", "payment_provider", "status", "currency", "line_items",
                 "fulfillment_details", "fulfillment_options", "selected_fulfillment_options",
                 "totals", "messages", "links", "authentication_metadata", "order")
_STATUSES = frozenset(s.value for s in CheckoutStatus if s is not CheckoutStatus.expired)
_TOTAL_TYPES = frozenset({"items_base_amount", "items_discount", "subtotal", "discount",
                          "fulfillment", "tax", "fee", "total"})
_ERROR_CODES = frozenset({"missing", "invalid", "out_of_stock", "payment_declined",
                          "requires_sign_in", "requires_3ds"})
_LINK_TYPES = frozenset({"terms_of_use", "privacy_policy", "return_policy"})
_CARD_NETWORKS = ("amex", "discover", "mastercard", "visa")
_OUTCOMES_UP = {"failed": "denied", "unavailable": "not_supported",
                "attempt": "attempt_acknowledged"}


def _amounts(totals: list[Json]) -> dict[str, int]:
    return {t["type"]: t["amount"] for t in totals}


def _line(line: Json) -> Json:
    t = _amounts(line.get("totals", []))
    out: Json = {
        "id": line["id"],
        "item": {"id": line["item"]["id"], "quantity": line["quantity"]},
        "base_amount": t.get("items_base_amount", 0), "discount": t.get("discount", 0),
        "subtotal": t.get("subtotal", 0), "tax": t.get("tax", 0), "total": t.get("total", 0),
    }
    out.update(pick(line, ("name", "description", "images", "unit_amount")))
    return out


def _option(option: Json) -> Json | None:
    if option.get("type") == "shipping":
        return pick(option, ("type", "id", "title", "description", "carrier",
                             "earliest_delivery_time", "latest_delivery_time", "totals"))
    if option.get("type") == "digital":
        return pick(option, ("type", "id", "title", "description", "totals"))
    return None  # pickup / local_delivery arrived in 2026-01-30


def _message(message: Json) -> Json:
    if message.get("type") == "error":
        out = pick(message, ("type", "code", "param", "content_type", "content"))
        if out.get("code") not in _ERROR_CODES:
            out["code"] = "invalid"
        return out
    return {"type": "info", **pick(message, ("param", "content_type", "content"))}


def _buyer(buyer: Json) -> Json | None:
    out = pick(buyer, ("first_name", "last_name", "email", "phone_number"))
    if ("first_name" not in out or "last_name" not in out) and buyer.get("full_name"):
        first, _, last = str(buyer["full_name"]).partition(" ")
        out.setdefault("first_name", first)
        out.setdefault("last_name", last or first)
    if not {"first_name", "last_name", "email"} <= set(out):
        return None
    return out


def _payment_provider(capabilities: Json) -> Json | None:
    handlers = capabilities.get("payment", {}).get("handlers", [])
    if not handlers:
        return None
    config = handlers[0].get("config", {})
    brands = config.get("accepted_brands") or list(_CARD_NETWORKS)
    return {"provider": "stripe", "merchant_id": str(config.get("merchant_id", "")),
            "supported_payment_methods": [{
                "type": "card",
                "supported_card_networks": [b for b in brands if b in _CARD_NETWORKS]}]}


def _items_up(body: Json) -> None:
    if "items" not in body:
        return
    items = body.pop("items")
    if isinstance(items, list):
        for index, item in enumerate(items):
            if isinstance(item, dict) and "quantity" not in item:
                raise InvalidRequest(f"$.items[{index}].quantity: Field required",
                                     code="missing_required_field",
                                     param=f"$.items[{index}].quantity")
    body["line_items"] = items


def _selected_up(body: Json) -> None:
    selected = body.get("selected_fulfillment_options")
    if not isinstance(selected, list):
        return
    flat = []
    for sel in selected:
        if isinstance(sel, dict) and isinstance(sel.get(str(sel.get("type"))), dict):
            inner = sel[str(sel["type"])]
            flat.append({"type": sel["type"], "option_id": inner.get("option_id"),
                         "item_ids": inner.get("item_ids", [])})
        else:
            flat.append(sel)
    body["selected_fulfillment_options"] = flat


def _payment_up(body: Json) -> None:
    pd = body.get("payment_data")
    if not isinstance(pd, dict) or "instrument" in pd or "token" not in pd:
        return
    up: dict[str, Any] = {"instrument": {"type": "card", "credential": {
        "type": "spt", "token": pd["token"]}}}
    if "billing_address" in pd:
        up["billing_address"] = pd["billing_address"]
    body["payment_data"] = up


class Change(VersionChange):
    version = "2026-01-16"

    def request_up(self, op: Op, body: Json, ctx: UpContext) -> Json:
        if op in (Op.create, Op.update):
            _items_up(body)
            _selected_up(body)
        if op == Op.create:
            body.setdefault("currency", ctx.default_currency)
            body.setdefault("capabilities", {})
        if op == Op.complete:
            _payment_up(body)
            result = body.get("authentication_result")
            if isinstance(result, dict) and result.get("outcome") in _OUTCOMES_UP:
                result["outcome"] = _OUTCOMES_UP[result["outcome"]]
        return body

    def response_down(self, body: Json) -> Json:
        provider = _payment_provider(body.get("capabilities", {}))
        out = pick(body, _SESSION_KEYS)
        if provider is not None:
            out["payment_provider"] = provider
        if out["status"] not in _STATUSES:
            # expired: no such status before 2026-01-30
            out["status"] = CheckoutStatus.canceled.value
        out["line_items"] = [_line(line) for line in out["line_items"]]
        out["fulfillment_options"] = [o for o in map(_option, out["fulfillment_options"]) if o]
        kept = {o["id"] for o in out["fulfillment_options"]}
        selected = [{"type": s["type"], s["type"]: {"option_id": s["option_id"],
                                                    "item_ids": s.get("item_ids", [])}}
                    for s in out.get("selected_fulfillment_options", [])
                    if s.get("option_id") in kept]
        if selected:
            out["selected_fulfillment_options"] = selected
        else:
            out.pop("selected_fulfillment_options", None)
        out["totals"] = [pick(t, ("type", "display_text", "amount", "description"))
                         for t in out["totals"] if t.get("type") in _TOTAL_TYPES]
        out["messages"] = [_message(m) for m in out["messages"]]
        out["links"] = [pick(link, ("type", "url")) for link in out["links"]
                        if link.get("type") in _LINK_TYPES]
        if "buyer" in out:
            buyer = _buyer(out["buyer"])
            if buyer is None:
                del out["buyer"]
            else:
                out["buyer"] = buyer
        if isinstance(out.get("authentication_metadata"), dict):  # closed object here
            out["authentication_metadata"] = pick(out["authentication_metadata"], (
                "channel", "acquirer_details", "directory_server", "flow_preference"))
        if isinstance(out.get("order"), dict):
            out["order"] = pick(out["order"], ("id", "checkout_session_id", "permalink_url"))
        return out

    def param_down(self, param: str) -> str:
        return replace_prefix(param, "$.line_items", "$.items")


CHANGE = Change()
