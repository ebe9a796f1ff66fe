"""The demo seeding (``reelcart payouts seed-demo``): payees, contracts, a paid and an open
statement, on the sandbox's offline transfers; a second call changes nothing."""

from __future__ import annotations

from sqlalchemy import func, select

from api.cli.server import _load_demo
from api.runtime import Runtime, database
from commissions import service
from commissions.demo import seed
from models import CommissionContract, CommissionEntry, Payee, Statement
from tests.conftest import make_settings


async def test_demo_seed_has_a_paid_and_an_open_statement(runtime: Runtime) -> None:
    message = await seed(runtime)
    assert "paid 2 payees" in message
    assert await seed(runtime) == "demo commissions already seeded"
    async with runtime.sessionmaker() as db:
        assert await db.scalar(select(func.count()).select_from(Payee)) == 3
        assert await db.scalar(select(func.count()).select_from(CommissionContract)) == 3
        statements = list(await db.scalars(select(Statement)))
        states = {s.payee_id: (await service.get_statement(db, s.id))["status"]
                  for s in statements}
        owed = await db.scalar(select(func.sum(CommissionEntry.amount)).where(
            CommissionEntry.payee_id == "demo-rio"))
    assert states == {"demo-ava": "paid", "demo-cam": "paid", "demo-rio": "open"}
    assert int(owed or 0) > 0  # no Connect account: the remixer's balance accrues


async def test_reelcart_demo_loads_payees_contracts_and_statements(database_url: str) -> None:
    """``reelcart demo`` loads the catalog and the commissions story in one go."""
    summary = await _load_demo(make_settings(database_url))
    assert "demo catalog: 24 products" in summary
    assert "demo commissions" in summary  # seeded now, or already by the test above
    async with database(make_settings(database_url)) as sessionmaker, sessionmaker() as db:
        assert await db.scalar(select(func.count()).select_from(Payee)) == 3
        assert await db.scalar(select(func.count()).select_from(CommissionContract)) == 3
        assert await db.scalar(select(func.count()).select_from(Statement)) == 3
