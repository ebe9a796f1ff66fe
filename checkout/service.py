"""The checkout core's public API: one ``CheckoutService``, protocol-neutral.

    not_ready_for_payment ⇄ ready_for_payment → in_progress → completed
                                   ↑   ↓              ↓
                           authentication_required ←──┘ (3-D Secure)
    any open state → canceled (agent) | expired (TTL)

A protocol binding (``protocols.acp``, MCP, UCP…) parses its wire format into the
commands of ``checkout.domain`` and renders the ``SessionView`` it gets back:

* ``create(db, actor, CreateSession) -> SessionView``
* ``update(db, actor, session_id, UpdateSession) -> SessionView``
* ``get(db, actor, session_id) -> SessionView`` (with ``order`` once completed)
* ``complete(sessionmaker, db, actor, session_id, CompleteSession) -> SessionView``
  (``db`` not begun: the recovery point commits on its own connection first)
* ``cancel(db, actor, session_id, CancelSession | None) -> SessionView``

``actor`` (``checkout.domain.Actor``) scopes every session to the agent that created it;
another agent's session is "not found". Errors are ``models.errors.AppError`` subclasses
(``checkout.errors``) carrying an HTTP status and a code; the binding maps them to its
error shape. Orders: ``orders.service.get_for_agent(db, agent_id, order_id)`` (another
agent's order is "not found"), rendered with ``orders.documents.acp_snapshot`` or mapped
by the binding; ``SessionView.order`` carries the order of a completed session.

Wrap writes in ``idempotency.IdempotentCall`` (one store for every protocol; the binding
picks the scope, the key, the body hash and the status of a key reused with another body).

Services only flush; the request owns the transaction. The implementation is split by
concern: ``checkout.sessions`` (lifecycle), ``checkout.payment`` (complete),
``checkout.recovery`` (provider webhooks, the recovery sweep).
"""

from __future__ import annotations

from checkout.domain import (
    TERMINAL,
    Actor,
    CancelSession,
    CompleteSession,
    CreateSession,
    LineRequest,
    PaymentCredential,
    SessionStatus,
    SessionView,
    UpdateSession,
)
from checkout.payment import ATTEMPT_RECOVERY_AFTER
from checkout.recovery import PaymentRecovery
from checkout.sessions import SessionLifecycle
from payments.provider import ThreeDSResult


class CheckoutService(SessionLifecycle, PaymentRecovery):
    """Session lifecycle + payment + recovery over one merchant profile and provider."""


__all__ = [
    "ATTEMPT_RECOVERY_AFTER",
    "TERMINAL",
    "Actor",
    "CancelSession",
    "CheckoutService",
    "CompleteSession",
    "CreateSession",
    "LineRequest",
    "PaymentCredential",
    "SessionStatus",
    "SessionView",
    "ThreeDSResult",
    "UpdateSession",
]
