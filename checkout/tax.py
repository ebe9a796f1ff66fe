"""Tax providers. The rate table is built in; Stripe Tax can implement the same protocol."""

from __future__ import annotations

from typing import Protocol

from checkout.pricing import TaxRequest, TaxResult, rate_table_tax
from checkout.profile import MerchantProfile


class TaxProvider(Protocol):
    async def calculate(self, request: TaxRequest) -> TaxResult: ...


class RateTableTaxProvider:
    def __init__(self, profile: MerchantProfile) -> None:
        self._profile = profile

    async def calculate(self, request: TaxRequest) -> TaxResult:
        return rate_table_tax(request, self._profile)
