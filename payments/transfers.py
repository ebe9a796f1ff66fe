"""Stripe Connect transfers: pay a connected account from the platform balance.

``POST /v1/transfers`` with ``amount``, ``currency``, ``destination`` (``acct_…``),
``transfer_group`` and ``metadata``, under an ``Idempotency-Key``; the same key and the same
parameters return the same transfer, so a retry after a lost answer pays once. The
sandbox twin (``payments.sandbox_transfers``) makes the same promises offline.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from payments.stripe_client import StripeGateway, StripeRequestRejected


@dataclass(frozen=True, slots=True)
class TransferRequest:
    amount: int
    currency: str
    destination: str
    transfer_group: str
    idempotency_key: str
    metadata: dict[str, str] = field(default_factory=dict)
    description: str | None = None


@dataclass(frozen=True, slots=True)
class TransferResult:
    id: str
    amount: int
    currency: str
    destination: str
    amount_reversed: int = 0
    metadata: dict[str, str] = field(default_factory=dict)


class TransferRejected(Exception):
    """The provider refused the transfer (no such account, insufficient balance …)."""

    def __init__(self, code: str | None, message: str) -> None:
        super().__init__(message)
        self.code = code


class TransferClient(Protocol):
    name: str

    async def create(self, request: TransferRequest) -> TransferResult: ...

    async def find(self, transfer_group: str, payout_id: str) -> TransferResult | None:
        """The transfer made for our payout, if any (an answer lost to a crash)."""
        ...


def transfer_result(obj: Any) -> TransferResult:
    data = obj if isinstance(obj, dict) else obj.to_dict()
    destination = data.get("destination")
    if isinstance(destination, dict):
        destination = destination.get("id")
    return TransferResult(
        id=str(data["id"]), amount=int(data["amount"]), currency=str(data["currency"]),
        destination=str(destination), amount_reversed=int(data.get("amount_reversed") or 0),
        metadata={str(k): str(v) for k, v in (data.get("metadata") or {}).items()})


class StripeTransfers:
    name = "stripe"

    def __init__(self, gateway: StripeGateway) -> None:
        self._gateway = gateway

    async def create(self, request: TransferRequest) -> TransferResult:
        params: dict[str, Any] = {
            "amount": request.amount, "currency": request.currency,
            "destination": request.destination, "transfer_group": request.transfer_group,
            "metadata": request.metadata}
        if request.description:
            params["description"] = request.description
        client = self._gateway.client
        try:
            created = await self._gateway._call("create_transfer", client.v1.transfers.create_async(
                params, {"idempotency_key": request.idempotency_key}))  # type: ignore[arg-type]
        except StripeRequestRejected as exc:
            raise TransferRejected(exc.code, str(exc)) from None
        return transfer_result(created)

    async def find(self, transfer_group: str, payout_id: str) -> TransferResult | None:
        client = self._gateway.client
        page = await self._gateway._call("list_transfers", client.v1.transfers.list_async(
            {"transfer_group": transfer_group, "limit": 100}))
        async for transfer in page.auto_paging_iter():
            found = transfer_result(transfer)
            if found.metadata.get("reelcart_payout_id") == payout_id:
                return found
        return None
