"""Payment recovery: outcomes the provider reports asynchronously (webhooks) and the
worker sweep for payments whose answer was lost. Forward-only; never charges twice."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from checkout import repository
from checkout.domain import SessionStatus
from checkout.payment import PaymentFlow
from models import PaymentAttempt
from models.statuses import CHARGED, OPEN_ATTEMPTS, SWEPT_ATTEMPTS, AttemptStatus
from payments.provider import (
    ChargeResult,
    PaymentUnavailable,
    RefundRejected,
    RefundRequest,
)


class PaymentRecovery(PaymentFlow):
    async def reconcile_payment(
        self, db: AsyncSession, *, reference: str, outcome: str, amount: int | None,
        session_id: str | None, actor: str,
    ) -> str:
        """Apply a payment outcome the provider reports asynchronously (webhook).

        Returns what happened (for logs and tests). Forward-only: a payment already
        recorded is left alone; a payment whose request timed out (attempt ``unknown``) is
        turned into the order if the session can still take it, otherwise refunded, so a
        buyer is never charged twice for one session.
        """
        attempt = await repository.attempt_by_reference(db, reference)
        if attempt is None and session_id:
            attempt = await repository.unknown_attempt(db, session_id, amount)
        if attempt is None:
            from webhooks.inbox import RetryLater  # the attempt may not be committed yet

            raise RetryLater(f"no payment attempt for {reference}")
        attempt.provider_reference = attempt.provider_reference or reference
        if outcome == "failed":
            if attempt.status in OPEN_ATTEMPTS:
                await self.record_outcome(db, attempt.checkout_session_id, attempt.id,
                                          ChargeResult("declined", reference=reference,
                                                       decline_code="payment_failed"),
                                          actor=actor)
                return "declined"
            if attempt.status == AttemptStatus.unknown:
                attempt.status = AttemptStatus.declined
            return "ignored"
        result = ChargeResult("requires_capture" if outcome == "authorized" else "succeeded",
                              reference=reference)
        if attempt.status in OPEN_ATTEMPTS:
            await self.record_outcome(db, attempt.checkout_session_id, attempt.id, result,
                                      actor=actor)
            return "completed"
        if attempt.status != AttemptStatus.unknown:
            return "ignored"
        s = await repository.get_session(db, attempt.checkout_session_id, for_update=True)
        assert s is not None
        payable = (SessionStatus.ready_for_payment, SessionStatus.authentication_required)
        if s.status in payable and s.total_amount == attempt.amount:
            quantities, short = await self._reserve_all(db, s)
            if not short:
                attempt.status = AttemptStatus.pending
                s.status = SessionStatus.in_progress
                s.reserved_stock = quantities
                await db.flush()
                await self.record_outcome(db, s.id, attempt.id, result, actor=actor)
                return "recovered"
        # The session moved on (completed with another payment, canceled, sold out):
        # give the money back rather than keep an orphan charge.
        try:
            await self.provider.refund(RefundRequest(
                payment_reference=reference, amount=attempt.amount, currency=attempt.currency,
                idempotency_key=f"reelcart:orphan:{reference}", reason="duplicate",
                metadata={"checkout_session_id": s.id}))
        except RefundRejected:
            pass
        attempt.status = AttemptStatus.refunded_orphan
        attempt.updated_at = self.clock()
        return "refunded_orphan"

    async def recover_stale_attempts(
        self, sessionmaker: async_sessionmaker[AsyncSession], *,
        older_than: timedelta = timedelta(minutes=2), give_up_after: timedelta = timedelta(
            minutes=30),
    ) -> int:
        """Worker sweep: ask the provider what became of payments we lost track of (the
        process died between the provider's answer and our commit, or the answer timed
        out). Found → applied like a webhook; never found after ``give_up_after`` → the
        attempt is closed and held stock is released."""
        now = self.clock()
        async with sessionmaker() as db:
            stale = [(a.id, a.checkout_session_id, a.provider_idempotency_key, a.amount,
                      a.created_at)
                     for a in await repository.stale_attempts(db, now - older_than)]
        handled = 0
        for attempt_id, session_id, key, amount, created_at in stale:
            try:
                found = await self.provider.find_payment(
                    idempotency_key=key, checkout_session_id=session_id, amount=amount)
            except PaymentUnavailable:
                continue  # try again on the next sweep
            async with sessionmaker() as db, db.begin():
                attempt = await db.get(PaymentAttempt, attempt_id, with_for_update=True)
                if attempt is None or attempt.status not in SWEPT_ATTEMPTS:
                    continue
                if found is not None and found.reference and found.status in CHARGED:
                    attempt.provider_reference = found.reference
                    await db.flush()
                    await self.reconcile_payment(
                        db, reference=found.reference,
                        outcome="authorized" if found.status == AttemptStatus.requires_capture
                        else "succeeded", amount=amount, session_id=session_id,
                        actor="recovery")
                    handled += 1
                elif found is not None and found.status == AttemptStatus.declined:
                    if attempt.status == AttemptStatus.unknown:
                        attempt.status = AttemptStatus.declined
                    else:
                        await self.record_outcome(db, session_id, attempt_id, found,
                                                  actor="recovery")
                    handled += 1
                elif found is None and now - created_at > give_up_after:
                    if attempt.status != AttemptStatus.unknown:
                        await self._abandon_attempt(db, session_id, attempt_id,
                                                    "ready_for_payment")
                    attempt.status = AttemptStatus.abandoned
                    handled += 1
        return handled
