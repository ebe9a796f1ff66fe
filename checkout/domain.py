"""Protocol-neutral checkout objects: what a binding (ACP, MCP, UCP…) hands the core and
what it gets back. Nothing here knows any protocol's JSON field names or versions.

Inputs are *commands* (``CreateSession``, ``UpdateSession``, ``CompleteSession``,
``CancelSession``) carrying already-validated values; outputs are ``SessionView`` (the
authoritative session, with its ``Order`` once completed). Amounts are integers in minor
units of ``currency``.

The priced snapshot inside a view (``line_items``, ``totals``, ``fulfillment_options``,
``messages``) uses the core's own snapshot vocabulary, documented in ``checkout.pricing``
(lines with ``item``/``quantity``/``unit_amount``/``totals``, totals typed
``items_base_amount``/``subtotal``/``fulfillment``/``tax``/``total``…, messages typed
``error``/``warning`` with a JSONPath ``param`` into the newest ACP request shape).
Bindings translate it; they never write it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncSession

from attribution.schemas import AttributionClaim
from models import Order
from models.statuses import CheckoutStatus
from orders.documents import PartialCapture
from payments.provider import ThreeDSResult

Json = dict[str, Any]

# Claims the request's idempotency key in ``db``'s transaction (``complete`` calls it first
# thing in its first transaction; see ``idempotency.IdempotentCall.run_claiming``).
Claim = Callable[[AsyncSession], Awaitable[None]]


SessionStatus = CheckoutStatus  # the session's states (see models.statuses)


TERMINAL: Final = frozenset({SessionStatus.completed, SessionStatus.canceled,
                             SessionStatus.expired})


class _Unset:
    """Marks a field an update leaves alone (``None`` means *clear*)."""

    _instance: _Unset | None = None

    def __new__(cls) -> _Unset:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


UNSET: Final = _Unset()


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is calling: the agent (its id scopes every session) and, for history, a label."""

    agent_id: str

    @property
    def label(self) -> str:
        return f"agent:{self.agent_id}"


@dataclass(frozen=True, slots=True)
class LineRequest:
    """One requested line: a catalog variant id, a positive quantity, and optionally the
    unit price the agent saw (a price-change check)."""

    item_id: str
    quantity: int = 1
    unit_amount: int | None = None
    # JSONPath of the item id in the binding's request, for errors (``$.items[0].id``).
    param: str | None = None
    # JSONPath of its quantity (``$.line_items[0].quantity``), for errors.
    quantity_param: str | None = None


# The most of one item a checkout can hold: the ACP request schema's per-line cap, and the
# cap on lines repeating an item id, which are merged into one line.
MAX_LINE_QUANTITY = 100_000


@dataclass(frozen=True, slots=True)
class PaymentCredential:
    """A delegated payment token (Stripe ``spt_…``, a vault ``tok_…``) and the handler the
    agent chose; ``handler_id`` None means "the merchant's default handler"."""

    token: str
    handler_id: str | None = None
    type: str = "spt"


@dataclass(frozen=True, slots=True)
class CreateSession:
    currency: str
    lines: list[LineRequest]
    interventions: list[str] = field(default_factory=list)  # agent-supported (e.g. 3ds)
    agent_capabilities: Json = field(default_factory=dict)
    buyer: Json | None = None
    fulfillment_details: Json | None = None  # {name, phone_number, email, address{…}}
    selected_fulfillment_options: list[Json] | None = None  # [{type, option_id, item_ids}]
    attribution: AttributionClaim | None = None
    attribution_param: str = "$.attribution"  # its JSONPath in the request, for errors
    discount_codes: list[str] | None = None
    locale: str | None = None
    timezone: str | None = None
    order_notes: str | None = None
    metadata: Json | None = None


@dataclass(frozen=True, slots=True)
class UpdateSession:
    """Every field defaults to ``UNSET`` (leave alone); ``None`` clears it."""

    lines: list[LineRequest] | None | _Unset = UNSET
    buyer: Json | None | _Unset = UNSET
    fulfillment_details: Json | None | _Unset = UNSET
    selected_fulfillment_options: list[Json] | None | _Unset = UNSET
    discount_codes: list[str] | None | _Unset = UNSET
    order_notes: str | None | _Unset = UNSET


@dataclass(frozen=True, slots=True)
class CompleteSession:
    """``payment`` None: the binding got no usable instrument (e.g. a purchase order)."""

    payment: PaymentCredential | None
    buyer: Json | None = None
    # JSONPath of the payment object in the binding's request, for errors.
    payment_param: str = "$.payment_data"
    authentication: ThreeDSResult | None = None
    attribution: AttributionClaim | None = None
    attribution_param: str = "$.attribution"  # its JSONPath in the request, for errors
    order_notes: str | None = None


@dataclass(frozen=True, slots=True)
class CancelSession:
    intent_trace: Json | None = None


@dataclass(frozen=True, slots=True)
class Link:
    type: str  # terms_of_use | privacy_policy | return_policy
    url: str


@dataclass(frozen=True, slots=True)
class SessionView:
    """The authoritative session as the core sees it now (``status`` already accounts for
    expiry). ``order`` is set once the session is completed and the order is loaded."""

    id: str
    status: str
    currency: str
    line_items: list[Json]
    totals: list[Json]
    fulfillment_options: list[Json]
    selected_fulfillment_options: list[Json] | None
    messages: list[Json]
    buyer: Json | None
    fulfillment_details: Json | None
    locale: str | None
    timezone: str | None
    metadata: Json | None
    order_notes: str | None
    authentication_metadata: Json | None
    created_at: datetime
    updated_at: datetime
    expires_at: datetime
    total_amount: int
    interventions: tuple[str, ...]  # supported by both sides
    payment_handlers: list[Json]
    payment_provider: str
    links: tuple[Link, ...]
    support_email: str | None
    order: Order | None = None
    order_capture: PartialCapture | None = None  # the order was captured in part
