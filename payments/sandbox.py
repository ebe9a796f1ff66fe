"""A built-in PSP for the embedded default and the demo: deterministic test tokens.

| token                         | outcome                                        |
|-------------------------------|------------------------------------------------|
| ``spt_test_declined``         | declined (``generic_decline``)                 |
| ``spt_test_insufficient_funds``| declined (``insufficient_funds``)             |
| ``spt_test_3ds``              | requires 3-D Secure, then succeeds if authenticated |
| ``spt_test_unavailable``      | provider outage (retryable error)              |
| ``spt_test_slow``             | succeeds after 0.5 s (exercise in-flight paths)|
| anything else                 | succeeds                                       |

Charges are recorded in their own transaction (the PSP is a separate system) under a
unique idempotency key, so a retried charge returns the original result, like Stripe.

With ``manual_capture`` (``REELCART_SANDBOX_CAPTURE_METHOD=manual``) a successful charge is
only authorised (``requires_capture``), as a Stripe PaymentIntent with
``capture_method=manual``: ``capture`` takes all of it or a part (``amount_to_capture``,
at most the authorised amount; the rest is released), ``cancel_authorization`` releases it.
Fees, refunds, disputes and payouts then count the captured amount only.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import SandboxCharge, SandboxDispute, SandboxRefund
from models.base import new_id, utc_now
from models.money import apply_rate_bps
from models.prepared import Prepared
from models.statuses import CaptureOutcome, RefundStatus
from payments.provider import (
    BalanceTxn,
    CaptureResult,
    ChargeRequest,
    ChargeResult,
    PaymentUnavailable,
    Payout,
    PayoutStatus,
    RefundRejected,
    RefundRequest,
    RefundResult,
    card_handler,
    token_fingerprint,
)

FEE_RATE_BPS = 290
FEE_FIXED = 30
AUTHENTICATED_OUTCOMES = frozenset({"authenticated", "attempt_acknowledged", "informational"})

SANDBOX_3DS_METADATA: dict[str, Any] = {
    "acquirer_details": {
        "acquirer_bin": "424242",
        "acquirer_country": "US",
        "acquirer_merchant_id": "sandbox_mid_001",
        "merchant_name": "ReelCart Sandbox",
    },
    "directory_server": "visa",
    "flow_preference": {"type": "challenge", "challenge": {"type": "preferred"}},
}


CHARGES = cast(Table, SandboxCharge.__table__)
_CHARGE_COLUMNS = ("id", "idempotency_key", "amount", "currency", "status", "token_fingerprint",
                   "decline_code", "fee_amount", "created_at")
_CHARGE = {
    dialect: Prepared(insert(CHARGES).values({c: bindparam(c) for c in _CHARGE_COLUMNS})
                      .on_conflict_do_nothing(index_elements=["idempotency_key"]))
    for dialect, insert in (("postgresql", pg_insert), ("sqlite", sqlite_insert))
}


def sandbox_fee(amount: int) -> int:
    return apply_rate_bps(amount, FEE_RATE_BPS) + FEE_FIXED


def captured_amount(charge: SandboxCharge) -> int:
    """What the charge took from the buyer: all of it unless it was captured in part."""
    return charge.amount if charge.amount_captured is None else charge.amount_captured


class SandboxProvider:
    name = "sandbox"
    api_version: str | None = None

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], merchant_id: str, *,
                 manual_capture: bool = False) -> None:
        self._sessionmaker = sessionmaker
        self._manual_capture = manual_capture
        self._handlers = [card_handler(psp="sandbox", merchant_id=merchant_id,
                                       environment="sandbox")]

    def payment_handlers(self) -> list[dict[str, Any]]:
        return self._handlers

    @staticmethod
    def _test_token(token: str) -> str:
        """Vault-style ``tok_…`` test tokens (older ACP ``payment_data.token``) behave like
        the ``spt_…`` test token of the same name."""
        return "spt_" + token[4:] if token.startswith("tok_") else token

    def _decide(self, request: ChargeRequest) -> ChargeResult:
        token = self._test_token(request.token)
        if token == "spt_test_declined":
            return ChargeResult("declined", decline_code="generic_decline",
                                message="Your card was declined.")
        if token == "spt_test_insufficient_funds":
            return ChargeResult("declined", decline_code="insufficient_funds",
                                message="Your card has insufficient funds.")
        if token == "spt_test_3ds":
            if request.three_ds is None:
                return ChargeResult("requires_action",
                                    authentication_metadata=SANDBOX_3DS_METADATA)
            if request.three_ds.outcome not in AUTHENTICATED_OUTCOMES:
                return ChargeResult("declined", decline_code="authentication_failed",
                                    message="Card authentication failed.")
        if self._manual_capture:  # authorised only; the fee comes with the capture
            return ChargeResult("requires_capture")
        return ChargeResult("succeeded", fee_amount=sandbox_fee(request.amount))

    async def charge(self, request: ChargeRequest) -> ChargeResult:
        test_token = self._test_token(request.token)
        if test_token == "spt_test_unavailable":
            raise PaymentUnavailable("sandbox provider is simulating an outage")
        if test_token == "spt_test_slow":
            await asyncio.sleep(0.5)
        result = self._decide(request)
        charge_id = new_id("ch")
        async with self._sessionmaker() as db, db.begin():
            # One statement: the charge, unless this key already has one (a retry, or a
            # concurrent identical request that committed first): then replay that one.
            inserted = await _CHARGE[db.get_bind().dialect.name].execute(db, {
                "id": charge_id, "idempotency_key": request.idempotency_key,
                "amount": request.amount, "currency": request.currency,
                "status": result.status, "token_fingerprint": token_fingerprint(request.token),
                "decline_code": result.decline_code, "fee_amount": result.fee_amount or 0,
                "created_at": utc_now()})
            if not inserted.rowcount:
                existing = await db.scalar(select(SandboxCharge).where(
                    SandboxCharge.idempotency_key == request.idempotency_key))
                if existing is None:  # the conflicting row is gone: let the caller retry
                    raise PaymentUnavailable("concurrent charge with the same key")
                return self._replay(existing)
        return ChargeResult(result.status, reference=charge_id,
                            decline_code=result.decline_code, message=result.message,
                            authentication_metadata=result.authentication_metadata,
                            fee_amount=result.fee_amount)

    async def refund(self, request: RefundRequest) -> RefundResult:
        async with self._sessionmaker() as db, db.begin():
            existing = await db.scalar(select(SandboxRefund).where(
                SandboxRefund.idempotency_key == request.idempotency_key))
            if existing is not None:
                return RefundResult(RefundStatus.succeeded, existing.id)
            charge = await db.get(SandboxCharge, request.payment_reference)
            if charge is None or charge.status != "succeeded":
                raise RefundRejected(f"no succeeded charge {request.payment_reference}")
            refunded = sum(r.amount for r in await db.scalars(select(SandboxRefund).where(
                SandboxRefund.charge_id == charge.id)))
            if refunded + request.amount > captured_amount(charge):
                raise RefundRejected("refund exceeds the charged amount")
            refund = SandboxRefund(id=new_id("re"), idempotency_key=request.idempotency_key,
                                   charge_id=charge.id, amount=request.amount)
            db.add(refund)
            await db.flush()
            return RefundResult(RefundStatus.succeeded, refund.id)

    async def capture(self, reference: str, *, amount: int | None, idempotency_key: str
                      ) -> CaptureResult:
        """Capture an authorised charge, all of it or ``amount`` of it (the rest is
        released), once: capturing again answers with what was captured, like Stripe
        replaying a capture under its idempotency key. A charge captured at once is
        already captured in full."""
        async with self._sessionmaker() as db, db.begin():
            charge = await db.get(SandboxCharge, reference, with_for_update=True)
            if charge is None or charge.status not in ("succeeded", "requires_capture",
                                                       "canceled"):
                return CaptureResult(CaptureOutcome.failed, 0, f"no authorised charge {reference}")
            if charge.status == "canceled":
                return CaptureResult(CaptureOutcome.canceled, 0,
                                     "the authorisation was canceled or expired")
            if charge.status == "succeeded":
                return CaptureResult(CaptureOutcome.captured, captured_amount(charge),
                                     fee_amount=charge.fee_amount)
            wanted = charge.amount if amount is None else amount
            if not 0 < wanted <= charge.amount:
                return CaptureResult(CaptureOutcome.failed, 0,
                                     f"amount_to_capture must be between 1 and {charge.amount}")
            charge.status = "succeeded"
            charge.amount_captured = wanted
            charge.captured_at = utc_now()
            charge.fee_amount = sandbox_fee(wanted)
            return CaptureResult(CaptureOutcome.captured, wanted, fee_amount=charge.fee_amount)

    async def cancel_authorization(self, reference: str, *, idempotency_key: str
                                   ) -> CaptureResult:
        async with self._sessionmaker() as db, db.begin():
            charge = await db.get(SandboxCharge, reference, with_for_update=True)
            if charge is not None and charge.status == "requires_capture":
                charge.status = "canceled"
            if charge is not None and charge.status == "canceled":
                return CaptureResult(CaptureOutcome.canceled)
            if charge is not None and charge.status == "succeeded":
                return CaptureResult(CaptureOutcome.captured, captured_amount(charge),
                                     "already captured: refund instead")
        return CaptureResult(CaptureOutcome.failed, 0, f"no authorised charge {reference}")

    async def find_payment(self, *, idempotency_key: str, checkout_session_id: str,
                           amount: int) -> ChargeResult | None:
        async with self._sessionmaker() as db:
            charge = await db.scalar(select(SandboxCharge).where(
                SandboxCharge.idempotency_key == idempotency_key))
        return None if charge is None else self._replay(charge)

    async def open_dispute(self, payment_reference: str, amount: int | None) -> tuple[str, int]:
        """Simulate a chargeback on a sandbox payment: (dispute id, disputed amount)."""
        async with self._sessionmaker() as db, db.begin():
            charge = await db.get(SandboxCharge, payment_reference)
            if charge is None or charge.status != "succeeded":
                raise RefundRejected(f"no succeeded charge {payment_reference}")
            captured = captured_amount(charge)
            disputed = captured if amount is None else min(amount, captured)
            dispute = SandboxDispute(id=new_id("du"), charge_id=charge.id, amount=disputed)
            db.add(dispute)
            await db.flush()
            return dispute.id, disputed

    async def close_dispute(self, dispute_id: str, *, won: bool) -> SandboxDispute:
        """Simulate the issuer's decision on a sandbox dispute: ``won`` gives the disputed
        amount back (a ``dispute_reversal`` in the next daily payout; the dispute fee stays
        charged, as at Stripe), ``lost`` keeps it withdrawn. Deciding twice is refused."""
        async with self._sessionmaker() as db, db.begin():
            dispute = await db.get(SandboxDispute, dispute_id, with_for_update=True)
            if dispute is None:
                raise RefundRejected(f"no sandbox dispute {dispute_id}")
            if dispute.closed_at is not None:
                raise RefundRejected(f"sandbox dispute {dispute_id} is already {dispute.status}")
            dispute.status = "won" if won else "lost"
            dispute.closed_at = utc_now()
            await db.flush()
            return dispute

    async def settlement(self, start: datetime, end: datetime
                         ) -> tuple[list[Payout], list[BalanceTxn]]:
        """Balance transactions from the sandbox ledger, paid out daily: a day's payout
        arrives at the next midnight (its ``arrival``) and is ``pending`` until then (the day
        is still open, more may be added), ``paid`` from then on, as Stripe's payout
        ``status`` moves with its ``arrival_date``."""
        async with self._sessionmaker() as db:
            charges = list(await db.scalars(select(SandboxCharge).where(
                SandboxCharge.status == "succeeded")))
            refunds = list(await db.scalars(select(SandboxRefund)))
            disputes = list(await db.scalars(select(SandboxDispute)))
        txns: list[tuple[datetime, str, str, int, int, str, str | None]] = []
        currency = {c.id: c.currency for c in charges}
        for c in charges:  # a manual capture settles what was captured, when it was
            txns.append((c.captured_at or c.created_at, f"txn_{c.id}", "charge",
                         captured_amount(c), c.fee_amount, c.id, c.id))
        for r in refunds:
            txns.append((r.created_at, f"txn_{r.id}", "refund", -r.amount, 0, r.charge_id, r.id))
        for d in disputes:
            txns.append((d.created_at, f"txn_{d.id}", "dispute", -d.amount, d.fee_amount,
                         d.charge_id, d.id))
            if d.status == "won" and d.closed_at is not None:
                txns.append((d.closed_at, f"txn_{d.id}_won", "dispute_reversal", d.amount, 0,
                             d.charge_id, d.id))
        payouts: dict[str, Payout] = {}
        out: list[BalanceTxn] = []
        now = utc_now()
        for created, txn_id, category, amount, fee, ref, source in sorted(txns):
            day = created.astimezone(UTC).date()
            arrival = datetime.combine(day + timedelta(days=1), time(0), UTC)
            if not start <= arrival < end:
                continue
            cur = currency.get(ref, "usd")
            payout_id = f"po_sbx_{day.isoformat()}_{cur}"
            out.append(BalanceTxn(txn_id, category, amount, fee, amount - fee, cur, ref,
                                  source, payout_id, created))
            prev = payouts.get(payout_id)
            payouts[payout_id] = Payout(
                payout_id, (prev.amount if prev else 0) + amount - fee, cur, arrival,
                PayoutStatus.paid if arrival <= now else PayoutStatus.pending)
        return list(payouts.values()), out

    @staticmethod
    def _replay(charge: SandboxCharge) -> ChargeResult:
        status = charge.status
        if status in ("requires_capture", "canceled") or charge.captured_at is not None:
            # The first answer was an authorisation; a replay answers the same.
            return ChargeResult("requires_capture", reference=charge.id)
        if status == "requires_action":
            return ChargeResult("requires_action", reference=charge.id,
                                authentication_metadata=SANDBOX_3DS_METADATA)
        if status == "declined":
            return ChargeResult("declined", reference=charge.id,
                                decline_code=charge.decline_code or "generic_decline",
                                message="Your card was declined.")
        return ChargeResult("succeeded", reference=charge.id, fee_amount=charge.fee_amount)
