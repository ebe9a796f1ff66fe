"""CommissionPayout runs: each payee's locked balance, paid once through a Connect transfer.

Per payee: lock the payee row, claim the payable rows (``in_payout``) and write the payout
(``pending``) with an idempotency key derived from (run, payee) — commit: that is the
recovery point. Then call the provider, outside any transaction. Then record the outcome:
``paid`` (rows → ``paid``, one negative ``payout`` row), or ``failed`` (rows back to
``locked``). A crash in between leaves a ``pending`` payout; every later run (or the
``transfer.created`` event) finishes it first — looking the transfer up by its
``transfer_group`` and our payout id, else repeating the very same request under the same
key — so the payee is paid exactly once. A duplicate run finds nothing left to claim.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from commissions import repository
from commissions.ledger import lock_due
from commissions.rules import EntryKind, EntryStatus
from commissions.service import ensure_statement, month_of, payout_json
from models import CommissionEntry, CommissionPayout, Payee, PayoutRun
from models.base import new_id, utc_now
from models.statuses import PayoutRunStatus, PayoutStatus
from payments.provider import PaymentUnavailable
from payments.transfers import TransferClient, TransferRejected, TransferRequest

Json = dict[str, Any]
ENTRIES = cast(Table, CommissionEntry.__table__)


@dataclass(frozen=True, slots=True)
class Candidate:
    payee_id: str
    name: str
    currency: str
    amount: int
    action: str  # pay | skip
    reason: str | None


def idempotency_key(run_id: str, payee_id: str) -> str:
    return f"reelcart:payout:{run_id}:{payee_id}"


async def plan(db: AsyncSession, now: datetime, minimum: int) -> list[Candidate]:
    """Who would be paid how much, and why the others are not (they keep accruing)."""
    payees = {p.id: p for p in await db.scalars(select(Payee))}
    out = []
    for payee_id, currency, amount in await repository.payable_by_payee(db, now):
        payee = payees.get(payee_id)
        name = payee.name if payee else payee_id
        reason = None
        if payee is None:
            reason = "unknown_payee"
        elif amount <= 0:
            reason = "negative_balance_carried" if amount < 0 else "nothing_payable"
        elif currency != payee.currency:
            reason = "currency_mismatch"
        elif not payee.connect_account:
            reason = "no_connect_account"
        elif amount < minimum:
            reason = "below_minimum"
        out.append(Candidate(payee_id, name, currency, amount,
                             "skip" if reason else "pay", reason))
    return out


def _candidate_json(c: Candidate, **extra: Any) -> Json:
    return {"payee_id": c.payee_id, "name": c.name, "currency": c.currency,
            "amount": c.amount, "action": c.action, "reason": c.reason, **extra}


async def prepare_payout(db: AsyncSession, run: PayoutRun, payee_id: str, currency: str
                         ) -> CommissionPayout | None:
    """The recovery point: claim the payee's payable rows into a ``pending`` payout."""
    payee = await repository.lock_payee(db, payee_id)
    if payee is None or not payee.connect_account or payee.currency != currency:
        return None
    existing = await db.scalar(select(CommissionPayout).where(CommissionPayout.run_id == run.id,
                                                    CommissionPayout.payee_id == payee_id))
    if existing is not None:
        return None
    entries = await repository.claimable_entries(db, payee_id, currency, run.as_of)
    total = sum(e.amount for e in entries)
    if total <= 0 or total < run.minimum_amount:
        return None
    start, end = month_of(utc_now())
    statement = await ensure_statement(db, payee_id, start, end)
    now = utc_now()
    payout = CommissionPayout(id=new_id("pyt"), run_id=run.id, payee_id=payee_id,
                    statement_id=statement.id, amount=total, currency=currency,
                    destination=payee.connect_account,
                    idempotency_key=idempotency_key(run.id, payee_id),
                    status=PayoutStatus.pending,
                    amount_reversed=0, created_at=now, updated_at=now)
    db.add(payout)
    await db.flush()
    await repository.claim(db, [e.id for e in entries], payout.id)
    return payout


def transfer_request(payout: CommissionPayout) -> TransferRequest:
    return TransferRequest(
        amount=payout.amount, currency=payout.currency, destination=payout.destination,
        transfer_group=payout.run_id, idempotency_key=payout.idempotency_key,
        metadata={"reelcart_payout_id": payout.id, "reelcart_payee_id": payout.payee_id,
                  "reelcart_run_id": payout.run_id,
                  "reelcart_statement_id": payout.statement_id or ""},
        description=f"ReelCart commissions, statement {payout.statement_id}")


async def record_paid(db: AsyncSession, payout: CommissionPayout, transfer_id: str) -> bool:
    """pending → paid, once. Returns whether this call recorded it."""
    if payout.status != PayoutStatus.pending:
        return False
    now = utc_now()
    payout.status = PayoutStatus.paid
    payout.transfer_id = transfer_id
    payout.updated_at = now
    await repository.settle(db, payout.id, EntryStatus.paid)
    await db.execute(insert(ENTRIES), [dict(
        payee_id=payout.payee_id, kind=EntryKind.payout.value, status=EntryStatus.paid.value,
        amount=-payout.amount, currency=payout.currency, reference=transfer_id,
        reason="connect_transfer", lock_at=now, payout_id=payout.id, created_at=now)])
    await db.flush()
    return True


async def record_reversal(db: AsyncSession, payout: CommissionPayout, amount_reversed: int,
                          reference: str) -> int:
    """A transfer was reversed (in part): the payee is owed that again, payable at once."""
    delta = min(amount_reversed, payout.amount) - payout.amount_reversed
    if delta <= 0:
        return 0
    now = utc_now()
    payout.amount_reversed += delta
    if payout.amount_reversed >= payout.amount:
        payout.status = PayoutStatus.reversed
    payout.updated_at = now
    await db.execute(insert(ENTRIES), [dict(
        payee_id=payout.payee_id, kind=EntryKind.payout_reversal.value,
        status=EntryStatus.locked.value, amount=delta, currency=payout.currency,
        reference=reference, reason="transfer_reversed", lock_at=now, payout_id=payout.id,
        created_at=now)])
    await db.flush()
    return delta


async def _lock_payout(db: AsyncSession, payout_id: str) -> CommissionPayout:
    payout = await db.get(CommissionPayout, payout_id, with_for_update=True, populate_existing=True)
    assert payout is not None
    return payout


async def send(sessionmaker: async_sessionmaker[AsyncSession], transfers: TransferClient,
               payout_id: str, *, resume: bool) -> Json:
    """Call the provider for a ``pending`` payout (no transaction held), then record."""
    async with sessionmaker() as db:
        payout = await db.get(CommissionPayout, payout_id)
        assert payout is not None
        if payout.status != PayoutStatus.pending:
            return payout_json(payout)
        request = transfer_request(payout)
    try:
        found = await transfers.find(request.transfer_group, payout_id) if resume else None
        result = found or await transfers.create(request)
    except TransferRejected as exc:
        async with sessionmaker() as db, db.begin():
            payout = await _lock_payout(db, payout_id)
            if payout.status == PayoutStatus.pending:
                payout.status = PayoutStatus.failed
                payout.failure = f"{exc.code}: {exc}"[:500]
                payout.updated_at = utc_now()
                await repository.settle(db, payout.id, EntryStatus.locked)
            return payout_json(payout)
    except PaymentUnavailable:
        async with sessionmaker() as db:
            payout = await db.get(CommissionPayout, payout_id)
            assert payout is not None
            return payout_json(payout)  # stays pending: the next run finishes it
    async with sessionmaker() as db, db.begin():
        payout = await _lock_payout(db, payout_id)
        await record_paid(db, payout, result.id)
        if result.amount_reversed:
            await record_reversal(db, payout, result.amount_reversed, result.id)
        return payout_json(payout)


async def run_payouts(sessionmaker: async_sessionmaker[AsyncSession],
                      transfers: TransferClient, *, minimum: int, dry_run: bool,
                      run_id: str | None = None, as_of: datetime | None = None) -> Json:
    now = as_of or utc_now()
    if dry_run:
        async with sessionmaker() as db:
            candidates = await plan(db, now, minimum)
        paying = [c for c in candidates if c.action == "pay"]
        return {"dry_run": True, "as_of": now.isoformat(), "minimum_amount": minimum,
                "provider": transfers.name,
                "items": [_candidate_json(c) for c in candidates],
                "totals": _totals([(c.currency, c.amount) for c in paying])}
    run_id = run_id or new_id("por")
    async with sessionmaker() as db, db.begin():
        run = await db.get(PayoutRun, run_id, with_for_update=True)
        if run is None:
            run = PayoutRun(id=run_id, status=PayoutRunStatus.running, as_of=now,
                            minimum_amount=minimum, created_at=utc_now(), updated_at=utc_now())
            db.add(run)
            await db.flush()
        await lock_due(db, run.as_of)
        db.expunge(run)
    resumed = []
    async with sessionmaker() as db:
        pending = await repository.pending_payouts(db)
    for payout_id in pending:  # answers lost to a crash or an outage, from any run
        resumed.append(await send(sessionmaker, transfers, payout_id, resume=True))
    items = []
    async with sessionmaker() as db:
        candidates = await plan(db, run.as_of, run.minimum_amount)
    for candidate in candidates:
        if candidate.action != "pay":
            items.append(_candidate_json(candidate))
            continue
        async with sessionmaker() as db, db.begin():
            payout = await prepare_payout(db, run, candidate.payee_id, candidate.currency)
            claimed = payout.id if payout else None
        if claimed is None:  # a concurrent run claimed it first
            items.append(_candidate_json(candidate, action="skip", reason="already_claimed"))
            continue
        outcome = await send(sessionmaker, transfers, claimed, resume=False)
        items.append(_candidate_json(candidate, action=outcome["status"], payout=outcome))
    summary = {"paid": sum(1 for i in items if i["action"] == "paid"),
               "pending": sum(1 for i in items if i["action"] == "pending"),
               "failed": sum(1 for i in items if i["action"] == "failed"),
               "skipped": sum(1 for i in items if i["action"] == "skip"),
               "resumed": len(resumed),
               "totals": _totals([(i["currency"], i["amount"]) for i in items
                                  if i["action"] == "paid"])}
    async with sessionmaker() as db, db.begin():
        stored = await db.get(PayoutRun, run_id, with_for_update=True)
        assert stored is not None
        stored.status = (PayoutRunStatus.completed if not summary["pending"]
                         else PayoutRunStatus.running)
        stored.summary = summary
        stored.updated_at = utc_now()
    return {"dry_run": False, "run_id": run_id, "as_of": run.as_of.isoformat(),
            "minimum_amount": run.minimum_amount, "provider": transfers.name,
            "items": items, "resumed": resumed, "summary": summary}


def _totals(pairs: list[tuple[str, int]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for currency, amount in pairs:
        out[currency] = out.get(currency, 0) + amount
    return out


async def resume_stale(sessionmaker: async_sessionmaker[AsyncSession],
                       transfers: TransferClient, *,
                       older_than: timedelta = timedelta(minutes=2)) -> int:
    """The worker's sweep: finish payouts left ``pending`` by a crash or an outage without
    waiting for the next run (the same lookup-then-same-key path, so still once)."""
    async with sessionmaker() as db:
        stale = await repository.pending_payouts(db, before=utc_now() - older_than)
    for payout_id in stale:
        await send(sessionmaker, transfers, payout_id, resume=True)
    return len(stale)


async def run_json(db: AsyncSession, run_id: str) -> Json | None:
    run = await db.get(PayoutRun, run_id)
    if run is None:
        return None
    return {"id": run.id, "status": run.status, "as_of": run.as_of.isoformat(),
            "minimum_amount": run.minimum_amount, "summary": run.summary,
            "created_at": run.created_at.isoformat(),
            "payouts": [payout_json(p) for p in await repository.payouts_of(db, run_id=run.id)]}


async def recent_runs(db: AsyncSession, limit: int = 20) -> list[PayoutRun]:
    return list(await db.scalars(select(PayoutRun).order_by(PayoutRun.created_at.desc())
                                 .limit(limit)))
