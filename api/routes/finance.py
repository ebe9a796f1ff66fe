"""Finance: attributed revenue from the ledger, by video / campaign / creator / generator
/ agent, for a model and a date range, in cash or accrual view; JSON or CSV."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from starlette.responses import Response

from api.deps import MerchantCallDep
from api.exports import ReportDatetime, reconciliation_csv, revenue_csv, revenue_totals
from attribution import repository
from attribution.rules import MODELS

router = APIRouter(prefix="/finance", tags=["merchant: finance"])


@router.get("/revenue", response_class=Response, operation_id="attributedRevenue")
async def attributed_revenue(
    call: MerchantCallDep,
    group_by: Annotated[Literal["video", "campaign", "creator", "generator", "agent"],
                        Query()] = "video",
    model: Annotated[Literal["last_touch", "first_touch", "linear", "position_based"],
                     Query()] = "last_touch",
    view: Annotated[Literal["cash", "accrual"], Query()] = "cash",
    start: Annotated[ReportDatetime | None, Query(alias="from")] = None,
    end: Annotated[ReportDatetime | None, Query(alias="to")] = None,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> Response:
    assert model in MODELS

    async def handler(db: Any) -> dict[str, Any]:
        rows = await repository.revenue(db, group_by=group_by, model=model,
                                        start=start, end=end, view=view)
        totals = revenue_totals(rows)
        return {"group_by": group_by, "model": model, "view": view,
                "from": _iso(start), "to": _iso(end), "rows": rows, "totals": totals}

    if format == "json":
        return await call.read(handler)
    async with call.runtime.read_sessionmaker() as db:
        report = await handler(db)
    return revenue_csv(group_by, model, report["rows"])


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None




@router.get("/reconciliation", response_class=Response, operation_id="payoutReconciliation")
async def payout_reconciliation(
    call: MerchantCallDep,
    start: Annotated[ReportDatetime, Query(alias="from")],
    end: Annotated[ReportDatetime, Query(alias="to")],
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> Response:
    """Per payout: settled vs expected, fees, refunds, disputes, and every item matched to
    our orders, refunds and disputes (unmatched ones on either side listed)."""
    from payments.reconciliation import reconcile

    provider = call.runtime.provider
    if format == "json":
        return await call.read(lambda db: reconcile(db, provider, start, end))
    async with call.runtime.read_sessionmaker() as db:
        report = await reconcile(db, provider, start, end)
    return reconciliation_csv(report)
