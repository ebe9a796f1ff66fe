"""All SQL for checkout sessions, catalog reads and stock."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Table,
    and_,
    bindparam,
    case,
    insert,
    inspect,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from feeds.repository import VARIANTS  # Core table: stock updates skip ORM bookkeeping
from models import (
    Agent,
    AttributionTouch,
    CheckoutSession,
    EtsyListingLink,
    PaymentAttempt,
    Variant,
)
from models.prepared import Prepared
from models.statuses import AttemptStatus

SESSIONS = cast(Table, CheckoutSession.__table__)


@dataclass(slots=True)
class NewSession:
    """A session being created, as a plain object: what ``create`` and re-pricing set.

    It is inserted with one Core statement and never tracked by the ORM, so a mapped
    ``CheckoutSession`` (an instrumented constructor and an instrumented set per
    attribute, about 5% of a create) would buy nothing. The columns it has no field for
    (``version``, ``order_id``, payment state…) get their column defaults."""

    id: str
    agent_id: str
    status: str
    currency: str
    requested_items: list[Any]
    buyer: dict[str, Any] | None
    fulfillment_details: dict[str, Any] | None
    selected_fulfillment_options: list[Any] | None
    agent_capabilities: dict[str, Any]
    locale: str | None
    timezone: str | None
    order_notes: str | None
    session_metadata: dict[str, Any] | None
    discount_codes: list[Any] | None
    created_at: datetime
    updated_at: datetime
    expires_at: datetime
    # The priced snapshot, set by re-pricing before the insert.
    line_items: list[Any] = field(default_factory=list)
    fulfillment_options: list[Any] = field(default_factory=list)
    totals: list[Any] = field(default_factory=list)
    messages: list[Any] = field(default_factory=list)
    total_amount: int = 0
    authentication_metadata: dict[str, Any] | None = None


_NEW_SESSION_COLUMNS = [(prop.key, prop.columns[0].key)
                        for prop in inspect(CheckoutSession).column_attrs
                        if prop.key in {f.name for f in fields(NewSession)}]
assert len(_NEW_SESSION_COLUMNS) == len(fields(NewSession))  # every field is a column
_INSERT_SESSION = Prepared(insert(SESSIONS))


async def insert_session(db: AsyncSession, s: NewSession) -> None:
    """Insert a new session with one Core statement: on the create hot path the ORM unit of
    work costs several times more than the INSERT itself."""
    await _INSERT_SESSION.execute(db, {column: getattr(s, attr)
                                       for attr, column in _NEW_SESSION_COLUMNS})


@dataclass(slots=True)
class SessionRow:
    """A stored session as a plain object, for the requests that change one (update,
    complete, cancel) and ``get``: read with one Core SELECT and written back with one Core
    UPDATE (``save_session``). Loading an instrumented ``CheckoutSession`` into the
    identity map and letting the unit of work find and flush its changes cost several
    times the statements themselves on the checkout hot path. Fields in column order."""

    id: str
    agent_id: str
    status: str
    currency: str
    requested_items: list[Any]
    buyer: dict[str, Any] | None
    fulfillment_details: dict[str, Any] | None
    selected_fulfillment_options: list[Any] | None
    agent_capabilities: dict[str, Any]
    locale: str | None
    timezone: str | None
    order_notes: str | None
    session_metadata: dict[str, Any] | None
    line_items: list[Any]
    fulfillment_options: list[Any]
    totals: list[Any]
    messages: list[Any]
    total_amount: int
    authentication_metadata: dict[str, Any] | None
    payment_handler_id: str | None
    reserved_stock: dict[str, Any] | None
    cancel_reason: dict[str, Any] | None
    discount_codes: list[Any] | None
    order_id: str | None
    version: int
    created_at: datetime
    updated_at: datetime
    expires_at: datetime


_ROW_COLUMNS = [(prop.key, prop.columns[0]) for prop in inspect(CheckoutSession).column_attrs]
assert [attr for attr, _ in _ROW_COLUMNS] == [f.name for f in fields(SessionRow)]
_SELECT_ROW = select(*(column for _, column in _ROW_COLUMNS)).where(
    SESSIONS.c.id == bindparam("session_id"))
_ROW_BY_ID = Prepared(_SELECT_ROW)
# Row lock on PostgreSQL; SQLite already holds the write lock (BEGIN IMMEDIATE).
_ROW_FOR_UPDATE = Prepared(_SELECT_ROW.with_for_update())
# What update, complete and cancel may change; the rest is fixed at create. All of it is
# written back (the row is locked, so nothing else changed it meanwhile).
_SAVED = [(attr, column.key) for attr, column in _ROW_COLUMNS if attr in {
    "status", "requested_items", "buyer", "fulfillment_details",
    "selected_fulfillment_options", "order_notes", "line_items", "fulfillment_options",
    "totals", "messages", "total_amount", "authentication_metadata", "payment_handler_id",
    "reserved_stock", "cancel_reason", "discount_codes", "order_id", "version",
    "updated_at"}]
_SAVE_SESSION = Prepared(update(SESSIONS).where(SESSIONS.c.id == bindparam("session_id")))


async def load_session(db: AsyncSession, session_id: str, *, for_update: bool = False
                       ) -> SessionRow | None:
    row = (await (_ROW_FOR_UPDATE if for_update else _ROW_BY_ID).execute(
        db, {"session_id": session_id})).first()
    return None if row is None else SessionRow(*row)


async def save_session(db: AsyncSession, s: SessionRow) -> None:
    """Write a session loaded with ``load_session(for_update=True)`` back: one UPDATE."""
    params: dict[str, Any] = {column: getattr(s, attr) for attr, column in _SAVED}
    params["session_id"] = s.id
    await _SAVE_SESSION.execute(db, params)


_ATTEMPTS = cast(Table, PaymentAttempt.__table__)
_INSERT_ATTEMPT = Prepared(insert(_ATTEMPTS))

# Built once (bind parameters): these run on every update and complete.
_SESSION_BY_ID = select(CheckoutSession).where(CheckoutSession.id == bindparam("session_id")) \
    .execution_options(populate_existing=True)
# Row lock on PostgreSQL; SQLite already holds the write lock (BEGIN IMMEDIATE).
_SESSION_FOR_UPDATE = _SESSION_BY_ID.with_for_update()
# Whether the session has attribution touches, and whether any variant is linked to an
# Etsy listing at all: asked here, in the statement that locks the session, so that a sale
# with none (the usual one) skips the ledger's touch look-up and the Etsy link look-up.
# The same transaction's snapshot on SQLite (it holds the write lock throughout); on
# PostgreSQL, as if a concurrent writer of either had committed a moment later.
_HAS_TOUCHES = select(AttributionTouch.id).where(
    AttributionTouch.checkout_session_id == SESSIONS.c.id).exists()
_ETSY_LINKED = select(EtsyListingLink.variant_id).exists()
_FOR_OUTCOME = (
    select(*(column for _, column in _ROW_COLUMNS), PaymentAttempt, Agent, _HAS_TOUCHES,
           _ETSY_LINKED)
    .outerjoin(PaymentAttempt, and_(PaymentAttempt.id == bindparam("attempt_id"),
                                    PaymentAttempt.checkout_session_id == SESSIONS.c.id))
    .outerjoin(Agent, Agent.id == SESSIONS.c.agent_id)
    .where(SESSIONS.c.id == bindparam("session_id"))
    .with_for_update(of=SESSIONS)  # the session's row only
    .execution_options(populate_existing=True))


async def get_session(
    db: AsyncSession, session_id: str, *, for_update: bool = False
) -> CheckoutSession | None:
    return await db.scalar(_SESSION_FOR_UPDATE if for_update else _SESSION_BY_ID,
                           {"session_id": session_id})


async def insert_attempt(db: AsyncSession, attempt: dict[str, Any]) -> None:
    """Insert a new payment attempt (its column values) with one Core statement, as
    ``insert_session``: nothing in its transaction reads it back."""
    await _INSERT_ATTEMPT.execute(db, attempt)


_UPDATE_ATTEMPT = Prepared(update(_ATTEMPTS).where(_ATTEMPTS.c.id == bindparam("attempt_id")))


async def update_attempt(db: AsyncSession, attempt: PaymentAttempt, values: dict[str, Any]
                         ) -> None:
    """Set ``values`` on a loaded attempt with one Core UPDATE (no unit-of-work flush);
    the mapped object takes them as its committed state, so it is not written again."""
    for attr, value in values.items():
        set_committed_value(attempt, attr, value)
    await _UPDATE_ATTEMPT.execute(db, {**values, "attempt_id": attempt.id})


@dataclass(slots=True)
class ForOutcome:
    """What recording the provider's answer needs, read with the session's lock."""

    session: SessionRow
    attempt: PaymentAttempt | None
    agent: Agent | None
    has_touches: bool
    etsy_linked: bool


async def lock_for_outcome(db: AsyncSession, session_id: str, attempt_id: str
                           ) -> ForOutcome | None:
    """The session FOR UPDATE (as a ``SessionRow``), with its payment attempt
    ``attempt_id``, its agent and two flags (``_HAS_TOUCHES``, ``_ETSY_LINKED``) in the
    same statement: recording the provider's answer then finds the attempt in the
    session's identity map (``db.get``) instead of asking the database again (the
    agent: for its order webhook subscription, ``orders.notify``). The identity map holds
    objects weakly: keep the result referenced while they are needed."""
    row = (await db.execute(_FOR_OUTCOME, {"session_id": session_id,
                                           "attempt_id": attempt_id})).first()
    if row is None:
        return None
    width = len(_ROW_COLUMNS)
    return ForOutcome(SessionRow(*row[:width]), row[width], row[width + 1],
                      bool(row[width + 2]), bool(row[width + 3]))


def _per_variant(quantities: dict[str, int]) -> ColumnElement[int]:
    """``CASE id WHEN … THEN qty …``: each line's quantity inside one statement."""
    return case(quantities, value=VARIANTS.c.id)


_TAKE_ONE = Prepared(update(VARIANTS)
                     .where(VARIANTS.c.id == bindparam("variant_id"),
                            VARIANTS.c.stock.is_not(None),
                            VARIANTS.c.stock >= bindparam("quantity"))
                     .values(stock=VARIANTS.c.stock - bindparam("quantity"))
                     .returning(VARIANTS.c.id))


async def reserve_stock(db: AsyncSession, quantities: dict[str, int]) -> list[str]:
    """Atomically take stock for every tracked variant, or for none. Returns the variant
    ids that lacked it (nothing is taken then).

    One UPDATE for the whole cart: ``stock >= qty`` in its WHERE makes it safe under
    concurrency on both back ends without reading first (two buyers of the last unit
    cannot both succeed), and RETURNING says which rows it took. Only when a row is
    missing from that answer (untracked, unknown or short: rare) does a SELECT tell them
    apart, and a compensating UPDATE gives back what was taken if one was short.
    """
    if not quantities:
        return []
    if len(quantities) == 1:  # the usual cart: the same UPDATE, built once
        ((variant_id, quantity),) = quantities.items()
        taken = {row.id for row in await _TAKE_ONE.execute(
            db, {"variant_id": variant_id, "quantity": quantity})}
    else:
        qty = _per_variant(quantities)
        taken = set((await db.execute(
            update(VARIANTS)
            .where(VARIANTS.c.id.in_(sorted(quantities)), VARIANTS.c.stock.is_not(None),
                   VARIANTS.c.stock >= qty)
            .values(stock=VARIANTS.c.stock - qty)
            .returning(VARIANTS.c.id)
        )).scalars())
    missing = sorted(set(quantities) - taken)
    if not missing:
        return []
    short = sorted(await db.scalars(select(Variant.id).where(
        Variant.id.in_(missing), Variant.stock.is_not(None))))
    if short and taken:
        await release_stock(db, {v: quantities[v] for v in taken})
    return short


async def release_stock(db: AsyncSession, quantities: dict[str, int]) -> None:
    """Give stock back (one UPDATE for the whole cart; untracked variants unchanged)."""
    if not quantities:
        return
    qty = _per_variant(quantities)
    await db.execute(
        update(VARIANTS)
        .where(VARIANTS.c.id.in_(sorted(quantities)), VARIANTS.c.stock.is_not(None))
        .values(stock=VARIANTS.c.stock + qty)
    )


async def latest_attempt(db: AsyncSession, session_id: str) -> PaymentAttempt | None:
    return await db.scalar(
        select(PaymentAttempt)
        .where(PaymentAttempt.checkout_session_id == session_id)
        .order_by(PaymentAttempt.created_at.desc(), PaymentAttempt.id.desc())
        .limit(1)
    )


async def attempt_by_reference(db: AsyncSession, reference: str) -> PaymentAttempt | None:
    return await db.scalar(select(PaymentAttempt).where(
        PaymentAttempt.provider_reference == reference).with_for_update())


async def unknown_attempt(db: AsyncSession, session_id: str, amount: int | None
                          ) -> PaymentAttempt | None:
    """The latest attempt whose request timed out, for a payment we only learn of later."""
    stmt = (select(PaymentAttempt)
            .where(PaymentAttempt.checkout_session_id == session_id,
                   PaymentAttempt.status == "unknown",
                   PaymentAttempt.provider_reference.is_(None))
            .order_by(PaymentAttempt.created_at.desc()).limit(1).with_for_update())
    if amount is not None:
        stmt = stmt.where(PaymentAttempt.amount == amount)
    return await db.scalar(stmt)


async def attempts_of(db: AsyncSession, session_id: str) -> list[PaymentAttempt]:
    return list(await db.scalars(select(PaymentAttempt).where(
        PaymentAttempt.checkout_session_id == session_id).order_by(PaymentAttempt.created_at)))


async def attempts_with_status(db: AsyncSession, status: str, limit: int = 50
                               ) -> list[PaymentAttempt]:
    return list(await db.scalars(select(PaymentAttempt).where(
        PaymentAttempt.status == status).order_by(PaymentAttempt.updated_at).limit(limit)))


async def stale_attempts(db: AsyncSession, older_than: datetime, limit: int = 50
                         ) -> list[PaymentAttempt]:
    """Attempts whose outcome was never recorded: their request died or timed out."""
    return list(await db.scalars(
        select(PaymentAttempt)
        .where(PaymentAttempt.status.in_((AttemptStatus.pending, AttemptStatus.processing,
                                          AttemptStatus.unknown)),
               PaymentAttempt.updated_at < older_than)
        .order_by(PaymentAttempt.updated_at).limit(limit)))
