"""Issue 16: what one checkout create costs the database and the ORM, pinned.

A create is three statements in one transaction with one commit: the catalog lookup,
the session INSERT and the idempotency record INSERT (the key is recorded done with the
response, in the same transaction). An agent key verified moments ago is not looked up
again (``REELCART_API_KEY_CACHE_SECONDS``). No ORM entity is built: the new session is
inserted with a Core statement. On SQLite the transaction still starts with
``BEGIN IMMEDIATE`` (seen by SQLite itself), issued on the driver rather than as a
statement through SQLAlchemy.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import event

from api.auth import create_agent_key
from api.runtime import Runtime
from models.base import Base
from models.db import transaction
from tests.conftest import Agent, app_client

_TABLE = re.compile(r"^\s*(?:SELECT\b.*?\bFROM|INSERT INTO|UPDATE|DELETE FROM)\s+\"?(\w+)",
                    re.IGNORECASE | re.DOTALL)


def _shape(sql: str) -> str:
    """``SELECT variants.id, … FROM variants WHERE …`` → ``SELECT variants``; other
    statements (``BEGIN IMMEDIATE``, ``COMMIT``) → their first word."""
    verb = sql.split(None, 1)[0].upper()
    found = _TABLE.match(sql)
    return f"{verb} {found.group(1)}" if found else verb


class Recorder:
    """Statements through SQLAlchemy (both engines), commits, and ORM entities built."""

    def __init__(self, rt: Runtime) -> None:
        self.statements: list[str] = []
        self.commits = 0
        self.entities: list[str] = []
        self.recording = False
        self._targets: list[tuple[Any, str, Any]] = []
        engines = {id(e.sync_engine): e.sync_engine for e in (rt.engine, rt.read_engine)}
        for engine in engines.values():
            self._listen(engine, "before_cursor_execute", self._statement)
            self._listen(engine, "commit", self._commit)
        self._listen(Base, "init", self._entity)

    def _listen(self, target: Any, name: str, fn: Any) -> None:
        event.listen(target, name, fn, propagate=True) if target is Base \
            else event.listen(target, name, fn)
        self._targets.append((target, name, fn))

    def remove(self) -> None:
        for target, name, fn in self._targets:
            event.remove(target, name, fn)

    def _statement(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if self.recording:
            self.statements.append(_shape(statement))

    def _commit(self, _conn: Any) -> None:
        if self.recording:
            self.commits += 1

    def _entity(self, target: Any, _args: Any, _kwargs: Any) -> None:
        if self.recording:
            self.entities.append(type(target).__name__)


async def _sqlite_trace(rt: Runtime) -> list[str]:
    """Every statement SQLite itself runs on the one write connection."""
    seen: list[str] = []
    async with rt.engine.connect() as conn:
        raw = await conn.get_raw_connection()
        raw.driver_connection.sqlite.set_trace_callback(seen.append)
    return seen


async def test_a_create_is_three_statements_one_commit_and_no_orm_entity(
        runtime: Runtime, backend: str) -> None:
    async with transaction(runtime.sessionmaker) as db:
        _, key = await create_agent_key(db, "statement-counter")
    recorder = Recorder(runtime)
    try:
        async with app_client(runtime) as client:
            agent = Agent(client, key=key)
            first = await agent.create(line_items=[{"id": "item_123", "quantity": 2}])
            assert first.status_code == 201, first.text  # and the key is now verified
            trace = await _sqlite_trace(runtime) if backend == "sqlite" else []
            recorder.recording = True
            resp = await agent.create(line_items=[{"id": "item_123", "quantity": 2}])
            recorder.recording = False
        assert resp.status_code == 201, resp.text
        assert resp.json()["totals"][-1]["amount"] > 0
        assert recorder.statements == ["SELECT variants", "INSERT checkout_sessions",
                                       "INSERT idempotency_keys"]
        assert recorder.commits == 1
        assert recorder.entities == []
        if backend == "sqlite":
            assert [_shape(s) for s in trace] == [
                "BEGIN", "SELECT variants", "INSERT checkout_sessions",
                "INSERT idempotency_keys", "COMMIT"]
            assert trace[0] == "BEGIN IMMEDIATE"
    finally:
        recorder.remove()


async def test_unit_of_work_commits_or_rolls_back_and_always_returns_the_connection(
        runtime: Runtime) -> None:
    """``UnitOfWork`` closes a committed session directly; a block that fails, or ends
    without committing, is rolled back; either way the connection is back in the pool
    (SQLite's write pool has one: the next unit of work could not start otherwise)."""
    from sqlalchemy import func, select

    from models import Agent as AgentRow
    from models.base import utc_now
    from models.db import UnitOfWork

    def row(name: str) -> AgentRow:
        return AgentRow(id=f"agt_{name}", name=name, created_at=utc_now())

    async def names() -> set[str]:
        async with runtime.read_sessionmaker() as db:
            return set(await db.scalars(select(AgentRow.name).where(
                AgentRow.name.in_(["kept", "failed", "uncommitted"]))))

    async with UnitOfWork(runtime.sessionmaker) as db:
        db.add(row("kept"))
        await db.commit()
    assert not db.in_transaction()
    try:
        async with UnitOfWork(runtime.sessionmaker) as db:
            db.add(row("failed"))
            await db.flush()
            raise LookupError("the handler failed")
    except LookupError:
        pass
    async with UnitOfWork(runtime.sessionmaker) as db:
        db.add(row("uncommitted"))
        await db.flush()
    assert await names() == {"kept"}
    async with UnitOfWork(runtime.sessionmaker) as db:  # the connection came back each time
        assert (await db.scalar(select(func.count()).select_from(AgentRow)) or 0) >= 1
        await db.commit()
    assert runtime.engine.pool.checkedout() == 0  # type: ignore[attr-defined]


class GreenletTrace:
    """Greenlet switches (``greenlet.settrace``) and the greenlets switched into, while
    recording (held, so that no id is reused)."""

    def __init__(self) -> None:
        self.switches = 0
        self.greenlets: list[Any] = []
        self._previous: Any = None

    def __enter__(self) -> GreenletTrace:
        import greenlet

        self._previous = greenlet.settrace(self._trace)
        return self

    def __exit__(self, *exc: object) -> None:
        import greenlet

        greenlet.settrace(self._previous)

    def _trace(self, event: str, args: Any) -> None:
        if event in ("switch", "throw"):
            self.switches += 1
            target = args[1]
            if all(target is not seen for seen in self.greenlets):
                self.greenlets.append(target)


async def test_a_create_costs_few_greenlet_switches_and_starts_no_greenlet(
        agent: Agent, backend: str) -> None:
    """SQLAlchemy's asyncio layer ran every statement, commit and close in a new greenlet
    (about 8 µs to start and finish one) and every driver call as a coroutine behind a
    switch to the event loop and back, even on SQLite, whose inline driver never waits
    unless another process holds the lock: 32 switches and 5 new greenlets per create.
    Sessions now run on reused greenlets (``models.greenlets``) and the SQLite adapter
    calls ``sqlite3`` directly (``models.sqlite_inline``)."""
    first = await agent.create(line_items=[{"id": "item_123"}])
    assert first.status_code == 201, first.text  # warm: the key is cached, greenlets kept
    with GreenletTrace() as trace:
        resp = await agent.create(line_items=[{"id": "item_123"}])
    assert resp.status_code == 201, resp.text
    # The event loop's greenlet and one kept worker, used for every call in turn.
    assert len(trace.greenlets) == 2, trace.greenlets
    if backend == "sqlite":
        # Into the worker and back for 3 statements, the commit and the close; no driver
        # call leaves it.
        assert trace.switches == 10, trace.switches
    else:  # asyncpg's calls really wait on the socket: a switch to the loop and back each
        assert trace.switches <= 30, trace.switches


async def test_a_create_parses_its_json_body_once_before_pydantic(agent: Agent) -> None:
    """The body-limit middleware's check (depth, integer range, UTF-8) and the
    idempotency hash each parsed the body with ``json.loads``; the hash now reuses the
    middleware's parse (pydantic still validates the body on its own)."""
    import cProfile
    import json
    import pstats

    first = await agent.create(line_items=[{"id": "item_123"}])
    assert first.status_code == 201, first.text
    profile = cProfile.Profile()
    profile.enable()
    resp = await agent.create(line_items=[{"id": "item_123", "quantity": 2}])
    profile.disable()
    assert resp.status_code == 201, resp.text
    stats: dict[Any, Any] = getattr(pstats.Stats(profile), "stats")  # noqa: B009
    code = json.loads.__code__
    calls = [value[1] for (path, line, name), value in stats.items()
             if (path, line, name) == (code.co_filename, code.co_firstlineno, "loads")]
    assert calls == [1]


def test_the_hash_of_the_middlewares_parse_is_the_request_hash() -> None:
    """Equal by construction for every body the middleware lets through: the same
    canonical JSON (sorted keys, ``1.0`` equal to ``1``, exact decimals, UTF-8)."""
    from api import jsonbody
    from idempotency.canonical import parsed_hash, request_hash

    bodies = [b'{"b": 1, "a": [1.0, 2.50, -3e2, 0.1]}', b'{"a":[{"z":null,"y":true}]}',
              '{"name": "Zoë ✓", "n": 9223372036854775807}'.encode(), b' [1, 2] ',
              b'{"x": 1e-7, "y": 123456789.123456789123}', b'"text"', b"0"]
    for body in bodies:
        problem, parsed = jsonbody.check(body)
        assert problem is None, body
        assert parsed is not None, body
        assert parsed_hash(parsed.value_of(body)) == request_hash(body), body
    assert jsonbody.check(b"  ") == (None, None)
    assert jsonbody.check(b'{"n": NaN}')[1] is None
    assert jsonbody.check(b'{"n": 99999999999999999999999}')[1] is None
