"""SQL for commissions: contracts in force, facts for a sale, ledger sums and lines."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, case, cast, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from commissions.rules import Basis, EntryKind, EntryStatus, Line, Scope, Terms, VideoFacts
from models import (
    CommissionContract,
    CommissionEntry,
    CommissionPayout,
    ContractPayee,
    Payee,
    Statement,
    StatementLink,
    Variant,
    Video,
)
from models.statuses import PayoutStatus

LINEAGE_DEPTH = 50  # lineage is merchant input: bounded


def terms_of(contract: CommissionContract, payees: Iterable[tuple[str, int]]) -> Terms:
    return Terms(
        contract_id=contract.id, scope=Scope(contract.scope_type),
        scope_value=contract.scope_value, basis=Basis(contract.basis), model=contract.model,
        payees=tuple(sorted(payees)), rate_bps=contract.rate_bps,
        fixed_amount=contract.fixed_amount, currency=contract.currency,
        remix_share_bps=contract.remix_share_bps, effective_from=contract.effective_from,
        effective_to=contract.effective_to)


async def contract_payees(db: AsyncSession, contract_ids: list[str]
                          ) -> dict[str, list[tuple[str, int]]]:
    out: dict[str, list[tuple[str, int]]] = {c: [] for c in contract_ids}
    if contract_ids:
        for row in await db.scalars(select(ContractPayee).where(
                ContractPayee.contract_id.in_(contract_ids))):
            out[row.contract_id].append((row.payee_id, row.weight))
    return out


async def contracts_in_force(db: AsyncSession, at: datetime) -> list[tuple[Terms, int]]:
    """(terms, return window days) of every contract in force at ``at``."""
    contracts = list(await db.scalars(select(CommissionContract).where(
        CommissionContract.effective_from <= at,
        or_(CommissionContract.effective_to.is_(None), CommissionContract.effective_to > at))
        .order_by(CommissionContract.id)))
    if not contracts:
        return []
    payees = await contract_payees(db, [c.id for c in contracts])
    return [(terms_of(c, payees[c.id]), c.return_window_days) for c in contracts]


async def video_facts(db: AsyncSession, video_ids: set[str]) -> dict[str, VideoFacts]:
    if not video_ids:
        return {}
    known: dict[str, Video] = {v.id: v for v in await db.scalars(
        select(Video).where(Video.id.in_(video_ids)))}
    out: dict[str, VideoFacts] = {}
    for video_id, video in known.items():
        chain: list[str] = []
        current: Video | None = video
        while current is not None and current.parent_video_id and len(chain) < LINEAGE_DEPTH:
            parent_id = current.parent_video_id
            if parent_id in chain or parent_id == video_id:
                break
            chain.append(parent_id)
            current = known.get(parent_id) or await db.get(Video, parent_id)
        out[video_id] = VideoFacts(video_id, video.campaign, video.creator, tuple(chain))
    return out


async def order_lines(db: AsyncSession, order: Any, with_categories: bool) -> list[Line]:
    raw = order.line_items or []
    categories: dict[str, tuple[str, ...]] = {}
    if with_categories:
        variant_ids = [str(ln.get("variant_id") or (ln.get("item") or {}).get("id"))
                       for ln in raw]
        for variant in await db.scalars(select(Variant).where(Variant.id.in_(variant_ids))):
            categories[variant.id] = tuple(str(c) for c in variant.categories or ())
    lines = []
    for ln in raw:
        totals = {t.get("type"): int(t.get("amount") or 0) for t in ln.get("totals") or []}
        variant_id = str(ln.get("variant_id") or (ln.get("item") or {}).get("id"))
        lines.append(Line(
            product_id=str(ln.get("product_id") or ""), quantity=int(ln.get("quantity") or 0),
            commissionable=totals.get("items_base_amount", 0) - totals.get("discount", 0),
            categories=categories.get(variant_id, ())))
    return lines


# ------------------------------------------------------------------ balances and lines


def _locked_now(now: datetime) -> Any:
    return (CommissionEntry.status.in_((EntryStatus.pending.value, EntryStatus.locked.value))
            & (CommissionEntry.lock_at <= now))


def _sum(condition: Any) -> Any:
    return cast(func.coalesce(func.sum(case((condition, CommissionEntry.amount), else_=0)), 0),
                BigInteger)


def _buckets(now: datetime, *, by_video: bool = False) -> list[Any]:
    """Per payee, ``paid`` is what payouts sent (net of reversed transfers) and ``owed``
    every row's sum. Per video (payout rows name no video), ``paid`` is the commission
    rows already paid out and ``owed`` the rest."""
    payable = _locked_now(now)
    pending = ((CommissionEntry.status == EntryStatus.pending.value)
               & (CommissionEntry.lock_at > now))
    is_payout = CommissionEntry.kind.in_((EntryKind.payout.value,
                                          EntryKind.payout_reversal.value))
    is_paid = CommissionEntry.status == EntryStatus.paid.value
    return [
        _sum(~is_payout).label("earned"),
        _sum(pending).label("pending"),
        _sum(payable).label("locked"),
        _sum(CommissionEntry.status == EntryStatus.in_payout.value).label("in_payout"),
        (_sum(is_paid) if by_video else -_sum(is_payout)).label("paid"),
        (_sum(~is_paid) if by_video else _sum(CommissionEntry.id.isnot(None))).label("owed"),
    ]


async def liabilities(db: AsyncSession, *, group_by: str, now: datetime
                      ) -> list[dict[str, Any]]:
    """Owed (everything not paid out), pending, locked (payable now), in payout, paid."""
    key = {"payee": CommissionEntry.payee_id, "video": CommissionEntry.video_id}[group_by]
    stmt = (select(key.label("key"), CommissionEntry.currency,
                   *_buckets(now, by_video=group_by == "video"))
            .group_by(key, CommissionEntry.currency).order_by(key, CommissionEntry.currency))
    if group_by == "video":
        stmt = stmt.where(CommissionEntry.video_id.isnot(None))
    return [dict(r._mapping) for r in await db.execute(stmt)]


async def payable_by_payee(db: AsyncSession, now: datetime) -> list[tuple[str, str, int]]:
    """(payee, currency, locked balance) for every payee with payable rows."""
    rows = await db.execute(
        select(CommissionEntry.payee_id, CommissionEntry.currency,
               cast(func.sum(CommissionEntry.amount), BigInteger))
        .where(_locked_now(now))
        .group_by(CommissionEntry.payee_id, CommissionEntry.currency)
        .order_by(CommissionEntry.payee_id, CommissionEntry.currency))
    return [(p, c, int(a or 0)) for p, c, a in rows]


async def claimable_entries(db: AsyncSession, payee_id: str, currency: str, now: datetime
                            ) -> list[CommissionEntry]:
    stmt = (select(CommissionEntry).where(
        CommissionEntry.payee_id == payee_id, CommissionEntry.currency == currency,
        _locked_now(now)).order_by(CommissionEntry.id).with_for_update())
    return list(await db.scalars(stmt))


async def claim(db: AsyncSession, entry_ids: list[int], payout_id: str) -> None:
    await db.execute(update(CommissionEntry).where(CommissionEntry.id.in_(entry_ids)).values(
        status=EntryStatus.in_payout.value, payout_id=payout_id))


async def settle(db: AsyncSession, payout_id: str, status: EntryStatus) -> None:
    """in_payout → paid (transfer made) or back to locked (transfer refused)."""
    values: dict[str, Any] = {"status": status.value}
    if status == EntryStatus.locked:
        values["payout_id"] = None
    await db.execute(update(CommissionEntry).where(
        CommissionEntry.payout_id == payout_id,
        CommissionEntry.status == EntryStatus.in_payout.value).values(**values))


async def lock_payee(db: AsyncSession, payee_id: str) -> Payee | None:
    return await db.get(Payee, payee_id, with_for_update=True)


async def pending_payouts(db: AsyncSession, before: datetime | None = None) -> list[str]:
    stmt = select(CommissionPayout.id).where(CommissionPayout.status == PayoutStatus.pending)
    if before is not None:
        stmt = stmt.where(CommissionPayout.updated_at < before)
    return list(await db.scalars(stmt.order_by(CommissionPayout.created_at, CommissionPayout.id)))


async def payout_by_transfer(db: AsyncSession, transfer_id: str) -> CommissionPayout | None:
    return await db.scalar(select(CommissionPayout).where(
        CommissionPayout.transfer_id == transfer_id).with_for_update())


async def entries_between(db: AsyncSession, payee_id: str, start: datetime, end: datetime
                          ) -> list[CommissionEntry]:
    return list(await db.scalars(select(CommissionEntry).where(
        CommissionEntry.payee_id == payee_id, CommissionEntry.created_at >= start,
        CommissionEntry.created_at < end).order_by(CommissionEntry.id)))


async def balance_before(db: AsyncSession, payee_id: str, at: datetime) -> dict[str, int]:
    rows = await db.execute(select(CommissionEntry.currency,
                                   cast(func.sum(CommissionEntry.amount), BigInteger))
                            .where(CommissionEntry.payee_id == payee_id,
                                   CommissionEntry.created_at < at)
                            .group_by(CommissionEntry.currency))
    return {c: int(a or 0) for c, a in rows}


async def balances(db: AsyncSession, payee_id: str, now: datetime) -> list[dict[str, Any]]:
    stmt = (select(CommissionEntry.currency, *_buckets(now))
            .where(CommissionEntry.payee_id == payee_id)
            .group_by(CommissionEntry.currency).order_by(CommissionEntry.currency))
    return [dict(r._mapping) for r in await db.execute(stmt)]


async def statement_for(db: AsyncSession, payee_id: str, start: datetime, end: datetime
                        ) -> Statement | None:
    return await db.scalar(select(Statement).where(
        Statement.payee_id == payee_id, Statement.period_start == start,
        Statement.period_end == end))


async def statements_of(db: AsyncSession, payee_id: str) -> list[Statement]:
    return list(await db.scalars(select(Statement).where(Statement.payee_id == payee_id)
                                 .order_by(Statement.period_start.desc())))


async def link_by_hash(db: AsyncSession, token_hash: str) -> StatementLink | None:
    return await db.scalar(select(StatementLink).where(StatementLink.token_hash == token_hash))


async def payouts_of(db: AsyncSession, *, payee_id: str | None = None,
                     run_id: str | None = None, statement_id: str | None = None
                     ) -> list[CommissionPayout]:
    stmt = select(CommissionPayout).order_by(CommissionPayout.created_at.desc(),
                                             CommissionPayout.id)
    if payee_id:
        stmt = stmt.where(CommissionPayout.payee_id == payee_id)
    if run_id:
        stmt = stmt.where(CommissionPayout.run_id == run_id)
    if statement_id:
        stmt = stmt.where(CommissionPayout.statement_id == statement_id)
    return list(await db.scalars(stmt))


async def commission_costs(db: AsyncSession, *, group_by: str, start: datetime | None,
                           end: datetime | None, view: str) -> dict[tuple[Any, str], int]:
    """Commission cost (sales minus clawbacks) per report group and currency, dated like
    the revenue report (cash: by order date)."""
    column = {"video": CommissionEntry.video_id, "campaign": CommissionEntry.campaign,
              "creator": CommissionEntry.creator, "generator": CommissionEntry.generator,
              "agent": CommissionEntry.agent_id}[group_by]
    del view  # commission rows carry the order date; both views date them by it
    stmt = (select(column, CommissionEntry.currency,
                   cast(func.sum(CommissionEntry.amount), BigInteger))
            .where(CommissionEntry.order_id.isnot(None))
            .group_by(column, CommissionEntry.currency))
    if start is not None:
        stmt = stmt.where(CommissionEntry.order_at >= start)
    if end is not None:
        stmt = stmt.where(CommissionEntry.order_at < end)
    return {(key, currency): int(total or 0) for key, currency, total in await db.execute(stmt)}
