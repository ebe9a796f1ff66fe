"""Demo commissions (``reelcart payouts seed-demo``): the demo catalog has no orders, so
this seeds a few videos, demo orders credited to them (through the real attribution
ledger and commission hook), payees, contracts, one paid payout (a paid statement) and the
current month's open statement. Idempotent: a second call does nothing."""

from __future__ import annotations

from datetime import timedelta
from fractions import Fraction
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from attribution import ledger
from attribution.ledger import LedgerPolicy
from attribution.schemas import VideoIn
from attribution.service import upsert_video
from commissions import service
from commissions.payouts import run_payouts
from commissions.schemas import ContractIn, PayeeIn
from models import Agent, AttributionTouch, CheckoutSession, Order, Payee, Variant
from models.base import new_id, utc_now
from models.statuses import CheckoutStatus, OrderPaymentStatus, OrderStatus

PAYEES = [
    {"id": "demo-ava", "name": "Ava Reyes", "kind": "creator",
     "connect_account": "acct_1DemoAvaReyes", "country": "US", "currency": "usd"},
    {"id": "demo-cam", "name": "Cam Okafor (cameo)", "kind": "likeness",
     "connect_account": "acct_1DemoCamOkafor", "country": "GB", "currency": "usd"},
    {"id": "demo-rio", "name": "Rio Studio (remixer)", "kind": "creator", "country": "BR",
     "currency": "usd"},
]
VIDEOS = [
    {"id": "demo-denim", "title": "Rainy-day denim", "generator": "sora-2",
     "platform": "tiktok", "campaign": "fall-drop", "creator": "demo-ava",
     "products": [{"product_id": "denim-jacket"}]},
    {"id": "demo-denim-remix", "title": "Denim, remixed", "generator": "veo-3",
     "platform": "youtube", "campaign": "fall-drop", "creator": "demo-rio",
     "parent_video_id": "demo-denim", "products": [{"product_id": "denim-jacket"}]},
]


async def _order(db: AsyncSession, variant: Variant, video: str, quantity: int,
                 days_ago: int) -> Order:
    when = utc_now() - timedelta(days=days_ago)
    session_id = new_id("cs")
    db.add(CheckoutSession(id=session_id, agent_id="agt_demo",
                           status=CheckoutStatus.completed,
                           currency="usd", requested_items=[], expires_at=when))
    db.add(AttributionTouch(id=new_id("tch"), checkout_session_id=session_id,
                            touchpoint="web", channel="web", video_id=video, video_known=True,
                            touched_at=when - timedelta(hours=2)))
    base = variant.price_amount * quantity
    tax = base * 8 // 100
    order = Order(
        id=new_id("ord"), order_number=new_id("RC")[:20], checkout_session_id=session_id,
        agent_id="agt_demo", status=OrderStatus.confirmed, currency="usd",
        line_items=[{"id": "li_1", "item": {"id": variant.id}, "product_id": variant.product_id,
                     "variant_id": variant.id, "quantity": quantity, "name": variant.title,
                     "unit_amount": variant.price_amount,
                     "totals": [{"type": "items_base_amount", "amount": base},
                                {"type": "discount", "amount": 0}]}],
        totals=[{"type": "items_base_amount", "amount": base}, {"type": "tax", "amount": tax},
                {"type": "total", "amount": base + tax}],
        total_amount=base + tax, payment_provider="sandbox", payment_status=OrderPaymentStatus.paid,
        created_at=when, updated_at=when)
    db.add(order)
    await db.flush()
    await ledger.record_sale(db, order, None, LedgerPolicy(window_days=28,
                                                          remix_share=Fraction(0)))
    return order


async def seed(runtime: Any) -> str:
    async with runtime.sessionmaker() as db, db.begin():
        if await db.get(Payee, "demo-ava") is not None:
            return "demo commissions already seeded"
        variant = await db.get(Variant, "denim-jacket-m")
        if variant is None:
            return "load the demo catalog first (reelcart demo)"
        if await db.get(Agent, "agt_demo") is None:
            db.add(Agent(id="agt_demo", name="demo agent"))
        for video in VIDEOS:
            await upsert_video(db, VideoIn.model_validate(video))
        for payee in PAYEES:
            await service.upsert_payee(db, PayeeIn.model_validate(payee))
        since = utc_now() - timedelta(days=120)
        policy = runtime.commission_policy
        await service.create_contract(db, ContractIn.model_validate({
            "id": "demo-denim-split", "name": "Rainy-day denim: creator + cameo",
            "scope": "video", "scope_value": "demo-denim", "rate_bps": 1000,
            "effective_from": since.isoformat(),
            "payees": [{"payee_id": "demo-ava", "weight": 3},
                       {"payee_id": "demo-cam", "weight": 1}]}), policy)
        await service.create_contract(db, ContractIn.model_validate({
            "id": "demo-remix", "name": "Denim remix (20 % to the original's payees)",
            "scope": "video", "scope_value": "demo-denim-remix", "rate_bps": 800,
            "remix_share_bps": 2000, "effective_from": since.isoformat(),
            "payees": [{"payee_id": "demo-rio", "weight": 1}]}), policy)
        await service.create_contract(db, ContractIn.model_validate({
            "id": "demo-fall-bonus", "name": "Fall drop: 1 USD per jacket",
            "scope": "campaign", "scope_value": "fall-drop", "basis": "fixed_per_unit",
            "fixed_amount": 100, "currency": "usd", "effective_from": since.isoformat(),
            "payees": [{"payee_id": "demo-ava", "weight": 1}]}), policy)
        sold = [await _order(db, variant, "demo-denim", 2, 50),
                await _order(db, variant, "demo-denim-remix", 1, 45),
                await _order(db, variant, "demo-denim", 1, 40)]
        await ledger.record_reversal(db, sold[2], sold[2].total_amount // 2, kind="refund",
                                     reference="rf_demo_partial", reason="requested_by_customer")
    paid = await run_payouts(runtime.sessionmaker, runtime.transfers, dry_run=False,
                             run_id=f"demo-{utc_now():%Y-%m}", minimum=1)
    async with runtime.sessionmaker() as db, db.begin():  # this month's open statement
        await _order(db, variant, "demo-denim", 1, 2)
        start, end = service.month_of(utc_now())
        for payee in PAYEES:
            await service.ensure_statement(db, str(payee["id"]), start, end)
    return (f"demo commissions: {len(PAYEES)} payees, 3 contracts, 4 orders; payout run "
            f"{paid['run_id']} paid {paid['summary']['paid']} payees (their statements: paid); "
            "the remixer has no Connect account (statement open, balance accrues)")
