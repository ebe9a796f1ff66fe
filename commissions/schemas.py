from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from attribution.rules import MODELS
from commissions.rules import Basis, Scope


class PayeeKind(StrEnum):
    creator = "creator"
    likeness = "likeness"
    rights_holder = "rights_holder"


class PayeeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(default=None, min_length=1, max_length=64,
                           pattern=r"^[A-Za-z0-9._:\-]+$")
    name: str = Field(min_length=1, max_length=200)
    kind: PayeeKind = PayeeKind.creator
    email: str | None = Field(default=None, max_length=320)
    connect_account: str | None = Field(default=None, pattern=r"^acct_[A-Za-z0-9]{1,59}$")
    country: str = Field(min_length=2, max_length=2, pattern=r"^[A-Z]{2}$")
    currency: str = Field(min_length=3, max_length=3, pattern=r"^[a-z]{3}$")


class SplitIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    payee_id: str = Field(min_length=1, max_length=64)
    weight: int = Field(default=1, ge=1, le=1_000_000)


class ContractIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(default=None, min_length=1, max_length=64,
                           pattern=r"^[A-Za-z0-9._:\-]+$")
    name: str = Field(min_length=1, max_length=200)
    scope: Scope
    scope_value: str = Field(min_length=1, max_length=200)
    basis: Basis = Basis.percent
    rate_bps: int = Field(default=0, ge=0, le=10_000, description="percent basis: 1000 = 10 %")
    fixed_amount: int = Field(default=0, ge=0, le=10**12,
                              description="fixed_per_unit basis, minor units per unit")
    currency: str | None = Field(default=None, pattern=r"^[a-z]{3}$")
    model: str | None = Field(default=None, description=f"one of {', '.join(MODELS)}; "
                              "default: the model finance reports with")
    remix_share_bps: int = Field(default=0, ge=0, le=10_000)
    return_window_days: int | None = Field(default=None, ge=0, le=3650)
    effective_from: AwareDatetime
    effective_to: AwareDatetime | None = None
    payees: list[SplitIn] = Field(min_length=1, max_length=50)


class StatementIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    payee_id: str = Field(min_length=1, max_length=64)
    period_start: AwareDatetime
    period_end: AwareDatetime


class LinkIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    expires_in_days: int = Field(default=30, ge=1, le=365)


class PayoutRunIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dry_run: bool = True
    run_id: str | None = Field(default=None, min_length=1, max_length=60,
                               pattern=r"^[A-Za-z0-9._:\-]+$")
    minimum_amount: int | None = Field(default=None, ge=1, le=10**12)
    as_of: AwareDatetime | None = None


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
