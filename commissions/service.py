"""Payees, contracts, statements and their shareable links. Services only flush."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from attribution.rules import MODELS
from commissions import repository
from commissions.errors import (
    ContractNotFound,
    InvalidContract,
    InvalidPeriod,
    PayeeNotFound,
    StatementNotFound,
)
from commissions.rules import Basis, EntryKind
from commissions.schemas import ContractIn, PayeeIn, iso
from models import (
    CommissionContract,
    CommissionEntry,
    CommissionPayout,
    ContractPayee,
    Payee,
    Statement,
    StatementLink,
)
from models.base import new_id, utc_now
from models.errors import Conflict
from models.statuses import PayoutStatus, StatementStatus

Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class CommissionPolicy:
    default_model: str = "last_touch"
    return_window_days: int = 30
    minimum_payout: int = 1000
    link_ttl_days: int = 30


# ------------------------------------------------------------------ payees


async def _insert_once(db: AsyncSession, row: object, conflict: str) -> None:
    """Insert in a savepoint: a concurrent insert of the same id is a 409, not a 500."""
    try:
        async with db.begin_nested():
            db.add(row)
            await db.flush()
    except IntegrityError:
        raise Conflict(conflict, code="already_exists") from None


def payee_json(p: Payee) -> Json:
    return {"id": p.id, "name": p.name, "kind": p.kind, "email": p.email,
            "connect_account": p.connect_account, "country": p.country,
            "currency": p.currency, "created_at": iso(p.created_at)}


async def upsert_payee(db: AsyncSession, data: PayeeIn) -> tuple[Json, bool]:
    payee = await db.get(Payee, data.id, with_for_update=True) if data.id else None
    created = payee is None
    now = utc_now()
    fields = data.model_dump(exclude={"id"})
    fields["kind"] = data.kind.value
    if payee is None:
        payee = Payee(id=data.id or new_id("pye"), created_at=now, updated_at=now, **fields)
        await _insert_once(db, payee, f"Payee {payee.id!r} was created concurrently; retry.")
    else:
        for key, value in fields.items():
            setattr(payee, key, value)
        payee.updated_at = now
    await db.flush()
    return payee_json(payee), created


async def get_payee(db: AsyncSession, payee_id: str) -> Payee:
    payee = await db.get(Payee, payee_id)
    if payee is None:
        raise PayeeNotFound(payee_id)
    return payee


async def list_payees(db: AsyncSession) -> list[Json]:
    return [payee_json(p) for p in await db.scalars(select(Payee).order_by(Payee.name,
                                                                            Payee.id))]


# ------------------------------------------------------------------ contracts


def contract_json(c: CommissionContract, payees: list[tuple[str, int]]) -> Json:
    return {"id": c.id, "name": c.name, "scope": c.scope_type, "scope_value": c.scope_value,
            "basis": c.basis, "rate_bps": c.rate_bps, "fixed_amount": c.fixed_amount,
            "currency": c.currency, "model": c.model, "remix_share_bps": c.remix_share_bps,
            "return_window_days": c.return_window_days,
            "effective_from": iso(c.effective_from), "effective_to": iso(c.effective_to),
            "payees": [{"payee_id": p, "weight": w} for p, w in sorted(payees)]}


async def create_contract(db: AsyncSession, data: ContractIn, policy: CommissionPolicy
                          ) -> Json:
    """Contracts are never edited (rows keep the terms they were computed with anyway):
    to change terms, end one (``effective_to``) and start another."""
    model = data.model or policy.default_model
    if model not in MODELS:
        raise InvalidContract(f"Unknown attribution model {model!r}.", param="$.model")
    if data.effective_to is not None and data.effective_to <= data.effective_from:
        raise InvalidContract("effective_to must be after effective_from.",
                              param="$.effective_to")
    if data.basis == Basis.percent and data.rate_bps <= 0:
        raise InvalidContract("A percent contract needs rate_bps > 0.", param="$.rate_bps")
    if data.basis == Basis.fixed_per_unit and (data.fixed_amount <= 0 or not data.currency):
        raise InvalidContract("A fixed_per_unit contract needs fixed_amount > 0 and a "
                              "currency.", param="$.fixed_amount")
    seen: set[str] = set()
    for index, split in enumerate(data.payees):
        if split.payee_id in seen:
            raise InvalidContract("A payee appears twice.", param=f"$.payees[{index}]")
        seen.add(split.payee_id)
        if await db.get(Payee, split.payee_id) is None:
            raise InvalidContract(f"Unknown payee {split.payee_id!r}.",
                                  param=f"$.payees[{index}].payee_id")
    if data.id and await db.get(CommissionContract, data.id) is not None:
        raise InvalidContract(f"Contract {data.id!r} exists; contracts are not edited.",
                              code="contract_exists", param="$.id")
    contract = CommissionContract(
        id=data.id or new_id("ctr"), name=data.name, scope_type=data.scope.value,
        scope_value=data.scope_value, basis=data.basis.value, rate_bps=data.rate_bps,
        fixed_amount=data.fixed_amount, currency=data.currency, model=model,
        remix_share_bps=data.remix_share_bps,
        return_window_days=(policy.return_window_days if data.return_window_days is None
                            else data.return_window_days),
        effective_from=data.effective_from, effective_to=data.effective_to,
        created_at=utc_now())
    await _insert_once(db, contract, f"Contract {contract.id!r} exists.")
    for split in data.payees:
        db.add(ContractPayee(contract_id=contract.id, payee_id=split.payee_id,
                             weight=split.weight))
    await db.flush()
    return contract_json(contract, [(s.payee_id, s.weight) for s in data.payees])


async def end_contract(db: AsyncSession, contract_id: str, at: datetime) -> Json:
    contract = await db.get(CommissionContract, contract_id, with_for_update=True)
    if contract is None:
        raise ContractNotFound(contract_id)
    if at <= contract.effective_from:
        raise InvalidContract("A contract ends after it starts.", param="$.effective_to")
    if contract.effective_to is None or at < contract.effective_to:
        contract.effective_to = at
    await db.flush()
    payees = (await repository.contract_payees(db, [contract.id]))[contract.id]
    return contract_json(contract, payees)


async def list_contracts(db: AsyncSession) -> list[Json]:
    contracts = list(await db.scalars(select(CommissionContract).order_by(
        CommissionContract.effective_from.desc(), CommissionContract.id)))
    payees = await repository.contract_payees(db, [c.id for c in contracts])
    return [contract_json(c, payees[c.id]) for c in contracts]


# ------------------------------------------------------------------ statements


def month_of(at: datetime) -> tuple[datetime, datetime]:
    start = datetime(at.year, at.month, 1, tzinfo=UTC)
    end = datetime(at.year + (at.month == 12), at.month % 12 + 1, 1, tzinfo=UTC)
    return start, end


async def ensure_statement(db: AsyncSession, payee_id: str, start: datetime, end: datetime
                           ) -> Statement:
    if end <= start or end - start > timedelta(days=366):
        raise InvalidPeriod("A statement covers at most a year, and ends after it starts.",
                            param="$.period_end")
    await get_payee(db, payee_id)
    statement = await repository.statement_for(db, payee_id, start, end)
    if statement is None:
        statement = Statement(id=new_id("stm"), payee_id=payee_id, period_start=start,
                              period_end=end, created_at=utc_now())
        db.add(statement)
        await db.flush()
    return statement


def _line(e: CommissionEntry) -> Json:
    return {"entry_id": e.id, "date": iso(e.created_at), "kind": e.kind, "status": e.status,
            "amount": e.amount, "currency": e.currency, "order_id": e.order_id,
            "video_id": e.video_id, "earned_on_video_id": e.earned_on_video_id,
            "contract_id": e.contract_id, "model": e.model, "basis": e.basis,
            "rate_bps": e.rate_bps, "fixed_amount": e.fixed_amount, "units": e.units,
            "base_amount": e.base_amount, "weight": e.weight, "reference": e.reference,
            "reason": e.reason, "payout_id": e.payout_id, "lock_at": iso(e.lock_at)}


async def statement_json(db: AsyncSession, payee_id: str, start: datetime, end: datetime,
                         *, statement_id: str | None = None, now: datetime | None = None
                         ) -> Json:
    """Every line of the period, with opening and closing balances per currency: the
    closing balance is the sum of every ledger row of the payee before ``end``."""
    payee = await get_payee(db, payee_id)
    entries = await repository.entries_between(db, payee_id, start, end)
    opening = await repository.balance_before(db, payee_id, start)
    currencies = sorted(set(opening) | {e.currency for e in entries}) or [payee.currency]
    totals = []
    for currency in currencies:
        mine = [e for e in entries if e.currency == currency]
        sales = sum(e.amount for e in mine if e.kind == EntryKind.sale.value)
        payouts = sum(e.amount for e in mine if e.kind == EntryKind.payout.value)
        reversals = sum(e.amount for e in mine if e.kind == EntryKind.payout_reversal.value)
        clawbacks = sum(e.amount for e in mine) - sales - payouts - reversals
        start_balance = opening.get(currency, 0)
        totals.append({"currency": currency, "opening_balance": start_balance,
                       "sales": sales, "clawbacks": clawbacks, "payouts": payouts,
                       "payout_reversals": reversals,
                       "closing_balance": start_balance + sum(e.amount for e in mine)})
    payouts_made = await repository.payouts_of(db, statement_id=statement_id) \
        if statement_id else []
    return {
        "id": statement_id, "payee": payee_json(payee),
        "period_start": iso(start), "period_end": iso(end), "totals": totals,
        "lines": [_line(e) for e in entries],
        "balances_now": await repository.balances(db, payee_id, now or utc_now()),
        "payouts": [payout_json(p) for p in payouts_made],
        "status": _statement_status(payouts_made),
    }


def _statement_status(payouts: list[CommissionPayout]) -> StatementStatus:
    if any(p.status == PayoutStatus.paid for p in payouts):
        return StatementStatus.paid
    if any(p.status == PayoutStatus.pending for p in payouts):
        return StatementStatus.payout_pending
    return StatementStatus.open


async def get_statement(db: AsyncSession, statement_id: str) -> Json:
    statement = await db.get(Statement, statement_id)
    if statement is None:
        raise StatementNotFound()
    return await statement_json(db, statement.payee_id, statement.period_start,
                                statement.period_end, statement_id=statement.id)


async def statements_of(db: AsyncSession, payee_id: str) -> list[Json]:
    out = []
    for s in await repository.statements_of(db, payee_id):
        payouts = await repository.payouts_of(db, statement_id=s.id)
        out.append({"id": s.id, "period_start": iso(s.period_start),
                    "period_end": iso(s.period_end), "status": _statement_status(payouts)})
    return out


STATEMENT_HEADER = ("entry_id", "date", "kind", "status", "order_id", "video_id",
                    "earned_on_video_id", "contract_id", "basis", "rate_bps", "fixed_amount",
                    "units", "base_amount", "weight", "amount", "currency", "reference",
                    "payout_id")


def statement_rows(statement: Json) -> list[list[Any]]:
    rows: list[list[Any]] = [[line[c] for c in STATEMENT_HEADER]
                             for line in statement["lines"]]
    for t in statement["totals"]:
        for label in ("opening_balance", "sales", "clawbacks", "payouts", "payout_reversals",
                      "closing_balance"):
            rows.append(["", "", label, "", "", "", "", "", "", "", "", "", "", "", t[label],
                         t["currency"], "", ""])
    return rows


# ------------------------------------------------------------------ shareable links


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_link(db: AsyncSession, statement_id: str, days: int) -> tuple[Json, str]:
    """A read-only link for the payee. The token is returned once; we keep its hash."""
    if await db.get(Statement, statement_id) is None:
        raise StatementNotFound()
    token = secrets.token_urlsafe(32)
    now = utc_now()
    link = StatementLink(id=new_id("sln"), statement_id=statement_id,
                         token_hash=token_hash(token), expires_at=now + timedelta(days=days),
                         created_at=now)
    db.add(link)
    await db.flush()
    return link_json(link), token


def link_json(link: StatementLink) -> Json:
    return {"id": link.id, "statement_id": link.statement_id,
            "expires_at": iso(link.expires_at), "revoked_at": iso(link.revoked_at)}


async def revoke_link(db: AsyncSession, statement_id: str, link_id: str) -> Json:
    link = await db.get(StatementLink, link_id, with_for_update=True)
    if link is None or link.statement_id != statement_id:
        raise StatementNotFound("That statement link does not exist.")
    if link.revoked_at is None:
        link.revoked_at = utc_now()
    await db.flush()
    return link_json(link)


async def links_of(db: AsyncSession, statement_id: str) -> list[Json]:
    rows = await db.scalars(select(StatementLink).where(
        StatementLink.statement_id == statement_id).order_by(StatementLink.created_at))
    return [link_json(r) for r in rows]


async def shared_statement(db: AsyncSession, token: str) -> Json:
    """The statement behind a link; one answer for unknown, expired and revoked tokens."""
    link = await repository.link_by_hash(db, token_hash(token)) if 20 <= len(token) <= 100 \
        else None
    if link is None or link.revoked_at is not None or link.expires_at <= utc_now():
        raise StatementNotFound("This statement link is unknown, expired or revoked.")
    statement = await get_statement(db, link.statement_id)
    statement["payee"].pop("email", None)
    statement["payee"].pop("connect_account", None)
    statement["link_expires_at"] = iso(link.expires_at)
    return statement


# ------------------------------------------------------------------ payouts (read side)


def payout_json(p: CommissionPayout) -> Json:
    return {"id": p.id, "run_id": p.run_id, "payee_id": p.payee_id,
            "statement_id": p.statement_id, "amount": p.amount, "currency": p.currency,
            "destination": p.destination, "status": p.status, "transfer_id": p.transfer_id,
            "amount_reversed": p.amount_reversed, "failure": p.failure,
            "created_at": iso(p.created_at), "updated_at": iso(p.updated_at)}


async def liabilities(db: AsyncSession, group_by: str, now: datetime | None = None) -> Json:
    rows = await repository.liabilities(db, group_by=group_by, now=now or utc_now())
    names: dict[str, str] = {}
    if group_by == "payee":
        names = {p.id: p.name for p in await db.scalars(select(Payee))}
    for row in rows:
        for key in ("earned", "pending", "locked", "in_payout", "paid", "owed"):
            row[key] = int(row[key] or 0)
        if group_by == "payee":
            row["name"] = names.get(row["key"])
    return {"group_by": group_by, "rows": rows}



async def with_commission_costs(db: AsyncSession, rows: list[Json], *, group_by: str,
                                start: datetime | None, end: datetime | None,
                                view: str) -> list[Json]:
    """The revenue report's rows with commissions as a cost beside fees: ``commissions``
    (earned minus clawed back, for sales in the period) and ``net_after_commissions``
    (net after fees and commissions). Groups that only carry commissions are added."""
    costs = await repository.commission_costs(db, group_by=group_by, start=start, end=end,
                                              view=view)
    seen = set()
    for row in rows:
        key = (row["key"], row["currency"])
        seen.add(key)
        row["commissions"] = costs.get(key, 0)
        row["net_after_commissions"] = int(str(row["net"] or 0)) - row["commissions"]
    for (key, currency), cost in sorted(costs.items(), key=lambda kv: (str(kv[0][0]),
                                                                       kv[0][1])):
        if (key, currency) not in seen and cost:
            rows.append({"key": key, "currency": currency, "orders": 0, "gross": 0,
                         "discount": 0, "tax": 0, "shipping": 0, "commissionable": 0,
                         "fee": 0, "net": 0, "commissions": cost,
                         "net_after_commissions": -cost})
    return rows
