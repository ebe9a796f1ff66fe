from __future__ import annotations

from models.errors import InvalidRequest, NotFound


class PayeeNotFound(NotFound):
    code = "payee_not_found"

    def __init__(self, payee_id: str) -> None:
        super().__init__(f"Payee {payee_id!r} does not exist.")


class ContractNotFound(NotFound):
    code = "contract_not_found"

    def __init__(self, contract_id: str) -> None:
        super().__init__(f"Contract {contract_id!r} does not exist.")


class StatementNotFound(NotFound):
    code = "statement_not_found"

    def __init__(self, what: str = "That statement does not exist.") -> None:
        super().__init__(what)


class PayoutRunNotFound(NotFound):
    code = "payout_run_not_found"

    def __init__(self, run_id: str) -> None:
        super().__init__(f"Payout run {run_id!r} does not exist.")


class InvalidContract(InvalidRequest):
    code = "invalid_contract"


class InvalidPeriod(InvalidRequest):
    code = "invalid_period"

