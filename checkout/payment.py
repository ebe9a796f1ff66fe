"""Completing a session: charge at most once, then create the order.

``complete`` commits a *recovery point* (payment attempt + reserved stock, status
``in_progress``) before calling the PSP, so no row lock is held across the network and a
crash between the PSP's answer and our commit is recovered with the same provider
idempotency key (see ``checkout.recovery``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from attribution import ledger, touches
from checkout import repository
from checkout.base import CheckoutCore, Stored
from checkout.domain import (
    TERMINAL,
    Actor,
    Claim,
    CompleteSession,
    SessionStatus,
    SessionView,
)
from checkout.errors import (
    CheckoutInProgress,
    CheckoutSessionClosed,
    CheckoutSessionNotFound,
    InvalidPaymentData,
    RequiresAuthentication,
)
from models import PaymentAttempt
from models.base import new_id
from models.errors import ServiceUnavailable
from models.statuses import CHARGED, OPEN_ATTEMPTS, AttemptStatus, OrderPaymentStatus
from orders import capture
from orders import service as order_service
from payments.provider import (
    ChargeRequest,
    ChargeResult,
    PaymentUnavailable,
    ProviderIntegrationError,
    ThreeDSResult,
    charge_idempotency_key,
    token_fingerprint,
)

# Builds the complete command inside phase A (see ``PaymentFlow.complete``).
PrepareComplete = Callable[[AsyncSession], Awaitable[CompleteSession]]

# A pending payment attempt older than this is presumed orphaned (its process died) and is
# resumed with the same provider idempotency key.
ATTEMPT_RECOVERY_AFTER = timedelta(seconds=30)


class PaymentFlow(CheckoutCore):
    async def complete(
        self, sessionmaker: async_sessionmaker[AsyncSession], db: AsyncSession, actor: Actor,
        session_id: str, cmd: CompleteSession | PrepareComplete, *,
        claim: Claim | None = None,
    ) -> SessionView:
        """Charge once and create the order. ``db`` must not have begun yet: phase A runs
        (and commits) on its own connection first. ``claim``: the caller's idempotency
        key, claimed first thing in phase A so that it commits with the recovery point.
        ``cmd`` may be a callable that builds the command in phase A, after the claim (a
        binding whose own checks and notes belong in the same transaction: UCP)."""
        async with sessionmaker() as phase_a, phase_a.begin():
            if claim is not None:
                await claim(phase_a)
            if not isinstance(cmd, CompleteSession):
                cmd = await cmd(phase_a)
            outcome = await self._prepare_payment(phase_a, actor, session_id, cmd)
            if isinstance(outcome, SessionView):  # nothing to charge: the session says why
                return outcome
            charge, attempt_id, prior_status = outcome
        try:
            result = await self.provider.charge(charge)
        except ProviderIntegrationError as exc:
            # The provider refused *our* request (Stripe 400 invalid_request_error): nothing
            # was charged, and it is the merchant's integration to fix, not the buyer's card.
            async with sessionmaker() as undo, undo.begin():
                await self._abandon_attempt(undo, session_id, attempt_id, prior_status,
                                            status=AttemptStatus.error,
                                            failure_code=exc.code)
                await capture.record_incident(
                    undo, provider=self.provider.name, kind="integration_error",
                    code=exc.code, message=str(exc), reference=session_id,
                    request_id=exc.request_id)
            raise ServiceUnavailable(
                "The payment provider rejected the merchant's payment request (an integration "
                "error on the merchant's side); no charge was made. Retry later.",
                code="payment_provider_error", headers={"Retry-After": "60"},
            ) from exc
        except PaymentUnavailable as exc:
            async with sessionmaker() as undo, undo.begin():
                await self._abandon_attempt(undo, session_id, attempt_id, prior_status)
            raise ServiceUnavailable(
                "The payment provider is unavailable; no charge was made. Retry the request.",
                code="payment_provider_unavailable", headers={"Retry-After": "2"},
            ) from exc
        loaded = await repository.lock_for_outcome(db, session_id, attempt_id)
        if loaded is None or loaded.session.agent_id != actor.agent_id:  # as _load
            raise CheckoutSessionNotFound(session_id)
        # ``loaded`` keeps the attempt and the agent in ``db``'s identity map meanwhile.
        return await self.record_outcome(db, session_id, attempt_id, result,
                                         actor=actor.label, locked=loaded)

    async def _prepare_payment(
        self, db: AsyncSession, actor: Actor, session_id: str, cmd: CompleteSession,
    ) -> SessionView | tuple[ChargeRequest, str, str]:
        s = await self._load(db, actor, session_id, for_update=True)
        status = self.effective_status(s)
        if status in TERMINAL:
            raise CheckoutSessionClosed(s.id, status, "completed")
        if status == SessionStatus.in_progress:
            attempt = await repository.latest_attempt(db, s.id)
            if attempt is None or self.clock() - attempt.updated_at < ATTEMPT_RECOVERY_AFTER:
                raise CheckoutInProgress(s.id)
            return await self._resume_attempt(db, s, attempt, cmd)
        if status == SessionStatus.authentication_required and cmd.authentication is None:
            raise RequiresAuthentication()
        token = self._token(cmd)
        claim = touches.accept(cmd.attribution, cmd.attribution_param)
        if claim is not None:  # the first valid last-touch claim wins; never blocks
            await touches.record_claim(db, s.id, claim, self.clock())
        if cmd.buyer is not None:
            s.buyer = cmd.buyer
        if cmd.order_notes is not None:
            s.order_notes = cmd.order_notes
        quoted_total = s.total_amount
        await self._reprice(db, s)
        if s.status != SessionStatus.ready_for_payment:
            await repository.save_session(db, s)
            return self.view(s)
        if s.total_amount != quoted_total:
            # Never charge an amount the buyer was not shown.
            s.messages = [*s.messages, {
                "type": "warning", "code": "price_change", "content_type": "plain",
                "content": "The total changed since it was last shown; review and confirm.",
                "param": "$.totals", "resolution": "requires_buyer_review"}]
            await repository.save_session(db, s)
            return self.view(s)
        quantities, short = await self._reserve_all(db, s)
        if short:  # lost the race for the last units: show it, charge nothing
            await self._reprice(db, s)
            await repository.save_session(db, s)
            return self.view(s)
        three_ds = self._three_ds(cmd)
        existing_reference = await self._payment_to_confirm(db, s.id, token, three_ds)
        s.order_id = s.order_id or new_id("ord")
        now = self.clock()
        attempt_id = new_id("pa")
        idempotency_key = charge_idempotency_key(
            s.id, s.total_amount, s.currency, token, three_ds=three_ds,
            confirming=existing_reference)
        await repository.insert_attempt(db, {  # the recovery point, with the session below
            "id": attempt_id, "checkout_session_id": s.id, "provider": self.provider.name,
            "provider_idempotency_key": idempotency_key, "amount": s.total_amount,
            "currency": s.currency, "status": AttemptStatus.pending.value,
            "api_version": self.provider.api_version,
            "token_fingerprint": token_fingerprint(token), "created_at": now,
            "updated_at": now})
        prior_status = SessionStatus.authentication_required.value \
            if status == SessionStatus.authentication_required \
            else SessionStatus.ready_for_payment.value
        s.status = SessionStatus.in_progress.value
        s.reserved_stock = quantities
        s.payment_handler_id = cmd.payment.handler_id if cmd.payment else None
        await repository.save_session(db, s)
        charge = ChargeRequest(
            amount=s.total_amount, currency=s.currency, token=token,
            idempotency_key=idempotency_key,
            metadata=self._payment_metadata(s), three_ds=three_ds,
            existing_reference=existing_reference)
        return charge, attempt_id, prior_status

    @staticmethod
    def _three_ds(cmd: CompleteSession) -> ThreeDSResult | None:
        return cmd.authentication

    @staticmethod
    async def _payment_to_confirm(db: AsyncSession, session_id: str, token: str,
                                  three_ds: ThreeDSResult | None) -> str | None:
        """3-D Secure: the provider payment that asked for authentication (or whose
        authentication was denied) is confirmed again with the new result, if it was made
        with the same token. Each authentication is its own provider request (its own key),
        so a new result after a denied one is really tried."""
        if three_ds is None:
            return None
        previous = await repository.latest_attempt(db, session_id)
        if previous is None or previous.status not in (AttemptStatus.requires_action,
                                                        AttemptStatus.declined) \
                or previous.token_fingerprint not in (None, token_fingerprint(token)):
            return None
        return previous.provider_reference

    async def _resume_attempt(
        self, db: AsyncSession, s: repository.SessionRow, attempt: PaymentAttempt,
        cmd: CompleteSession,
    ) -> tuple[ChargeRequest, str, str]:
        """An earlier process died mid-payment: ask the PSP again with the same key and
        exactly the same request (the provider compares parameters under a key)."""
        token = self._token(cmd)
        three_ds = self._three_ds(cmd)
        previous = [a.provider_reference for a in await repository.attempts_of(db, s.id)
                    if a.id != attempt.id and a.provider_reference]
        confirming = next(
            (ref for ref in (None, *previous) if charge_idempotency_key(
                s.id, attempt.amount, attempt.currency, token, three_ds=three_ds,
                confirming=ref) == attempt.provider_idempotency_key), "")
        if confirming == "":  # another token or authentication: not the same payment
            raise CheckoutInProgress(s.id)
        attempt.updated_at = self.clock()
        await db.flush()
        charge = ChargeRequest(
            amount=attempt.amount, currency=attempt.currency, token=token,
            idempotency_key=attempt.provider_idempotency_key,
            metadata=self._payment_metadata(s), three_ds=three_ds,
            existing_reference=confirming)
        return charge, attempt.id, SessionStatus.ready_for_payment.value

    @staticmethod
    def _payment_metadata(s: repository.SessionRow) -> dict[str, str]:
        """Deterministic (a retry must send identical parameters under the same key)."""
        metadata = {"checkout_session_id": s.id, "order_id": s.order_id or ""}
        video_id = (s.session_metadata or {}).get("video_id")
        if isinstance(video_id, str) and video_id:
            metadata["video_id"] = video_id[:200]
        return metadata

    @staticmethod
    async def _reserve_all(db: AsyncSession, s: Stored) -> tuple[dict[str, int], list[str]]:
        """Take stock for every line, or none (one statement, no savepoint): returns
        (quantities, short)."""
        quantities: dict[str, int] = {}
        for r in s.requested_items:
            quantities[r["id"]] = quantities.get(r["id"], 0) + r["quantity"]
        return quantities, await repository.reserve_stock(db, quantities)

    def _token(self, cmd: CompleteSession) -> str:
        payment = cmd.payment
        if payment is None:
            raise InvalidPaymentData(
                "payment_data.instrument is required; purchase orders are not accepted.",
                param=f"{cmd.payment_param}.instrument")
        handler_ids = {h["id"] for h in self.provider.payment_handlers()}
        if payment.handler_id is not None and payment.handler_id not in handler_ids:
            raise InvalidPaymentData(f"Unknown payment handler {payment.handler_id!r}.",
                                     param=f"{cmd.payment_param}.handler_id")
        return payment.token

    async def _abandon_attempt(
        self, db: AsyncSession, session_id: str, attempt_id: str, prior_status: str, *,
        status: AttemptStatus = AttemptStatus.unknown, failure_code: str | None = None,
    ) -> None:
        """``unknown``: the provider may still have charged (see reconcile_payment);
        ``error``: the provider refused the request, nothing was charged."""
        s = await repository.get_session(db, session_id, for_update=True)
        attempt = await db.get(PaymentAttempt, attempt_id)
        if s is None or attempt is None or s.status != SessionStatus.in_progress:
            return
        attempt.status = status
        attempt.failure_code = failure_code
        attempt.updated_at = self.clock()
        await repository.release_stock(db, s.reserved_stock or {})
        s.reserved_stock = None
        s.status = prior_status
        await db.flush()

    async def record_outcome(
        self, db: AsyncSession, session_id: str, attempt_id: str, result: ChargeResult, *,
        actor: str, locked: repository.ForOutcome | None = None,
    ) -> SessionView:
        """Apply the provider's answer to a pending attempt. Forward-only and idempotent:
        the complete request and the provider's webhook may both report the same outcome.
        ``locked``: the session, already loaded FOR UPDATE in this transaction, with what
        it says about touches and Etsy links (without it, both are looked up). The session
        and the attempt are written with one Core UPDATE each (no unit-of-work flush)."""
        s = locked.session if locked is not None \
            else await repository.load_session(db, session_id, for_update=True)
        attempt = await db.get(PaymentAttempt, attempt_id)
        assert s is not None
        assert attempt is not None
        now = self.clock()
        if s.status != SessionStatus.in_progress or attempt.status not in OPEN_ATTEMPTS:
            return await self._view_with_order(db, s)
        changes: dict[str, object] = {
            "provider_reference": result.reference or attempt.provider_reference,
            "updated_at": now}
        s.updated_at = now
        if result.fee_amount is not None:
            changes["fee_amount"] = result.fee_amount
            changes["net_amount"] = attempt.amount - result.fee_amount
        if result.status == AttemptStatus.processing:  # the provider finishes later (webhook)
            changes["status"] = AttemptStatus.processing.value
            await repository.update_attempt(db, attempt, changes)
            await repository.save_session(db, s)
            return self.view(s)
        if result.status in CHARGED:
            changes["status"] = str(result.status)
            await repository.update_attempt(db, attempt, changes)
            s.status = SessionStatus.completed.value
            s.reserved_stock = None
            s.messages = []
            order = await order_service.create_from_session(
                db, s, provider=self.provider.name, payment_reference=attempt.provider_reference,
                actor=actor, now=now, public_base_url=self.public_base_url,
                order_id=s.order_id,
                payment_status=OrderPaymentStatus.authorized
                if result.status == AttemptStatus.requires_capture else OrderPaymentStatus.paid,
                forward_to_shopify=self.forward_to_shopify,
                etsy_linked=locked is None or locked.etsy_linked)
            s.order_id = order.id
            await repository.save_session(db, s)
            if result.status == "requires_capture" and attempt.provider_reference:
                await capture.record_authorization(
                    db, order, provider=self.provider.name,
                    reference=attempt.provider_reference, now=now, policy=self.capture_policy)
            await ledger.record_sale(db, order, attempt.fee_amount, self.ledger_policy,
                                     touched=locked is None or locked.has_touches)
            return self.view(s, order)
        await repository.release_stock(db, s.reserved_stock or {})
        s.reserved_stock = None
        if result.status == AttemptStatus.requires_action:
            changes["status"] = AttemptStatus.requires_action.value
            await repository.update_attempt(db, attempt, changes)
            s.status = SessionStatus.authentication_required.value
            s.authentication_metadata = result.authentication_metadata
            await repository.save_session(db, s)
            return self.view(s)
        changes["status"] = AttemptStatus.declined.value
        changes["failure_code"] = result.decline_code
        await repository.update_attempt(db, attempt, changes)
        s.status = SessionStatus.ready_for_payment.value
        s.authentication_metadata = None
        s.messages = [m for m in s.messages if m.get("code") != "payment_declined"] + [{
            "type": "error", "code": "payment_declined", "content_type": "plain",
            "content": (result.message or "The payment was declined.")
            + " Please try a different payment method.",
            "param": "$.payment_data", "resolution": "requires_buyer_input"}]
        await repository.save_session(db, s)
        return self.view(s)
