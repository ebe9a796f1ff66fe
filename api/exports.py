"""CSV exports and report totals shared by the finance API and the dashboard."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

from starlette.responses import Response

REVENUE_COLUMNS = ("key", "currency", "orders", "gross", "discount", "tax", "shipping",
                   "commissionable", "fee", "net", "commissions", "net_after_commissions")
RECONCILIATION_HEADER = ("payout_id", "balance_transaction", "category", "amount", "fee",
                         "net", "expected", "ours", "status")


def csv_response(filename: str, header: Sequence[str], rows: Iterable[Sequence[Any]]
                 ) -> Response:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return Response(buffer.getvalue(), media_type="text/csv", headers={
        "Content-Disposition": f'attachment; filename="{filename}"',
        "Cache-Control": "no-store"})


def revenue_totals(rows: Iterable[dict[str, Any]]) -> dict[str, int]:
    listed = list(rows)
    return {c: sum(int(str(r[c] or 0)) for r in listed) for c in REVENUE_COLUMNS[2:]}


def revenue_csv(group_by: str, model: str, rows: Iterable[dict[str, Any]]) -> Response:
    return csv_response(f"revenue-by-{group_by}-{model}.csv",
                        [group_by, *REVENUE_COLUMNS[1:]],
                        [[row[c] for c in REVENUE_COLUMNS] for row in rows])


def reconciliation_csv(report: dict[str, Any]) -> Response:
    rows = [[p["payout_id"], i["balance_transaction"], i["category"], i["amount"], i["fee"],
             i["net"], i["expected"], i["ours"], i["status"]]
            for p in report["payouts"] for i in p["items"]]
    rows += [["", "", "charge", "", "", "", u["amount"], u["order_id"], "missing_at_provider"]
             for u in report["unmatched_ours"]]
    return csv_response("payout-reconciliation.csv", RECONCILIATION_HEADER, rows)
