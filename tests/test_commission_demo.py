"""The demo seeding (``reelcart payouts seed-demo``): payees, contracts, a paid and an open
statement, on the sandbox's offline transfers; a second call changes nothing."""

from __future__ import annotations

from sqlalchemy import func, select

from api.runtime import Runtime
from commissions import service
from commissions.demo import seed
from models import CommissionContract, CommissionEntry, Payee, Statement


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


# ``reelcart demo`` itself (payees, contracts, monthly payout runs and statements within the
# 90-day history) is covered by tests/test_demo.py.
