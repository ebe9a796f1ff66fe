"""Merchant API: payees, commission contracts, statements (JSON/CSV, shareable links),
payout runs and liabilities. Thin: the work is in ``commissions``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Path, Query
from pydantic import AwareDatetime
from starlette.responses import Response

from api.deps import MerchantCallDep
from api.exports import csv_response
from commissions import service
from commissions.errors import InvalidPeriod, PayoutRunNotFound
from commissions.payouts import run_json, run_payouts
from commissions.schemas import ContractIn, LinkIn, PayeeIn, PayoutRunIn, StatementIn

router = APIRouter(tags=["merchant: commissions"])
Id = Annotated[str, Path(max_length=64)]
ERROR = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
         "description": "ACP flat error"}


@router.post("/payees", status_code=201, response_class=Response, responses={400: ERROR},
             operation_id="upsertPayee")
async def upsert_payee(body: PayeeIn, call: MerchantCallDep) -> Response:
    """Create a payee, or replace one by ``id`` (Connect account, country, currency)."""
    async def handler(db: Any) -> dict[str, Any]:
        payee, _ = await service.upsert_payee(db, body)
        return payee
    return await call.write(handler, status_code=201, atomic=True)


@router.get("/payees", response_class=Response, operation_id="listPayees")
async def list_payees(call: MerchantCallDep) -> Response:
    async def handler(db: Any) -> dict[str, Any]:
        return {"data": await service.list_payees(db)}
    return await call.read(handler)


@router.get("/payees/{payee_id}", response_class=Response, responses={404: ERROR},
            operation_id="getPayee")
async def get_payee(payee_id: Id, call: MerchantCallDep) -> Response:
    async def handler(db: Any) -> dict[str, Any]:
        payee = service.payee_json(await service.get_payee(db, payee_id))
        from commissions import repository
        from models.base import utc_now

        payee["balances"] = await repository.balances(db, payee_id, utc_now())
        payee["statements"] = await service.statements_of(db, payee_id)
        return payee
    return await call.read(handler)


@router.post("/commission-contracts", status_code=201, response_class=Response,
             responses={400: ERROR}, operation_id="createCommissionContract")
async def create_contract(body: ContractIn, call: MerchantCallDep) -> Response:
    policy = call.runtime.commission_policy
    return await call.write(lambda db: service.create_contract(db, body, policy),
                            status_code=201, atomic=True)


@router.get("/commission-contracts", response_class=Response,
            operation_id="listCommissionContracts")
async def list_contracts(call: MerchantCallDep) -> Response:
    async def handler(db: Any) -> dict[str, Any]:
        return {"data": await service.list_contracts(db)}
    return await call.read(handler)


@router.post("/commission-contracts/{contract_id}/end", response_class=Response,
             responses={400: ERROR, 404: ERROR}, operation_id="endCommissionContract")
async def end_contract(contract_id: Id, call: MerchantCallDep,
                       at: Annotated[AwareDatetime, Query()]) -> Response:
    return await call.write(lambda db: service.end_contract(db, contract_id, at), atomic=True)


@router.get("/payees/{payee_id}/statement", response_class=Response,
            responses={400: ERROR, 404: ERROR}, operation_id="payeeStatement")
async def payee_statement(
    payee_id: Id, call: MerchantCallDep,
    start: Annotated[AwareDatetime, Query(alias="from")],
    end: Annotated[AwareDatetime, Query(alias="to")],
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> Response:
    """Every sale, clawback and payout line of the period, with balances tying to the
    ledger (ad hoc; ``POST /statements`` keeps one for sharing and payouts)."""
    if end <= start:
        raise InvalidPeriod("'to' must be after 'from'.", param="to")

    async def handler(db: Any) -> dict[str, Any]:
        return await service.statement_json(db, payee_id, start, end)
    if format == "json":
        return await call.read(handler)
    async with call.runtime.read_sessionmaker() as db:
        statement = await handler(db)
    return csv_response(f"statement-{payee_id}.csv", service.STATEMENT_HEADER,
                        service.statement_rows(statement))


@router.post("/statements", status_code=201, response_class=Response,
             responses={400: ERROR, 404: ERROR}, operation_id="createStatement")
async def create_statement(body: StatementIn, call: MerchantCallDep) -> Response:
    async def handler(db: Any) -> dict[str, Any]:
        statement = await service.ensure_statement(db, body.payee_id, body.period_start,
                                                   body.period_end)
        return await service.get_statement(db, statement.id)
    return await call.write(handler, status_code=201, atomic=True)


@router.get("/statements/{statement_id}", response_class=Response, responses={404: ERROR},
            operation_id="getStatement")
async def get_statement(statement_id: Id, call: MerchantCallDep,
                        format: Annotated[Literal["json", "csv"], Query()] = "json"
                        ) -> Response:
    async with call.runtime.read_sessionmaker() as db:
        statement = await service.get_statement(db, statement_id)
        statement["links"] = await service.links_of(db, statement_id)
    if format == "csv":
        return csv_response(f"statement-{statement_id}.csv", service.STATEMENT_HEADER,
                            service.statement_rows(statement))
    return Response(orjson.dumps(statement), media_type="application/json")


@router.post("/statements/{statement_id}/links", status_code=201, response_class=Response,
             responses={404: ERROR}, operation_id="createStatementLink")
async def create_link(statement_id: Id, body: LinkIn, call: MerchantCallDep) -> Response:
    """A read-only link for the payee; the URL (with its token) is shown only here."""
    base = call.runtime.settings.public_base_url.rstrip("/")

    async def handler(db: Any) -> dict[str, Any]:
        link, token = await service.create_link(db, statement_id, body.expires_in_days)
        return {**link, "url": f"{base}/statements/shared/{token}"}
    return await call.write(handler, status_code=201, atomic=True)


@router.post("/statements/{statement_id}/links/{link_id}/revoke", response_class=Response,
             responses={404: ERROR}, operation_id="revokeStatementLink")
async def revoke_link(statement_id: Id, link_id: Id, call: MerchantCallDep) -> Response:
    return await call.write(lambda db: service.revoke_link(db, statement_id, link_id),
                            atomic=True)


@router.post("/payout-runs", response_class=Response, responses={400: ERROR},
             operation_id="runPayouts")
async def create_payout_run(body: PayoutRunIn, call: MerchantCallDep) -> Response:
    """``dry_run`` (the default) shows who would be paid; ``dry_run: false`` pays each
    payee's locked balance by a Connect transfer, once (safe to retry)."""
    runtime = call.runtime
    minimum = body.minimum_amount or runtime.commission_policy.minimum_payout

    async def handler(_db: Any) -> dict[str, Any]:
        return await run_payouts(runtime.sessionmaker, runtime.transfers, minimum=minimum,
                                 dry_run=body.dry_run, run_id=body.run_id, as_of=body.as_of)
    return await call.write(handler)


@router.get("/payout-runs/{run_id}", response_class=Response, responses={404: ERROR},
            operation_id="getPayoutRun")
async def get_payout_run(run_id: Id, call: MerchantCallDep) -> Response:
    async def handler(db: Any) -> dict[str, Any]:
        found = await run_json(db, run_id)
        if found is None:
            raise PayoutRunNotFound(run_id)
        return found
    return await call.read(handler)


@router.get("/finance/liabilities", response_class=Response, operation_id="liabilities")
async def liabilities(
    call: MerchantCallDep,
    group_by: Annotated[Literal["payee", "video"], Query()] = "payee",
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> Response:
    """What we owe creators and rights holders: pending (in the return window), locked
    (payable now), in payout, paid; per payee or per video."""
    if format == "json":
        return await call.read(lambda db: service.liabilities(db, group_by))
    async with call.runtime.read_sessionmaker() as db:
        report = await service.liabilities(db, group_by)
    columns = ("key", "currency", "earned", "pending", "locked", "in_payout", "paid", "owed")
    return csv_response(f"liabilities-by-{group_by}.csv", [group_by, *columns[1:]],
                        [[r[c] for c in columns] for r in report["rows"]])

