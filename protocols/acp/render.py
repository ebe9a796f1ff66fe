"""``SessionView`` → the ACP 2026-04-17 ``CheckoutSession`` (``CheckoutSessionWithOrder``
once completed). Older versions are derived from this by ``protocols.acp.versions``."""

from __future__ import annotations

from typing import Any

from checkout.domain import SessionStatus, SessionView
from models.base import rfc3339
from orders import service as order_service

Json = dict[str, Any]
VERSION = "2026-04-17"


def capabilities(view: SessionView) -> Json:
    return {
        "payment": {"handlers": view.payment_handlers},
        "interventions": {
            "supported": list(view.interventions),
            "required": [],
            "enforcement": "conditional",
        },
    }


def session(view: SessionView) -> Json:
    out: Json = {
        "id": view.id,
        "protocol": {"version": VERSION},
        "capabilities": capabilities(view),
        "status": view.status,
        "currency": view.currency,
        "line_items": view.line_items,
        "totals": view.totals,
        "fulfillment_options": view.fulfillment_options,
        "messages": view.messages,
        "links": [{"type": link.type, "url": link.url} for link in view.links],
        "created_at": rfc3339(view.created_at),
        "updated_at": rfc3339(view.updated_at),
        "expires_at": rfc3339(view.expires_at),
    }
    if view.selected_fulfillment_options:
        out["selected_fulfillment_options"] = view.selected_fulfillment_options
    if view.buyer:
        out["buyer"] = view.buyer
    if view.fulfillment_details:
        out["fulfillment_details"] = view.fulfillment_details
    if view.locale:
        out["locale"] = view.locale
    if view.timezone:
        out["timezone"] = view.timezone
    if view.metadata:
        out["metadata"] = view.metadata
    if view.status == SessionStatus.authentication_required and view.authentication_metadata:
        out["authentication_metadata"] = view.authentication_metadata
    if view.order is not None:
        out["order"] = order_service.order_json(view.order, view.support_email,
                                                capture=view.order_capture)
    return out
