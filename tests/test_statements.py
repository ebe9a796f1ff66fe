"""The merchant API end to end on the sandbox: payees and contracts over HTTP, a real
checkout credited to a video, the payout run (dry run, then run), statements that tie to
the ledger to the cent (JSON and CSV), the shareable link (expiring, revocable, only its
hash stored), and commissions as a cost beside fees in the revenue report."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from sqlalchemy import func, select, update

from api.runtime import Runtime
from commissions.service import token_hash
from models import CommissionEntry, LedgerEntry, StatementLink
from models.base import utc_now
from tests.conftest import US_ADDRESS, Agent

MERCHANT = {"Authorization": "Bearer merchant-key"}


async def _post(seller: Agent, path: str, body: dict, key: str) -> dict:
    resp = await seller.http.post(path, json=body,
                                  headers={**MERCHANT, "Idempotency-Key": key})
    assert resp.status_code in (200, 201), resp.text
    return resp.json()


async def _get(seller: Agent, path: str) -> dict:
    resp = await seller.http.get(path, headers=MERCHANT)
    assert resp.status_code == 200, resp.text
    return resp.json()


async def _buy(seller: Agent, video: str, quantity: int) -> dict:
    session = await seller.create(line_items=[{"id": "item_123", "quantity": quantity}],
                                  fulfillment_details={"address": US_ADDRESS},
                                  metadata={"video_id": video})
    assert session.status_code == 201, session.text
    done = await seller.complete(session.json()["id"])
    assert done.status_code == 200, done.text
    return done.json()["order"]


async def test_statement_api_ties_to_the_ledger(seller: Agent,
                                                merchant_runtime: Runtime) -> None:
    rt = merchant_runtime
    await _post(seller, "/videos", {"id": "vid-1", "products": [{"product_id": "spec-items"}]},
                "v1")
    await _post(seller, "/payees", {"id": "ava", "name": "Ava", "kind": "creator",
                                    "connect_account": "acct_1Ava", "country": "US",
                                    "currency": "usd"}, "p1")
    await _post(seller, "/payees", {"id": "cam", "name": "Cam", "kind": "likeness",
                                    "country": "FR", "currency": "usd"}, "p2")
    bad = await seller.http.post("/commission-contracts", headers={
        **MERCHANT, "Idempotency-Key": "bad"}, json={
        "name": "x", "scope": "video", "scope_value": "vid-1", "rate_bps": 1000,
        "effective_from": "2020-01-01T00:00:00Z", "payees": [{"payee_id": "nobody"}]})
    assert bad.status_code == 400
    assert bad.json()["code"] == "invalid_contract"
    assert bad.json()["param"] == "$.payees[0].payee_id"
    created = await _post(seller, "/commission-contracts", {
        "name": "Ava + cameo", "scope": "video", "scope_value": "vid-1", "rate_bps": 1250,
        "return_window_days": 0, "effective_from": "2020-01-01T00:00:00Z",
        "payees": [{"payee_id": "ava", "weight": 2}, {"payee_id": "cam", "weight": 1}]},
        "c1")
    assert created["model"] == "last_touch"  # the finance default
    orders = [await _buy(seller, "vid-1", q) for q in (3, 7)]
    refund = await seller.http.post(f"/orders/{orders[1]['id']}/refunds", json={
        "amount": 333}, headers={**MERCHANT, "Idempotency-Key": "r1"})
    assert refund.status_code in (200, 201), refund.text

    dry = await _post(seller, "/payout-runs", {"dry_run": True, "minimum_amount": 1}, "d1")
    assert {(i["payee_id"], i["action"], i["reason"]) for i in dry["items"]} == {
        ("ava", "pay", None), ("cam", "skip", "no_connect_account")}
    paid = await _post(seller, "/payout-runs", {"dry_run": False, "minimum_amount": 1,
                                                "run_id": "nov"}, "r-nov")
    ava_paid = next(i for i in paid["items"] if i["payee_id"] == "ava")
    assert ava_paid["action"] == "paid"
    run = await _get(seller, "/payout-runs/nov")
    assert [p["payee_id"] for p in run["payouts"]] == ["ava"]

    start = (utc_now() - timedelta(days=1)).isoformat()
    end = (utc_now() + timedelta(days=1)).isoformat()
    async with rt.sessionmaker() as db:
        base = await db.scalar(select(func.sum(LedgerEntry.commissionable)).where(
            LedgerEntry.model == "last_touch", LedgerEntry.kind == "sale"))
        reversed_base = await db.scalar(select(func.sum(LedgerEntry.commissionable)).where(
            LedgerEntry.model == "last_touch", LedgerEntry.kind == "refund"))
        ledger_total = await db.scalar(select(func.sum(CommissionEntry.amount)).where(
            CommissionEntry.payee_id == "ava"))
    for who in ("ava", "cam"):
        statement = await seller.http.get(f"/payees/{who}/statement", params={
            "from": start, "to": end}, headers=MERCHANT)
        body = statement.json()
        (totals,) = body["totals"]
        assert totals["closing_balance"] == sum(line["amount"] for line in body["lines"])
        assert totals["sales"] == sum(line["amount"] for line in body["lines"]
                                      if line["kind"] == "sale")
        if who == "ava":
            assert totals["closing_balance"] == ledger_total
            assert totals["payouts"] == -ava_paid["amount"]
    ava = (await seller.http.get("/payees/ava/statement", params={
        "from": start, "to": end}, headers=MERCHANT)).json()["totals"][0]
    cam = (await seller.http.get("/payees/cam/statement", params={
        "from": start, "to": end}, headers=MERCHANT)).json()["totals"][0]
    # Both orders' commissions (12.5 % of each sale's base, split 2 : 1) tie to the
    # attribution ledger's commissionable base, and the refund's clawback to its rows.
    assert ava["sales"] + cam["sales"] == sum(
        round_half_up(b * 1250) for b in await _sale_bases(rt))
    assert base
    assert reversed_base
    assert ava["clawbacks"] + cam["clawbacks"] < 0

    csv_resp = await seller.http.get("/payees/ava/statement", params={
        "from": start, "to": end, "format": "csv"}, headers=MERCHANT)
    rows = list(csv.reader(io.StringIO(csv_resp.text)))
    assert rows[0][:3] == ["entry_id", "date", "kind"]
    closing = next(r for r in rows if r[2] == "closing_balance")
    assert int(closing[14]) == ava["closing_balance"]

    # The statement the payout linked, shared with the payee.
    statement_id = run["payouts"][0]["statement_id"]
    link = await _post(seller, f"/statements/{statement_id}/links", {"expires_in_days": 7},
                       "l1")
    token = link["url"].rsplit("/", 1)[1]
    assert link["url"].startswith("https://shop.test/statements/shared/")
    async with rt.sessionmaker() as db:
        stored = await db.get(StatementLink, link["id"])
        assert stored is not None
        assert stored.token_hash == token_hash(token)
        assert token not in stored.token_hash
    page = await seller.http.get(f"/statements/shared/{token}")
    assert page.status_code == 200
    assert "Ava" in page.text
    assert page.headers["referrer-policy"] == "no-referrer"
    shared = (await seller.http.get(f"/statements/shared/{token}?format=json")).json()
    assert shared["status"] == "paid"
    assert "connect_account" not in shared["payee"]
    assert (await seller.http.get("/statements/shared/" + "x" * 43)).status_code == 404
    await _post(seller, f"/statements/{statement_id}/links/{link['id']}/revoke", {}, "rv")
    assert (await seller.http.get(f"/statements/shared/{token}")).status_code == 404
    other = await _post(seller, f"/statements/{statement_id}/links", {}, "l2")
    other_token = other["url"].rsplit("/", 1)[1]
    async with rt.sessionmaker() as db, db.begin():  # time passes: the link expires
        await db.execute(update(StatementLink).where(StatementLink.id == other["id"])
                         .values(expires_at=utc_now() - timedelta(seconds=1)))
    assert (await seller.http.get(f"/statements/shared/{other_token}")).status_code == 404

    # Revenue report: commissions beside fees, net after both.
    report = await _get(seller, "/finance/revenue?group_by=video")
    row = next(r for r in report["rows"] if r["key"] == "vid-1")
    assert row["commissions"] == ava["sales"] + cam["sales"] + ava["clawbacks"] + \
        cam["clawbacks"]
    assert row["net_after_commissions"] == row["net"] - row["commissions"]
    assert report["totals"]["commissions"] == row["commissions"]
    liabilities = await _get(seller, "/finance/liabilities?group_by=payee")
    got = {r["key"]: (r["locked"], r["paid"], r["owed"]) for r in liabilities["rows"]}
    assert got["ava"] == (0, ava_paid["amount"], ava["closing_balance"])
    assert got["cam"][2] == cam["closing_balance"] == got["cam"][0]
    by_video = await _get(seller, "/finance/liabilities?group_by=video")
    (video,) = by_video["rows"]
    assert video["key"] == "vid-1"
    assert video["earned"] == row["commissions"]
    assert video["paid"] + video["owed"] == video["earned"]
    assert video["paid"] == ava_paid["amount"]


def round_half_up(numerator: int) -> int:
    quotient, remainder = divmod(numerator, 10_000)
    return quotient + (1 if remainder * 2 >= 10_000 else 0)


async def _sale_bases(rt: Runtime) -> list[int]:
    async with rt.sessionmaker() as db:
        return [int(b) for b in await db.scalars(select(LedgerEntry.commissionable).where(
            LedgerEntry.model == "last_touch", LedgerEntry.kind == "sale",
            LedgerEntry.video_id == "vid-1"))]
