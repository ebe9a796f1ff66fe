"""CSV exports and report totals shared by the finance API and the dashboard."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime
from starlette.responses import Response

# Report ranges: wide enough for any real query, narrow enough that shifting a bound by a
# day or converting its time zone never leaves Python's datetime range (year 1 → 500).
REPORT_MIN = datetime(1970, 1, 1, tzinfo=UTC)
REPORT_MAX = datetime(9000, 1, 1, tzinfo=UTC)


def in_report_range(value: datetime) -> bool:
    return REPORT_MIN <= value <= REPORT_MAX


def _report_bound(value: datetime) -> datetime:
    if not in_report_range(value):
        raise ValueError("date must be between 1970-01-01 and 9000-01-01")
    return value


ReportDatetime = Annotated[AwareDatetime, AfterValidator(_report_bound)]
"""A report's ``from``/``to``: aware, and within ``REPORT_MIN``..``REPORT_MAX``."""


REVENUE_COLUMNS = ("key", "currency", "orders", "gross", "discount", "tax", "shipping",
                   "commissionable", "fee", "net", "commissions", "net_after_commissions")
RECONCILIATION_HEADER = ("payout_id", "payout_status", "balance_transaction", "category",
                         "amount", "fee", "net", "expected", "ours", "status")


# OWASP CSV injection: a cell a spreadsheet would read as a formula (or DDE) starts with one
# of these; the full-width forms are read as formulas by some spreadsheets too.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d",
                  "\uff20")
_PLAIN_NUMBER = re.compile(r"-?\d+(\.\d+)?")


def safe_cell(value: Any) -> Any:
    """A cell as a spreadsheet will read it: strings that would start a formula get a
    leading ``'`` (shown as text, never evaluated); numbers are left alone, including
    negative amounts written as text."""
    if not isinstance(value, str) or not value.startswith(_FORMULA_START):
        return value
    if _PLAIN_NUMBER.fullmatch(value):
        return value
    return "'" + value


def csv_response(filename: str, header: Sequence[str], rows: Iterable[Sequence[Any]]
                 ) -> Response:
    """Every CSV we serve goes through here, so every cell is neutralised (``safe_cell``)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_MINIMAL)
    writer.writerow([safe_cell(c) for c in header])
    writer.writerows([safe_cell(c) for c in row] for row in rows)
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
    """One row per balance transaction, with its payout's id and the provider's payout
    status (``pending``/``in_transit`` until it arrives, then ``paid``); then our orders
    missing at the provider (no payout)."""
    rows = [[p["payout_id"], p["payout_status"], i["balance_transaction"], i["category"],
             i["amount"], i["fee"], i["net"], i["expected"], i["ours"], i["status"]]
            for p in report["payouts"] for i in p["items"]]
    rows += [["", "", "", "charge", "", "", "", u["amount"], u["order_id"],
              "missing_at_provider"] for u in report["unmatched_ours"]]
    return csv_response("payout-reconciliation.csv", RECONCILIATION_HEADER, rows)
