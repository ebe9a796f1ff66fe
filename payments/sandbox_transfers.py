"""Offline Connect transfers for the sandbox provider (the demo and tests without Stripe).

Like Stripe: one transfer per idempotency key, the same key with other parameters is an
error (nothing is sent twice), and the destination must be a connected account id.
"""

from __future__ import annotations

import hashlib
import json

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import SandboxTransfer
from models.base import new_id
from payments.provider import PaymentUnavailable
from payments.transfers import TransferRejected, TransferRequest, TransferResult


def _params_hash(request: TransferRequest) -> str:
    params = {"amount": request.amount, "currency": request.currency,
              "destination": request.destination, "transfer_group": request.transfer_group,
              "metadata": request.metadata, "description": request.description}
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()


def _result(row: SandboxTransfer) -> TransferResult:
    return TransferResult(row.id, row.amount, row.currency, row.destination, 0,
                          dict(row.transfer_metadata or {}))


class SandboxTransfers:
    name = "sandbox"

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker

    async def create(self, request: TransferRequest) -> TransferResult:
        if not request.destination.startswith("acct_"):
            raise TransferRejected("resource_missing",
                                   f"No such destination: {request.destination!r}")
        if request.amount <= 0:
            raise TransferRejected("parameter_invalid_integer", "amount must be positive")
        digest = _params_hash(request)
        async with self._sessionmaker() as db, db.begin():
            existing = await db.scalar(select(SandboxTransfer).where(
                SandboxTransfer.idempotency_key == request.idempotency_key))
            if existing is not None:
                if existing.params_hash != digest:
                    raise PaymentUnavailable("sandbox transfers: idempotency error")
                return _result(existing)
            row = SandboxTransfer(
                id=new_id("tr_sbx"), idempotency_key=request.idempotency_key,
                params_hash=digest, amount=request.amount, currency=request.currency,
                destination=request.destination, transfer_group=request.transfer_group,
                transfer_metadata=dict(request.metadata))
            db.add(row)
            try:
                await db.flush()
            except IntegrityError as exc:  # a concurrent identical request won the insert
                raise PaymentUnavailable("concurrent transfer with the same key") from exc
            return _result(row)

    async def find(self, transfer_group: str, payout_id: str) -> TransferResult | None:
        async with self._sessionmaker() as db:
            rows = await db.scalars(select(SandboxTransfer).where(
                SandboxTransfer.transfer_group == transfer_group))
            for row in rows:
                if (row.transfer_metadata or {}).get("reelcart_payout_id") == payout_id:
                    return _result(row)
        return None
