"""Every persisted status vocabulary as a ``StrEnum`` (stored as plain strings; a member
compares equal to its string, so rows and JSON read back as ``str`` still match).

Protocol bindings map these to their wire enums; the domain uses only these names.
"""

from __future__ import annotations

from enum import StrEnum


class CheckoutStatus(StrEnum):
    not_ready_for_payment = "not_ready_for_payment"
    ready_for_payment = "ready_for_payment"
    authentication_required = "authentication_required"
    in_progress = "in_progress"
    completed = "completed"
    canceled = "canceled"
    expired = "expired"  # derived from expires_at, never stored


class AttemptStatus(StrEnum):
    """A payment attempt (``payment_attempts.status``)."""

    pending = "pending"  # recovery point committed, provider not answered yet
    processing = "processing"  # the provider finishes later (webhook)
    succeeded = "succeeded"
    requires_capture = "requires_capture"  # authorised (manual capture)
    requires_action = "requires_action"  # 3-D Secure
    declined = "declined"
    unknown = "unknown"  # the provider call failed: it may still have charged
    abandoned = "abandoned"  # never found at the provider; stock released
    refunded_orphan = "refunded_orphan"  # charged for a session that moved on: refunded
    orphan_refund_pending = "orphan_refund_pending"  # to refund, after the transaction
    canceled_orphan = "canceled_orphan"  # an orphan authorisation, released
    error = "error"  # the provider refused the request (integration error): nothing charged


# Attempts whose outcome is not recorded yet / that the recovery sweep still looks at.
OPEN_ATTEMPTS = frozenset({AttemptStatus.pending, AttemptStatus.processing})
SWEPT_ATTEMPTS = OPEN_ATTEMPTS | {AttemptStatus.unknown}
# The provider took the money (captured or authorised).
CHARGED = frozenset({AttemptStatus.succeeded, AttemptStatus.requires_capture})


class OrderStatus(StrEnum):
    confirmed = "confirmed"
    processing = "processing"
    shipped = "shipped"
    completed = "completed"
    canceled = "canceled"
    manual_review = "manual_review"


class OrderPaymentStatus(StrEnum):
    paid = "paid"
    authorized = "authorized"
    partially_refunded = "partially_refunded"
    refunded = "refunded"
    disputed = "disputed"
    dispute_lost = "dispute_lost"
    needs_attention = "needs_attention"  # a capture / release the provider refused
    voided = "voided"  # canceled before capture: the authorisation was released


class ForwardingStatus(StrEnum):
    """Forwarding an order to Shopify (``orders.forwarding_status``)."""

    manual = "manual"  # no Shopify: the merchant ships through the API
    pending = "pending"
    forwarded = "forwarded"
    needs_attention = "needs_attention"


class RefundStatus(StrEnum):
    pending = "pending"
    succeeded = "succeeded"
    failed = "failed"


class FulfillmentStatus(StrEnum):
    pending = "pending"
    processing = "processing"
    shipped = "shipped"
    in_transit = "in_transit"
    out_for_delivery = "out_for_delivery"
    ready_for_pickup = "ready_for_pickup"
    delivered = "delivered"
    canceled = "canceled"
    failed = "failed"


# Fulfilments that no longer count (``DEAD``) or that have not shipped anything yet.
DEAD_FULFILLMENTS = frozenset({FulfillmentStatus.canceled, FulfillmentStatus.failed})
UNSHIPPED_FULFILLMENTS = frozenset({FulfillmentStatus.pending, FulfillmentStatus.processing})
# Refunds that hold money back from being refunded again.
LIVE_REFUNDS = frozenset({RefundStatus.pending, RefundStatus.succeeded})


class IdempotencyState(StrEnum):
    in_flight = "in_flight"
    done = "done"


class OutboxStatus(StrEnum):
    """An outbound webhook / partner message (``outbox_messages.status``)."""

    pending = "pending"
    delivered = "delivered"
    failed = "failed"  # the dead letter: out of attempts or refused for good; redeliverable


class CaptureOutcome(StrEnum):
    """What a provider did with a capture / release request (``CaptureResult.status``)."""

    captured = "captured"
    canceled = "canceled"
    failed = "failed"


class DeliveryStatus(StrEnum):
    """A feed push to an agent (``feed_pushes.status``) or a catalog delivery to a
    destination (``feed_deliveries.status``)."""

    running = "running"
    succeeded = "succeeded"
    failed = "failed"


class PayoutStatus(StrEnum):
    """A commission payout to one payee (``commission_payouts.status``)."""

    pending = "pending"  # claimed by a run; the transfer is not confirmed yet
    paid = "paid"
    failed = "failed"
    reversed = "reversed"  # the transfer was reversed in full


class PayoutRunStatus(StrEnum):
    running = "running"
    completed = "completed"


class StatementStatus(StrEnum):
    """A commission statement, derived from its payouts (never stored)."""

    open = "open"
    payout_pending = "payout_pending"
    paid = "paid"


class TouchType(StrEnum):
    """What kind of touch credited a ledger row (and the kind of a link touch).

    ``click`` a tracked click through a shoppable link (or a web journey carrying a video
    link); ``view`` an impression counted by the pixel; ``agent_claim`` an agent's
    attribution claim that names a video but no click. Clicks and claims share the click
    window; views have the (shorter) view window and only count when no click does."""

    click = "click"
    view = "view"
    agent_claim = "agent_claim"
