"""Orders, videos, payees and contracts for the commission tests, written through the
real services and the real attribution ledger (no shortcuts into the commission rows)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from attribution import ledger
from attribution.ledger import LedgerPolicy
from commissions import service
from commissions.schemas import ContractIn, PayeeIn
from commissions.service import CommissionPolicy
from models import Agent, AttributionTouch, CheckoutSession, CommissionEntry, Order, Video
from models.base import new_id, utc_now

POLICY = CommissionPolicy()
LONG_AGO = datetime(2020, 1, 1, tzinfo=utc_now().tzinfo)


async def base_world(db: AsyncSession) -> None:
    """Agent; videos v1 (campaign spring, creator alice), v2 remixed from v1, v3."""
    if await db.get(Agent, "agt_development") is None:
        db.add(Agent(id="agt_development", name="development"))
    db.add(Video(id="v1", title="Rainy denim", campaign="spring", creator="alice"))
    await db.flush()
    db.add(Video(id="v2", title="Denim remix", parent_video_id="v1", creator="carol"))
    db.add(Video(id="v3", title="Boots", campaign="autumn", creator="dan"))
    await db.flush()


async def payee(db: AsyncSession, payee_id: str, *, account: str | None = None,
                currency: str = "usd", kind: str = "creator") -> None:
    await service.upsert_payee(db, PayeeIn.model_validate({
        "id": payee_id, "name": payee_id.title(), "kind": kind, "connect_account": account,
        "country": "US", "currency": currency}))


async def contract(db: AsyncSession, contract_id: str, scope: str, value: str,
                   payees: list[tuple[str, int]], **terms: Any) -> dict[str, Any]:
    body = {"id": contract_id, "name": contract_id, "scope": scope, "scope_value": value,
            "effective_from": terms.pop("effective_from", LONG_AGO),
            "payees": [{"payee_id": p, "weight": w} for p, w in payees], **terms}
    body.setdefault("rate_bps", 1000 if body.get("basis", "percent") == "percent" else 0)
    return await service.create_contract(db, ContractIn.model_validate(body), POLICY)


async def order(db: AsyncSession, *, touches: list[tuple[str | None, float]],
                lines: list[tuple[str, int, int]], tax: int = 0, at: datetime | None = None,
                currency: str = "usd", remix_share: int = 0) -> Order:
    """A completed order: ``touches`` = (video, hours before the order), ``lines`` =
    (product, quantity, base amount). Its sale goes through the attribution ledger."""
    when = at or utc_now()
    session_id, order_id = new_id("cs"), new_id("ord")
    db.add(CheckoutSession(id=session_id, agent_id="agt_development", status="completed",
                           currency=currency, requested_items=[], expires_at=when))
    for i, (video, hours) in enumerate(touches):
        db.add(AttributionTouch(id=new_id("tch"), checkout_session_id=session_id,
                                touchpoint=f"t{i}", channel="web", video_id=video,
                                video_known=video is not None,
                                touched_at=when - timedelta(hours=hours)))
    items = sum(base for _, _, base in lines)
    total = items + tax
    line_items = [{"id": f"li_{i}", "item": {"id": f"{product}-var"}, "product_id": product,
                   "variant_id": f"{product}-var", "quantity": qty,
                   "totals": [{"type": "items_base_amount", "amount": base},
                              {"type": "discount", "amount": 0}]}
                  for i, (product, qty, base) in enumerate(lines)]
    row = Order(id=order_id, order_number=new_id("RC")[:20], checkout_session_id=session_id,
                agent_id="agt_development", status="confirmed", currency=currency,
                line_items=line_items,
                totals=[{"type": "items_base_amount", "amount": items},
                        {"type": "tax", "amount": tax}, {"type": "total", "amount": total}],
                total_amount=total, payment_provider="sandbox", created_at=when,
                updated_at=when)
    db.add(row)
    await db.flush()
    from fractions import Fraction

    await ledger.record_sale(db, row, 0, LedgerPolicy(window_days=None,
                                                     remix_share=Fraction(remix_share, 100)))
    return row


async def reverse(db: AsyncSession, row: Order, amount: int, kind: str = "refund") -> None:
    await ledger.record_reversal(db, row, amount, kind=kind, reference=new_id("rf"),
                                 reason=None)


async def entries(db: AsyncSession, **where: Any) -> list[CommissionEntry]:
    stmt = select(CommissionEntry).order_by(CommissionEntry.id)
    for key, value in where.items():
        stmt = stmt.where(getattr(CommissionEntry, key) == value)
    return list(await db.scalars(stmt))
