"""What update and complete cost the database, counted with a SQLAlchemy event listener on
the runtime's write engine (issue 16): the statements each request sends and the
transactions it commits. The figures are exact on both back ends, so a change that adds a
round trip to the checkout hot path fails here and has to say why.

complete (sandbox, charged, no attribution, no webhook subscription), 14 statements over
3 transactions:
  1. claim the key + recovery point: INSERT key, SELECT session, SELECT variants,
     UPDATE stock, UPDATE session, INSERT attempt
  2. the provider (the sandbox's own ledger): INSERT charge
  3. the outcome: SELECT session + attempt + agent + "has touches?" + "any Etsy link?",
     UPDATE attempt, INSERT order, INSERT order event, UPDATE session, INSERT ledger rows,
     UPDATE key (done, with the response)
The session and the attempt are written with Core UPDATEs (no unit-of-work flush).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import event, func, select
from sqlalchemy.orm import Session as OrmSession

from api.runtime import Runtime
from models import CheckoutSession, IdempotencyRecord, LedgerEntry, PaymentAttempt, Video
from tests.conftest import US_ADDRESS, Agent, sandbox_runtime
from tests.mcp_client import call, mcp_session, rest_agent, serving
from tests.mcp_client import meta as mcp_meta
from tests.test_ucp import merchant_config, payment, ready_checkout
from tests.ucp_platform import ucp_platform

MCP_PAY = {"handler_id": "card_tokenized", "instrument": {
    "type": "card", "credential": {"type": "spt", "token": "spt_test_success"}}}


@dataclass
class Counter:
    statements: list[str] = field(default_factory=list)
    commits: int = 0
    ends: list[int] = field(default_factory=list)  # len(statements) at each commit

    @property
    def transactions(self) -> list[list[str]]:
        """The statements of each committed transaction, in order."""
        starts = [0, *self.ends]
        return [self.statements[a:b] for a, b in zip(starts, self.ends, strict=False)]


@contextmanager
def counting(runtime: Runtime) -> Iterator[Counter]:
    """Statements and commits on the write engine while the block runs. ``BEGIN
    IMMEDIATE`` (how SQLite starts a write transaction) is the transaction, not a
    statement: PostgreSQL's BEGIN never reaches the cursor."""
    counter = Counter()
    engine = runtime.engine.sync_engine

    def on_execute(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not statement.lstrip().upper().startswith("BEGIN"):
            counter.statements.append(" ".join(statement.split())[:90])

    def on_commit(conn: Any) -> None:
        counter.commits += 1
        counter.ends.append(len(counter.statements))

    event.listen(engine, "before_cursor_execute", on_execute)
    event.listen(engine, "commit", on_commit)
    try:
        yield counter
    finally:
        event.remove(engine, "before_cursor_execute", on_execute)
        event.remove(engine, "commit", on_commit)


async def _ready(agent: Agent) -> str:
    created = await agent.create(line_items=[{"id": "item_123"}])
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def _warm_up(agent: Agent) -> None:
    """One full flow first: connections opened, per-connection set-up done."""
    session_id = await _ready(agent)
    assert (await agent.post(f"/checkout_sessions/{session_id}",
                             {"fulfillment_details": {"address": US_ADDRESS}})).status_code == 200
    assert (await agent.complete(session_id)).status_code == 200


async def test_update_is_4_statements_in_1_transaction(agent: Agent, runtime: Runtime,
                                                       backend: str) -> None:
    await _warm_up(agent)
    session_id = await _ready(agent)
    with counting(runtime) as counted:
        resp = await agent.post(f"/checkout_sessions/{session_id}",
                                {"fulfillment_details": {"address": US_ADDRESS}})
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "ready_for_payment"
    # SELECT session, SELECT variants, UPDATE session, INSERT key (done, with the response)
    assert (len(counted.statements), counted.commits) == (4, 1), counted.statements


async def test_update_with_new_lines_reads_the_catalog_once(agent: Agent, runtime: Runtime,
                                                            backend: str) -> None:
    """The variants loaded to check new lines are the ones they are priced from (before:
    a second SELECT of the same variants, 5 statements)."""
    await _warm_up(agent)
    session_id = await _ready(agent)
    with counting(runtime) as counted:
        resp = await agent.post(f"/checkout_sessions/{session_id}", {
            "line_items": [{"id": "item_123", "quantity": 2}, {"id": "few-left"}],
            "fulfillment_details": {"address": US_ADDRESS}})
    assert resp.status_code == 200, resp.text
    assert [(line["item"]["id"], line["quantity"]) for line in resp.json()["line_items"]] \
        == [("item_123", 2), ("few-left", 1)]
    assert resp.json()["status"] == "ready_for_payment"
    assert sum(s.startswith("SELECT variants.") for s in counted.statements) == 1, \
        counted.statements
    assert (len(counted.statements), counted.commits) == (4, 1), counted.statements


async def test_complete_is_14_statements_in_3_transactions(agent: Agent, runtime: Runtime,
                                                           backend: str) -> None:
    await _warm_up(agent)
    session_id = await _ready(agent)
    await agent.post(f"/checkout_sessions/{session_id}",
                     {"fulfillment_details": {"address": US_ADDRESS}})
    with counting(runtime) as counted:
        resp = await agent.complete(session_id, key="complete-once")
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "completed"
    # Before issue 16's second round: 21 statements in 4 transactions (the key claimed in
    # a transaction of its own, the session, attempt and agent loaded one by one, empty
    # UCP and commission-contract look-ups, the sandbox reading before inserting). Before
    # its third: 16 (a SELECT of the session's touches and one of the cart's Etsy links,
    # both empty, now answered by the statement that locks the session).
    assert (len(counted.statements), counted.commits) == (14, 3), counted.statements
    assert sum("idempotency_keys" in s for s in counted.statements) == 2  # claim, finish
    assert not any(s.startswith(("SELECT attribution_touches.", "SELECT etsy_listing_links."))
                   for s in counted.statements), counted.statements

    # A retry is answered from the key: one statement, nothing else touched.
    with counting(runtime) as replayed:
        again = await agent.complete(session_id, key="complete-once")
    assert again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == resp.json()
    assert all("idempotency_keys" in s for s in replayed.statements), replayed.statements
    assert replayed.commits == 0


async def test_complete_error_before_the_charge_is_stored_once_and_replayed(
        agent: Agent, runtime: Runtime, backend: str) -> None:
    """The claim shares the recovery point's transaction: a 4xx raised there rolls the
    claim back with it, then the error is kept under the key (claimed anew), so a retry
    replays it and nothing of the session changed."""
    session_id = await _ready(agent)
    await agent.post(f"/checkout_sessions/{session_id}",
                     {"fulfillment_details": {"address": US_ADDRESS}})
    body = {"payment_data": {"handler_id": "no_such_handler", "instrument": {
        "type": "card", "credential": {"type": "spt", "token": "spt_test_success"}}}}
    path = f"/checkout_sessions/{session_id}/complete"
    first = await agent.post(path, body, key="bad-handler")
    assert first.status_code == 400, first.text
    again = await agent.post(path, body, key="bad-handler")
    assert again.status_code == 400
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    async with runtime.read_sessionmaker() as db:
        keys = list(await db.scalars(select(IdempotencyRecord).where(
            IdempotencyRecord.key == "bad-handler")))
        status = await db.scalar(select(CheckoutSession.status).where(
            CheckoutSession.id == session_id))
        attempts = await db.scalar(select(func.count()).select_from(PaymentAttempt).where(
            PaymentAttempt.checkout_session_id == session_id))
    assert [(k.state, k.status_code) for k in keys] == [("done", 400)]
    assert status == "ready_for_payment"
    assert attempts == 0
    # The same key with another body is a conflict, and the stored answer stays.
    other = await agent.complete(session_id, key="bad-handler")
    assert other.status_code == 422
    assert other.json()["code"] == "idempotency_conflict"
    completed = await agent.complete(session_id)
    assert completed.json()["status"] == "completed"


async def test_attributed_complete_reads_touches_and_their_videos_at_once(
        agent: Agent, runtime: Runtime, backend: str) -> None:
    """A sale credited to a video (a web journey carrying ``video_id``): the ledger reads
    the session's touches together with the videos they name (before: a SELECT each),
    and the credited sale does ask for commission contracts."""
    async with runtime.sessionmaker() as db, db.begin():
        db.add(Video(id="vid-stmt", campaign="spring", creator="ava", generator="sora-2"))
    await _warm_up(agent)
    created = await agent.create(line_items=[{"id": "item_123"}],
                                 fulfillment_details={"address": US_ADDRESS},
                                 metadata={"video_id": "vid-stmt"})
    assert created.status_code == 201, created.text
    with counting(runtime) as counted:
        resp = await agent.complete(created.json()["id"])
    assert resp.status_code == 200, resp.text
    assert not any(s.startswith("SELECT videos.") for s in counted.statements), \
        counted.statements
    # The 14 of an unattributed complete, the session's touches with their videos, and the
    # contracts in force for the credit.
    assert sum(s.startswith("SELECT attribution_touches.") for s in counted.statements) == 1
    assert (len(counted.statements), counted.commits) == (16, 3), counted.statements
    async with runtime.read_sessionmaker() as db:
        credited = list(await db.execute(select(
            LedgerEntry.video_id, LedgerEntry.campaign, LedgerEntry.creator).where(
            LedgerEntry.order_id == resp.json()["order"]["id"],
            LedgerEntry.model == "last_touch")))
    assert [tuple(row) for row in credited] == [("vid-stmt", "spring", "ava")]


def _claims_with_the_recovery_point(counted: Counter) -> None:
    """The key is claimed by the first statement of the transaction that commits the
    recovery point (the payment attempt), not in a transaction of its own."""
    first = counted.transactions[0]
    assert first[0].startswith("INSERT INTO idempotency_keys"), first
    assert any(s.startswith("INSERT INTO payment_attempts") for s in first), first


async def test_mcp_complete_claims_its_key_with_the_recovery_point(
        runtime: Runtime, backend: str) -> None:
    """ACP over MCP: 3 transactions, as over REST (before: 4, the key claimed alone)."""
    async with serving(runtime) as app, mcp_session(app) as session:
        agent = rest_agent(app)
        warm = await agent.ready_session()
        await call(session, "complete_checkout_session", {
            "meta": mcp_meta(), "id": warm["id"], "payload": {"payment_data": MCP_PAY}})
        ready = await agent.ready_session()
        with counting(runtime) as counted:
            done, _ = await call(session, "complete_checkout_session", {
                "meta": mcp_meta(), "id": ready["id"], "payload": {"payment_data": MCP_PAY}})
    assert done["status"] == "completed"
    assert counted.commits == 3, counted.transactions
    _claims_with_the_recovery_point(counted)


async def test_ucp_complete_claims_its_key_with_the_recovery_point(
        database_url: str, tmp_path: Path, backend: str) -> None:
    """UCP over REST: the key, the instrument's notes and the recovery point commit
    together: 3 transactions (before: 5, the key and the notes each in their own)."""
    async with sandbox_runtime(database_url, merchant_config=merchant_config(tmp_path)) \
            as shop, ucp_platform(shop) as (platform, client):
        for key in ("warm-up", "pay"):
            cid = (await ready_checkout(platform, client))["id"]
            url = f"/ucp/checkout-sessions/{cid}/complete"
            with counting(shop) as counted:
                resp = await client.post(url, headers=platform.headers(key), json=payment())
            assert resp.status_code == 200, resp.text
            assert resp.json()["status"] == "completed"
        assert counted.commits == 3, counted.transactions
        _claims_with_the_recovery_point(counted)
        assert any(s.startswith("UPDATE ucp_checkouts") for s in counted.transactions[0])
        again = await client.post(url, headers=platform.headers("pay"), json=payment())
        assert again.headers.get("idempotent-replayed") == "true"
        assert again.json() == resp.json()


async def test_update_and_complete_write_without_a_unit_of_work_flush(
        agent: Agent, runtime: Runtime, backend: str) -> None:
    """The session, the payment attempt, the order and its rows are written with Core
    statements: no ORM flush runs during an update or a complete (before: one per update,
    two per complete, each several times the cost of its UPDATE)."""
    await _warm_up(agent)
    session_id = await _ready(agent)
    flushes: list[int] = []

    def on_flush(session: Any, context: Any, instances: Any) -> None:
        flushes.append(len(session.dirty) + len(session.new))

    event.listen(OrmSession, "before_flush", on_flush)
    try:
        updated = await agent.post(f"/checkout_sessions/{session_id}",
                                   {"fulfillment_details": {"address": US_ADDRESS}})
        completed = await agent.complete(session_id)
    finally:
        event.remove(OrmSession, "before_flush", on_flush)
    assert updated.status_code == 200, updated.text
    assert completed.json()["status"] == "completed", completed.text
    assert flushes == []
