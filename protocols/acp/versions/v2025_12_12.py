"""2026-01-16 → 2025-12-12 (spec/2025-12-12 vs spec/2026-01-16).

* Fulfilment options are flat: ``subtitle`` (was ``description``) and integer
  ``subtotal``/``tax``/``total`` instead of ``totals[]`` (only ``total`` is required).
  Our option amounts are before tax (shipping tax is in the session's ``tax`` total),
  so ``subtotal`` = ``total`` = the option's price and ``tax`` is 0.
* ``payment_provider`` has no ``merchant_id``.
* ``authentication_result.outcome`` uses the long names (abandoned … rejected): the
  same names the core uses, so requests need no change.
"""

from __future__ import annotations

from protocols.acp.versions.base import Json, VersionChange, pick


def _option(option: Json) -> Json:
    total = next((t["amount"] for t in option.get("totals", []) if t.get("type") == "total"),
                 0)
    out = pick(option, ("type", "id", "title", "carrier", "earliest_delivery_time",
                        "latest_delivery_time"))
    if "description" in option:
        out["subtitle"] = option["description"]
    out.update(subtotal=total, tax=0, total=total)
    return out


class Change(VersionChange):
    version = "2025-12-12"

    def response_down(self, body: Json) -> Json:
        body["fulfillment_options"] = [_option(o) for o in body["fulfillment_options"]]
        provider = body.get("payment_provider")
        if isinstance(provider, dict):
            provider.pop("merchant_id", None)
        return body


CHANGE = Change()
