"""``models.prepared.Prepared``: a Core statement compiled once per dialect and run on the
session's DBAPI cursor (issue 16: a create's statements cost several times their SQL in
SQLAlchemy's per-call execution machinery). It must behave as ``session.execute`` of the
same statement: same stored values (JSON, time zones, Python-side defaults), same rows
read back (result types), the session's transaction, SQLAlchemy's error types, the
cursor events, and the autoflush of pending ORM changes."""

from __future__ import annotations

import gc
import weakref
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    event,
    exc,
    insert,
    select,
    update,
)

from api.runtime import Runtime
from checkout.repository import SESSIONS
from feeds.repository import VARIANTS
from models import Agent, CheckoutSession, Product
from models.db import create_engine, create_sessionmaker
from models.prepared import Prepared

_NOW = datetime(2026, 12, 3, 9, 30, 15, 123456, tzinfo=UTC)


def _session_values(agent_id: str, session_id: str) -> dict[str, Any]:
    """Every kind of column the create path writes; the rest left to their defaults
    (``version`` a scalar, ``messages`` and ``totals`` callables)."""
    return {"id": session_id, "agent_id": agent_id, "status": "not_ready_for_payment",
            "currency": "usd", "requested_items": [{"id": "v1", "quantity": 2}],
            "buyer": None, "fulfillment_details": {"address": {"city": "Zürich"}},
            "selected_fulfillment_options": None, "agent_capabilities": {},
            "locale": "de-CH", "timezone": None, "order_notes": "ring twice",
            "metadata": None, "line_items": [{"id": "li_1", "amount": 1999}],
            "total_amount": 1999, "created_at": _NOW, "updated_at": _NOW,
            "expires_at": _NOW + timedelta(hours=6)}


def _stored(row: CheckoutSession) -> dict[str, Any]:
    values = {c.key: getattr(row, c.key) for c in CheckoutSession.__mapper__.column_attrs}
    values.pop("id")
    return values


async def _agent_id(rt: Runtime) -> str:
    async with rt.sessionmaker() as db:
        return str(await db.scalar(select(Agent.id).limit(1)))


async def test_an_insert_stores_what_session_execute_stores(runtime: Runtime) -> None:
    agent_id = await _agent_id(runtime)
    statement = insert(SESSIONS)
    prepared = Prepared(statement)
    async with runtime.sessionmaker() as db:
        result = await prepared.execute(db, _session_values(agent_id, "cs_prepared"))
        assert result.rowcount == 1
        await db.execute(statement, _session_values(agent_id, "cs_executed"))
        await db.commit()
    async with runtime.sessionmaker() as db:
        ours = await db.get(CheckoutSession, "cs_prepared")
        theirs = await db.get(CheckoutSession, "cs_executed")
        assert ours is not None
        assert theirs is not None
        assert _stored(ours) == _stored(theirs)
    assert ours.version == 1
    assert ours.messages == []
    assert ours.totals == []
    assert ours.created_at == _NOW
    assert ours.fulfillment_details == {
        "address": {"city": "Zürich"}}


async def test_a_select_reads_the_rows_session_execute_reads(runtime: Runtime) -> None:
    statement = select(*VARIANTS.c).where(VARIANTS.c.id == bindparam("id"))
    prepared = Prepared(statement)
    async with runtime.sessionmaker() as db:
        wanted = await db.scalar(select(VARIANTS.c.id).order_by(VARIANTS.c.id).limit(1))
        ours = (await prepared.execute(db, {"id": wanted})).rows
        theirs = (await db.execute(statement, {"id": wanted})).all()
        missing = await prepared.execute(db, {"id": "no-such-variant"})
    assert len(ours) == 1
    assert tuple(ours[0]) == tuple(theirs[0])
    assert ours[0].id == wanted
    assert isinstance(ours[0].requires_shipping, bool)
    assert isinstance(ours[0].updated_at, datetime)
    assert missing.rows == []
    assert missing.first() is None


async def test_it_runs_in_the_sessions_transaction(runtime: Runtime) -> None:
    agent_id = await _agent_id(runtime)
    prepared = Prepared(insert(SESSIONS))
    async with runtime.sessionmaker() as db:
        await prepared.execute(db, _session_values(agent_id, "cs_rolled_back"))
        await db.rollback()
    async with runtime.sessionmaker() as db:
        assert await db.get(CheckoutSession, "cs_rolled_back") is None


async def test_driver_errors_surface_as_sqlalchemys_and_the_session_recovers(
        runtime: Runtime) -> None:
    agent_id = await _agent_id(runtime)
    prepared = Prepared(insert(SESSIONS))
    async with runtime.sessionmaker() as db:
        await prepared.execute(db, _session_values(agent_id, "cs_twice"))
        await db.commit()
        with pytest.raises(exc.IntegrityError):
            await prepared.execute(db, _session_values(agent_id, "cs_twice"))
        await db.rollback()
        await prepared.execute(db, _session_values(agent_id, "cs_after_the_error"))
        await db.commit()
    async with runtime.sessionmaker() as db:
        assert await db.get(CheckoutSession, "cs_after_the_error") is not None


async def test_pending_orm_changes_are_flushed_first(runtime: Runtime) -> None:
    products = Product.__table__
    assert isinstance(products, Table)
    prepared = Prepared(select(products.c.title).where(products.c.id == bindparam("id")))
    async with runtime.sessionmaker() as db:
        db.add(Product(id="p-pending", title="Pending until flushed"))
        assert db.autoflush is False  # the app's sessions: flushed only when needed
        db.autoflush = True
        found = await prepared.execute(db, {"id": "p-pending"})
        await db.rollback()
    assert [row.title for row in found] == ["Pending until flushed"]


async def test_cursor_events_see_the_statement(runtime: Runtime) -> None:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    engine = runtime.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        prepared = Prepared(select(VARIANTS.c.id).where(VARIANTS.c.id == bindparam("id")))
        async with runtime.sessionmaker() as db:
            await prepared.execute(db, {"id": "nothing"})
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert len(seen) == 1
    assert seen[0].startswith("SELECT variants.id")


async def test_statements_whose_sql_changes_per_call_are_refused(runtime: Runtime) -> None:
    expanding = Prepared(select(VARIANTS.c.id).where(
        VARIANTS.c.id.in_(bindparam("ids", expanding=True))))
    async with runtime.sessionmaker() as db:
        with pytest.raises(ValueError, match="expanding"):
            await expanding.execute(db, {"ids": ["a", "b"]})
        with pytest.raises(KeyError, match="'id'"):
            await Prepared(select(VARIANTS.c.id).where(
                VARIANTS.c.id == bindparam("id"))).execute(db, {})


async def test_an_update_sets_the_columns_each_call_names(runtime: Runtime) -> None:
    agent_id = await _agent_id(runtime)
    save = Prepared(update(SESSIONS).where(SESSIONS.c.id == bindparam("session_id")))
    async with runtime.sessionmaker() as db:
        await Prepared(insert(SESSIONS)).execute(db, _session_values(agent_id, "cs_updated"))
        first = await save.execute(db, {"status": "canceled", "session_id": "cs_updated"})
        second = await save.execute(db, {"session_id": "cs_updated", "order_notes": None,
                                         "version": 7})
        none = await save.execute(db, {"status": "canceled", "session_id": "cs_missing"})
        await db.commit()
        stored = await db.get(CheckoutSession, "cs_updated")
    assert (first.rowcount, second.rowcount, none.rowcount) == (1, 1, 0)
    assert stored is not None
    assert (stored.status, stored.order_notes, stored.version) == ("canceled", None, 7)
    assert stored.locale == "de-CH"  # not named, not touched


async def test_a_name_that_is_no_column_is_refused(runtime: Runtime) -> None:
    agent_id = await _agent_id(runtime)
    values = {**_session_values(agent_id, "cs_typo"), "statsu": "canceled"}
    async with runtime.sessionmaker() as db:
        with pytest.raises(ValueError, match="statsu"):
            await Prepared(insert(SESSIONS)).execute(db, values)


async def test_update_returning_reads_the_returned_rows(runtime: Runtime) -> None:
    take = Prepared(update(VARIANTS).where(VARIANTS.c.id == bindparam("variant_id"))
                    .values(stock=VARIANTS.c.stock - bindparam("quantity"))
                    .returning(VARIANTS.c.id, VARIANTS.c.stock))
    async with runtime.sessionmaker() as db:
        wanted, stock = (await db.execute(select(VARIANTS.c.id, VARIANTS.c.stock).where(
            VARIANTS.c.stock.is_not(None)).order_by(VARIANTS.c.id).limit(1))).one()
        taken = await take.execute(db, {"variant_id": wanted, "quantity": 2})
        await db.rollback()
    assert [(row.id, row.stock) for row in taken] == [(wanted, stock - 2)]


async def test_compiled_statements_do_not_keep_a_disposed_engines_dialect(
        database_url: str) -> None:
    engine = create_engine(database_url)
    prepared = Prepared(select(VARIANTS.c.id).where(VARIANTS.c.id == bindparam("id")))
    async with create_sessionmaker(engine)() as db:
        await prepared.execute(db, {"id": "nothing"})
    dialect = weakref.ref(engine.sync_engine.dialect)
    await engine.dispose()
    del engine, db
    gc.collect()
    assert dialect() is None


async def test_an_update_sets_a_column_not_named_to_its_onupdate_value(
        tmp_path: Path) -> None:
    """As ``session.execute``: a column left out of an UPDATE takes its ``onupdate``
    (here different from its INSERT ``default``), not its default."""
    metadata = MetaData()
    counters = Table("counters", metadata, Column("id", String(10), primary_key=True),
                     Column("hits", Integer), Column("stamp", String(10), default="inserted",
                                                     onupdate="updated"))
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'onupdate.db'}")
    try:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
        bump = Prepared(update(counters).where(counters.c.id == bindparam("counter_id")))
        async with create_sessionmaker(engine)() as db:
            await Prepared(insert(counters)).execute(db, {"id": "a", "hits": 1})
            inserted = (await db.execute(select(counters.c.stamp))).scalar_one()
            await bump.execute(db, {"counter_id": "a", "hits": 2})
            updated = (await db.execute(select(counters.c.stamp, counters.c.hits))).one()
            await db.commit()
    finally:
        await engine.dispose()
    assert inserted == "inserted"
    assert tuple(updated) == ("updated", 2)
