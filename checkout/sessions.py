"""Session lifecycle: create, read, update, cancel. Each call flushes in the caller's
transaction and returns the protocol-neutral ``SessionView``."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from attribution import touches
from checkout import repository
from checkout.base import CheckoutCore
from checkout.domain import (
    Actor,
    CancelSession,
    CreateSession,
    LineRequest,
    SessionStatus,
    SessionView,
    UpdateSession,
    _Unset,
)
from checkout.errors import UnsupportedCurrency
from checkout.pricing import aggregate_requested
from feeds import repository as catalog_repository
from models.base import new_id


def _requested(lines: list[LineRequest]) -> list[dict[str, object]]:
    requested = aggregate_requested([(ln.item_id, ln.quantity, ln.unit_amount) for ln in lines])
    return [{"id": r.item_id, "quantity": r.quantity, "unit_amount": r.agent_unit_amount}
            for r in requested]


class SessionLifecycle(CheckoutCore):
    async def create(self, db: AsyncSession, actor: Actor, cmd: CreateSession) -> SessionView:
        claim = touches.accept(cmd.attribution, cmd.attribution_param)  # 400 on PII
        currency = cmd.currency.lower()
        if currency not in self.profile.currencies:
            raise UnsupportedCurrency(
                f"Currency {currency.upper()} is not supported; use one of "
                f"{', '.join(c.upper() for c in self.profile.currencies)}.", param="$.currency")
        variants = await catalog_repository.variants_by_ids(db, (ln.item_id for ln in cmd.lines))
        self._validate_lines(cmd.lines, variants, currency)
        now = self.clock()
        s = repository.NewSession(
            id=new_id("cs"), agent_id=actor.agent_id,
            status=SessionStatus.not_ready_for_payment.value, currency=currency,
            requested_items=_requested(cmd.lines),
            buyer=cmd.buyer, fulfillment_details=cmd.fulfillment_details,
            selected_fulfillment_options=cmd.selected_fulfillment_options or None,
            agent_capabilities=cmd.agent_capabilities or {},
            locale=cmd.locale, timezone=cmd.timezone, order_notes=cmd.order_notes,
            session_metadata=touches.stored_metadata(cmd.metadata), created_at=now, updated_at=now,
            discount_codes=cmd.discount_codes, expires_at=now + self.session_ttl,
        )
        await self._reprice(db, s, variants)
        await repository.insert_session(db, s)
        if claim is not None:
            await touches.record_claim(db, s.id, claim, now)
        await touches.record_web_touch(db, s.id, cmd.metadata, now)
        return self.view(s)

    async def get(self, db: AsyncSession, actor: Actor, session_id: str) -> SessionView:
        s = await self._load(db, actor, session_id, for_update=False)
        return await self._view_with_order(db, s)

    async def update(self, db: AsyncSession, actor: Actor, session_id: str,
                     cmd: UpdateSession) -> SessionView:
        s = await self._load(db, actor, session_id, for_update=True)
        self._ensure_open(s, "updated")
        variants = None  # new lines: priced from the variants their check loaded
        if not isinstance(cmd.lines, _Unset) and cmd.lines is not None:
            variants = await catalog_repository.variants_by_ids(
                db, (ln.item_id for ln in cmd.lines))
            self._validate_lines(cmd.lines, variants, s.currency)
            s.requested_items = _requested(cmd.lines)
        if not isinstance(cmd.buyer, _Unset):
            s.buyer = cmd.buyer
        if not isinstance(cmd.fulfillment_details, _Unset):
            s.fulfillment_details = cmd.fulfillment_details
        if not isinstance(cmd.selected_fulfillment_options, _Unset):
            s.selected_fulfillment_options = cmd.selected_fulfillment_options or None
        if not isinstance(cmd.order_notes, _Unset):
            s.order_notes = cmd.order_notes
        if not isinstance(cmd.discount_codes, _Unset):
            s.discount_codes = cmd.discount_codes
        s.version += 1
        await self._reprice(db, s, variants)
        await repository.save_session(db, s)
        return self.view(s)

    async def cancel(self, db: AsyncSession, actor: Actor, session_id: str,
                     cmd: CancelSession | None = None) -> SessionView:
        s = await self._load(db, actor, session_id, for_update=True)
        self._ensure_open(s, "canceled")
        s.status = SessionStatus.canceled.value
        s.cancel_reason = (cmd.intent_trace if cmd else None) or None
        s.updated_at = self.clock()
        s.messages = []
        s.version += 1
        await repository.save_session(db, s)
        return self.view(s)
