"""Manual capture: authorise at complete, capture on the first shipment (or after a delay),
release the authorisation when the order is canceled first.

State lives in ``payment_authorizations`` (one row per manual-capture order). Requests and
webhooks only *mark* what is due (``capture_due`` / ``cancel_due``) inside their own
transaction; the worker then calls the provider two-phase — lease the row and commit, call
with a deterministic idempotency key, record the outcome in a new transaction — so no row
lock is held across the network and a retried or crashed capture is captured once.
Failures leave the order visibly in ``needs_attention`` (order, dashboard, log), and
authorisations close to expiry are warned about once.

The merchant may capture less than was authorised (a line cannot ship): as at Stripe
(``amount_to_capture``), the rest of the authorisation is released, never charged. The
order's attribution ledger (and so commissions) then reverses the released part like a
refund (``capture_release`` rows), refunds are limited to what was captured, and the
payout reconciliation expects the captured amount.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from attribution import ledger
from models import AuthorizationStatus, Order, PaymentAuthorization, ProviderIncident
from models.base import utc_now
from models.statuses import CaptureOutcome, OrderPaymentStatus
from orders import notify, repository
from orders.errors import CaptureNotAllowed, amount_text
from payments.provider import (
    CaptureResult,
    PaymentProvider,
    PaymentUnavailable,
    ProviderIntegrationError,
)

log = logging.getLogger("reelcart.capture")
LEASE = timedelta(minutes=2)
RETRY_AFTER = timedelta(seconds=30)
OPEN = (AuthorizationStatus.authorized, AuthorizationStatus.capture_due)


@dataclass(frozen=True, slots=True)
class CapturePolicy:
    delay: timedelta | None = None  # capture this long after authorisation even unshipped
    authorization_lifetime: timedelta = timedelta(days=7)
    warn_before: timedelta = timedelta(hours=24)


def capture_key(reference: str, amount: int | None) -> str:
    return f"reelcart:capture:{reference}:{amount if amount is not None else 'all'}"


def cancel_key(reference: str) -> str:
    return f"reelcart:cancel:{reference}"


async def record_incident(db: AsyncSession, *, provider: str, kind: str, message: str,
                          code: str | None = None, reference: str | None = None,
                          request_id: str | None = None) -> None:
    db.add(ProviderIncident(provider=provider, kind=kind, code=(code or "")[:200] or None,
                            message=message[:2000], reference=reference,
                            request_id=request_id, created_at=utc_now()))


async def record_authorization(db: AsyncSession, order: Order, *, provider: str,
                               reference: str, now: datetime,
                               policy: CapturePolicy | None = None) -> None:
    """The payment is authorised, not captured (``requires_capture``)."""
    if await db.get(PaymentAuthorization, order.id) is not None:
        return
    policy = policy or CapturePolicy()
    db.add(PaymentAuthorization(
        order_id=order.id, provider=provider, provider_reference=reference,
        currency=order.currency, amount_authorized=order.total_amount, amount_captured=0,
        status=AuthorizationStatus.authorized, authorized_at=now,
        expires_at=now + policy.authorization_lifetime,
        capture_due_at=now + policy.delay if policy.delay else None,
        attempts=0, updated_at=now))
    await db.flush()


async def request_capture(db: AsyncSession, order: Order, *, actor: str,
                          amount: int | None = None) -> bool:
    """Something shipped: capture (the worker does it). Only the first shipment counts."""
    auth = await db.get(PaymentAuthorization, order.id, with_for_update=True)
    if auth is None or auth.status != AuthorizationStatus.authorized:
        return False
    await _mark_capture_due(db, auth, actor=actor, amount=amount)
    return True


async def _mark_capture_due(db: AsyncSession, auth: PaymentAuthorization, *, actor: str,
                            amount: int | None) -> None:
    """Hand the capture (all, or ``amount``) to the worker, with the order's event."""
    now = utc_now()
    auth.status = AuthorizationStatus.capture_due
    auth.capture_due_at = now
    auth.amount_to_capture = amount
    auth.updated_at = now
    await repository.add_event(db, auth.order_id, "payment.capture_requested", actor,
                               {"reference": auth.provider_reference, "amount": amount})


async def merchant_capture(db: AsyncSession, order: Order, *, amount: int | None,
                           actor: str) -> PaymentAuthorization:
    """The merchant captures the authorised payment now, all of it or ``amount`` (e.g. a
    line cannot ship); the worker calls the provider. Allowed while nothing was sent to the
    provider yet: an authorisation not yet due, or one a shipment just marked due. An
    amount above the authorised one or not positive is refused, like Stripe's
    ``amount_to_capture``."""
    auth = await db.get(PaymentAuthorization, order.id, with_for_update=True)
    if auth is None:
        raise CaptureNotAllowed(
            f"Order {order.id} has no authorised payment to capture (payment is "
            f"{order.payment_status}: captured at once, or not paid by card).")
    pending = auth.status == AuthorizationStatus.capture_due and auth.attempts == 0
    if auth.status != AuthorizationStatus.authorized and not pending:
        raise CaptureNotAllowed(
            f"The payment of order {order.id} cannot be captured now (its authorisation is "
            f"{auth.status}).", status_code=409)
    if amount is not None and not 0 < amount <= auth.amount_authorized:
        raise CaptureNotAllowed(
            f"The capture amount must be between {amount_text(1, auth.currency)} and the "
            f"authorised {amount_text(auth.amount_authorized, auth.currency)}; got "
            f"{amount_text(amount, auth.currency)}.",
            code="capture_amount_invalid", param="$.amount",
            extra={"amount_authorized": auth.amount_authorized})
    await _mark_capture_due(db, auth, actor=actor, amount=amount)
    return auth


async def request_cancel(db: AsyncSession, order: Order, *, actor: str) -> bool:
    """The order was canceled: release the authorisation if it was not captured yet."""
    auth = await db.get(PaymentAuthorization, order.id, with_for_update=True)
    if auth is None or auth.status not in (*OPEN, AuthorizationStatus.needs_attention):
        return False
    if auth.amount_captured:
        return False
    auth.status = AuthorizationStatus.cancel_due
    auth.updated_at = utc_now()
    await repository.add_event(db, order.id, "payment.cancel_requested", actor,
                               {"reference": auth.provider_reference})
    return True


async def provider_reports(db: AsyncSession, reference: str, status: str, *, amount: int,
                           actor: str) -> None:
    """The provider says the payment was captured or canceled (webhook: captured from the
    Stripe dashboard, or the authorisation expired)."""
    auth = await db.scalar(select(PaymentAuthorization).where(
        PaymentAuthorization.provider_reference == reference).with_for_update())
    if auth is None:
        return
    order = await repository.lock_order(db, auth.order_id)
    assert order is not None
    result = CaptureResult(CaptureOutcome.captured, amount) if status == "succeeded" else \
        CaptureResult(CaptureOutcome.canceled, 0, "the authorisation was canceled or expired")
    await _apply(db, auth, order, result, cancel=auth.status == AuthorizationStatus.cancel_due,
                 actor=actor)


async def _apply(db: AsyncSession, auth: PaymentAuthorization, order: Order,
                 result: CaptureResult, *, cancel: bool, actor: str) -> None:
    now = utc_now()
    auth.leased_until = None
    auth.updated_at = now
    if result.status == CaptureOutcome.captured:
        if auth.status == AuthorizationStatus.captured:
            return
        auth.status = AuthorizationStatus.captured
        auth.amount_captured = min(result.amount_captured or auth.amount_authorized,
                                   auth.amount_authorized)
        released = auth.amount_authorized - auth.amount_captured
        if order.payment_status in (OrderPaymentStatus.authorized,
                                    OrderPaymentStatus.needs_attention):
            order.payment_status = OrderPaymentStatus.paid
            order.attention_reason = None
        await repository.add_event(db, order.id, "payment.captured", actor, {
            "reference": auth.provider_reference, "amount": auth.amount_captured,
            "amount_released": released})
        if released:  # the rest of the authorisation was released: never sold
            await ledger.record_reversal(
                db, order, released, kind="capture_release", reference=auth.provider_reference,
                reason="partial capture: the rest of the authorisation was released")
        if result.fee_amount is not None:  # the provider told the fee with the capture
            attempt = await repository.payment_attempt(db, auth.provider_reference)
            if attempt is not None and attempt.fee_amount is None:
                attempt.fee_amount = result.fee_amount
                attempt.net_amount = auth.amount_captured - result.fee_amount
                await ledger.record_fee(db, order, result.fee_amount)
        if cancel:  # canceled too late: the buyer paid for a canceled order
            await _attention(db, auth, order, "captured before the cancellation reached the "
                             "provider: refund the buyer", actor, keep_status=True)
        await notify.order_changed(db, order)
        return
    if result.status == "canceled" and cancel:
        auth.status = AuthorizationStatus.canceled
        order.payment_status = OrderPaymentStatus.voided
        await repository.add_event(db, order.id, "payment.authorization_canceled", actor,
                                   {"reference": auth.provider_reference})
        await notify.order_changed(db, order)
        return
    if auth.status == AuthorizationStatus.canceled:
        return
    await _attention(db, auth, order, result.message or (
        "the authorisation was canceled or expired before capture" if result.status ==
        "canceled" else "the provider refused the capture"), actor)


async def _attention(db: AsyncSession, auth: PaymentAuthorization, order: Order, reason: str,
                     actor: str, *, keep_status: bool = False) -> None:
    if not keep_status:
        auth.status = AuthorizationStatus.needs_attention
    auth.last_error = reason
    order.payment_status = OrderPaymentStatus.needs_attention
    order.attention_reason = f"payment: {reason}"
    order.updated_at = utc_now()
    await repository.add_event(db, order.id, "payment.needs_attention", actor,
                               {"reference": auth.provider_reference, "reason": reason})
    await record_incident(db, provider=auth.provider, kind="capture_failed", message=reason,
                          reference=auth.provider_reference)
    log.error("payment needs attention", extra={"order_id": order.id, "reason": reason})
    await notify.order_changed(db, order)


@dataclass
class CaptureWorker:
    sessionmaker: async_sessionmaker[AsyncSession]
    provider: PaymentProvider
    policy: CapturePolicy

    async def run(self, now: datetime | None = None) -> int:
        """One pass: mark delayed captures due, capture / cancel what is due, warn about
        authorisations close to expiry. Returns how many provider calls were made."""
        now = now or utc_now()
        await self._delayed_captures_due(now)
        done = 0
        while (job := await self._lease(now)) is not None:
            await self._perform(*job)
            done += 1
        await self.warn_expiring(now)
        return done

    async def _delayed_captures_due(self, now: datetime) -> None:
        if self.policy.delay is None:
            return
        async with self.sessionmaker() as db, db.begin():
            for auth in await db.scalars(select(PaymentAuthorization).where(
                    PaymentAuthorization.status == AuthorizationStatus.authorized,
                    PaymentAuthorization.authorized_at <= now - self.policy.delay)):
                auth.status = AuthorizationStatus.capture_due
                auth.capture_due_at = now
                await repository.add_event(db, auth.order_id, "payment.capture_requested",
                                           "capture_delay", {"reference": auth.provider_reference})

    async def _lease(self, now: datetime) -> tuple[str, str, bool, int | None] | None:
        async with self.sessionmaker() as db, db.begin():
            stmt = (select(PaymentAuthorization)
                    .where(PaymentAuthorization.status.in_(
                        (AuthorizationStatus.capture_due, AuthorizationStatus.cancel_due)),
                        or_(PaymentAuthorization.leased_until.is_(None),
                            PaymentAuthorization.leased_until <= now))
                    .order_by(PaymentAuthorization.updated_at).limit(1))
            if db.get_bind().dialect.name == "postgresql":
                stmt = stmt.with_for_update(skip_locked=True)
            auth = await db.scalar(stmt)
            if auth is None:
                return None
            auth.leased_until = now + LEASE
            auth.attempts += 1
            return (auth.order_id, auth.provider_reference,
                    auth.status == AuthorizationStatus.cancel_due, auth.amount_to_capture)

    async def _perform(self, order_id: str, reference: str, cancel: bool,
                       amount: int | None) -> None:
        try:
            if cancel:
                result = await self.provider.cancel_authorization(
                    reference, idempotency_key=cancel_key(reference))
            else:
                result = await self.provider.capture(
                    reference, amount=amount, idempotency_key=capture_key(reference, amount))
        except PaymentUnavailable as exc:  # unknown outcome: retry with the same key later
            async with self.sessionmaker() as db, db.begin():
                auth = await db.get(PaymentAuthorization, order_id, with_for_update=True)
                if auth is not None:
                    auth.leased_until = utc_now() + RETRY_AFTER
                    auth.last_error = str(exc)[:500]
                    if isinstance(exc, ProviderIntegrationError):
                        await record_incident(
                            db, provider=self.provider.name, kind="integration_error",
                            code=exc.code, message=str(exc), reference=reference,
                            request_id=exc.request_id)
            return
        async with self.sessionmaker() as db, db.begin():
            auth = await db.get(PaymentAuthorization, order_id, with_for_update=True)
            order = await repository.lock_order(db, order_id)
            if auth is None or order is None:
                return
            await _apply(db, auth, order, result, cancel=cancel, actor="capture")

    async def warn_expiring(self, now: datetime) -> int:
        """Warn once (log + dashboard) about uncaptured authorisations close to expiry."""
        warned = 0
        lifetime = self.policy.authorization_lifetime
        async with self.sessionmaker() as db, db.begin():
            for auth in await db.scalars(select(PaymentAuthorization).where(
                    PaymentAuthorization.status.in_(OPEN),
                    PaymentAuthorization.expiry_warned_at.is_(None),
                    PaymentAuthorization.authorized_at <= now - lifetime
                    + self.policy.warn_before)):
                auth.expires_at = auth.authorized_at + lifetime
                auth.expiry_warned_at = now
                message = (f"authorisation for order {auth.order_id} expires at "
                           f"{auth.expires_at.isoformat()} and is not captured")
                log.warning("authorisation close to expiry", extra={
                    "order_id": auth.order_id, "expires_at": auth.expires_at.isoformat()})
                await record_incident(db, provider=auth.provider, kind="authorization_expiring",
                                      message=message, reference=auth.provider_reference)
                warned += 1
        return warned


async def open_problems(db: AsyncSession, now: datetime) -> dict[str, object]:
    """For the dashboard's integration health."""
    attention = list(await db.scalars(select(PaymentAuthorization).where(
        PaymentAuthorization.status == AuthorizationStatus.needs_attention)))
    expiring = list(await db.scalars(select(PaymentAuthorization).where(
        PaymentAuthorization.status.in_(OPEN),
        PaymentAuthorization.expiry_warned_at.is_not(None))))
    incidents = list(await db.scalars(select(ProviderIncident)
                                      .order_by(ProviderIncident.id.desc()).limit(10)))
    return {"needs_attention": attention, "expiring": expiring, "incidents": incidents,
            "now": now}
