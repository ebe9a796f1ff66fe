"""Finance: attributed revenue from the ledger, by video / campaign / creator / generator
/ agent, for a model and a date range, in cash or accrual view; JSON or CSV."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import AwareDatetime
from starlette.responses import Response

from api.deps import MerchantCallDep
from attribution import repository
from attribution.rules import MODELS

router = APIRouter(prefix="/finance", tags=["merchant: finance"])
COLUMNS = ("key", "currency", "orders", "gross", "discount", "tax", "shipping",
           "commissionable", "fee", "net")


@router.get("/revenue", response_class=Response, operation_id="attributedRevenue")
async def attributed_revenue(
    call: MerchantCallDep,
    group_by: Annotated[Literal["video", "campaign", "creator", "generator", "agent"],
                        Query()] = "video",
    model: Annotated[Literal["last_touch", "first_touch", "linear", "position_based"],
                     Query()] = "last_touch",
    view: Annotated[Literal["cash", "accrual"], Query()] = "cash",
    start: Annotated[AwareDatetime | None, Query(alias="from")] = None,
    end: Annotated[AwareDatetime | None, Query(alias="to")] = None,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> Response:
    assert model in MODELS

    async def handler(db: Any) -> dict[str, Any]:
        rows = await repository.revenue(db, group_by=group_by, model=model,
                                        start=start, end=end, view=view)
        totals = {c: sum(int(str(r[c] or 0)) for r in rows) for c in COLUMNS[2:]}
        return {"group_by": group_by, "model": model, "view": view,
                "from": _iso(start), "to": _iso(end), "rows": rows, "totals": totals}

    if format == "json":
        return await call.read(handler)
    async with call.runtime.read_sessionmaker() as db:
        report = await handler(db)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([group_by if c == "key" else c for c in COLUMNS])
    for row in report["rows"]:
        writer.writerow(["" if row[c] is None else row[c] for c in COLUMNS])
    return Response(buffer.getvalue(), media_type="text/csv", headers={
        "Content-Disposition": f'attachment; filename="revenue-by-{group_by}-{model}.csv"'})


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None




@router.get("/reconciliation", response_class=Response, operation_id="payoutReconciliation")
async def payout_reconciliation(
    call: MerchantCallDep,
    start: Annotated[AwareDatetime, Query(alias="from")],
    end: Annotated[AwareDatetime, Query(alias="to")],
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
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["payout_id", "balance_transaction", "category", "amount", "fee", "net",
                     "expected", "ours", "status"])
    for payout in report["payouts"]:
        for item in payout["items"]:
            writer.writerow([payout["payout_id"], item["balance_transaction"], item["category"],
                             item["amount"], item["fee"], item["net"], item["expected"],
                             item["ours"], item["status"]])
    for order in report["unmatched_ours"]:
        writer.writerow(["", "", "charge", "", "", "", order["amount"], order["order_id"],
                         "missing_at_provider"])
    return Response(buffer.getvalue(), media_type="text/csv", headers={
        "Content-Disposition": 'attachment; filename="payout-reconciliation.csv"'})
