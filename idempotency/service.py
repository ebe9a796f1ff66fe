"""Idempotency for every write of every protocol binding (ACP REST, MCP, UCP) and the
merchant API: one database store, protocol-neutral.

The binding supplies the scope (principal + a path-like operation name), the key (ACP's
``Idempotency-Key`` header, MCP's ``meta.idempotency_key``…), a hash of the canonical
request, the HTTP-like status to use when a key is reused with another body
(``conflict_status``: 422 in ACP 2026-04-17, 409 in ACP 2025-09-29 and UCP) and how to
render a stored error (``render_error``). ``run`` returns an ``Outcome`` (status, body
bytes, headers, ``replayed``) that the binding puts on its wire.

* Scope: principal + path + key.
* Equivalence: SHA-256 of the canonical JSON body (key order and whitespace ignored,
  ``null`` ≠ absent, array order matters).
* Flow: *claim* the key (unique row, ``in_flight``), run the operation in the request
  transaction and mark the key ``done`` **in that same transaction**, so the stored
  response exists iff the effect committed. Operations that call out (a PSP) or commit
  midway claim in their own short transaction first; self-contained ones (``atomic``)
  run optimistically in one transaction and record the key, done, at its end.
* Same key + same body → stored status and body, ``Idempotent-Replayed: true``.
  Same key + other body → ``conflict_status`` ``idempotency_conflict``. Still running → 409
  ``idempotency_in_flight`` + ``Retry-After``. 5xx (and retryable 409/429) are not kept.
* A claim whose process died is retaken after ``lock_seconds``; rows live ≥ 24 h.

Everything is in the database, so it holds across any number of API processes.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from idempotency import repository as store
from models.base import new_id, utc_now
from models.db import UnitOfWork
from models.errors import AppError, Conflict, InvalidRequest
from models.statuses import IdempotencyState

log = logging.getLogger("reelcart.idempotency")

Handler = Callable[[AsyncSession], Awaitable[dict[str, Any]]]
# ``claim(db)``: claims the key in ``db``'s (the handler's first) transaction.
Claim = Callable[[AsyncSession], Awaitable[None]]
ClaimingHandler = Callable[[AsyncSession, Claim], Awaitable[dict[str, Any]]]
_NOT_STORED = frozenset({409, 429})


class IdempotencyConflict(AppError):
    status_code = 422
    code = "idempotency_conflict"


class _KeyExists(Exception):
    """The optimistic insert found the key taken; roll back and claim first."""


class _Replay(Exception):  # noqa: N818 (control flow, not an error)
    """The key was done: unwind the handler's first transaction and answer the stored
    response."""

    def __init__(self, outcome: Outcome) -> None:
        self.outcome = outcome


class _ClaimRefused(Exception):  # noqa: N818
    """A conflict or in-flight key, carried out of the handler untouched (it belongs to
    the other request, so nothing is stored or released)."""

    def __init__(self, error: AppError) -> None:
        self.error = error


class _HandlerFailed(Exception):
    """Carries a handler's AppError out of its (rolled back) transaction."""

    def __init__(self, error: AppError) -> None:
        self.error = error


def _storable(exc: AppError) -> bool:
    return exc.status_code < 500 and exc.status_code not in _NOT_STORED


@dataclass(frozen=True, slots=True)
class Outcome:
    """What to send back: the stored or fresh status and JSON body."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def replayed(self) -> bool:
        return self.headers.get("Idempotent-Replayed") == "true"


def json_response(status: int, body: bytes, headers: dict[str, str]) -> Outcome:
    return Outcome(status, body, headers)


def _error_body(exc: AppError) -> dict[str, Any]:
    return exc.body()


class IdempotentCall:
    def __init__(self, *, sessionmaker: async_sessionmaker[AsyncSession], principal: str,
                 path: str, key: str, body_hash: str, retention: timedelta,
                 lock: timedelta, conflict_status: int = 422,
                 render_error: Callable[[AppError], dict[str, Any]] = _error_body) -> None:
        self.sessionmaker = sessionmaker
        self.principal = principal
        self.path = path
        self.key = key
        self.body_hash = body_hash
        self.retention = retention
        self.lock = lock
        self.headers = {"Idempotency-Key": key}
        self.conflict_status = conflict_status
        self.render_error = render_error

    async def run(self, handler: Handler, *, status_code: int = 200,
                  atomic: bool = False) -> Outcome:
        """``atomic=True`` is for handlers that do all their work in ``db`` (no provider
        calls, no other sessions): the key is recorded in the same transaction as the
        effect, which saves a transaction and a statement per request. A concurrent
        duplicate then waits for the first to commit and replays it instead of getting
        409; its own effect is rolled back."""
        if atomic:
            return await self._run_atomic(handler, status_code)
        record_id, replay = await self._claim()
        if replay is not None:
            return replay
        try:
            async with self.sessionmaker() as db:
                async with db.begin():
                    payload = await handler(db)
                    # A handler may answer another status (UCP: 402 after a decline that
                    # must still commit): a result carrying ``status_code``.
                    status_code = getattr(payload, "status_code", status_code)
                    body = orjson.dumps(payload)
                    await store.finish(db, record_id, status_code, body.decode())
            return json_response(status_code, body, self.headers)
        except AppError as exc:
            if not _storable(exc):
                await self._release(record_id)
                raise
            async with self.sessionmaker() as db, db.begin():
                return await self._finish_with_error(db, record_id, exc)
        except BaseException:
            await self._release(record_id)
            raise

    async def run_claiming(self, handler: ClaimingHandler, *, status_code: int = 200
                           ) -> Outcome:
        """For handlers that commit midway (complete: a recovery point, then the payment
        provider, then the outcome): the handler calls ``claim(db)`` first thing in its
        first transaction, so the key commits together with that transaction's work
        instead of in a transaction of its own. ``db`` is the handler's last transaction,
        where the key is marked done with the response (as in ``run``).

        If the first transaction rolls back, the claim goes with it; an error the handler
        raises is then stored by claiming anew (as ``run_atomic`` does). A stored response
        or a conflict raised by ``claim`` unwinds the handler with nothing done."""
        claimed: list[str] = []

        async def claim(db: AsyncSession) -> None:
            try:
                record_id, replay = await self._claim_in(db)
            except AppError as exc:
                raise _ClaimRefused(exc) from None
            if replay is not None:
                raise _Replay(replay)
            claimed.append(record_id)

        try:
            async with self.sessionmaker() as db:
                async with db.begin():
                    payload = await handler(db, claim)
                    if not claimed:
                        raise RuntimeError("the handler did not claim the idempotency key")
                    status_code = getattr(payload, "status_code", status_code)
                    body = orjson.dumps(payload)
                    await store.finish(db, claimed[-1], status_code, body.decode())
            return json_response(status_code, body, self.headers)
        except _Replay as replayed:
            return replayed.outcome
        except _ClaimRefused as refused:
            raise refused.error from None
        except AppError as exc:
            record_id = claimed[-1] if claimed else None
            if not _storable(exc):
                if record_id is not None:
                    await self._release(record_id)
                raise
            return await self._store_failure(exc, record_id)
        except BaseException:
            if claimed:
                await self._release(claimed[-1])
            raise

    async def _run_atomic(self, handler: Handler, status_code: int) -> Outcome:
        """Optimistic: run the handler, then record the key as done with its response in
        one INSERT. If the key already exists (a retry, or a duplicate that committed
        first) the INSERT does nothing; the effect is rolled back and the request is
        resolved by claiming first (replay, 409, 422, or an expired key reused)."""
        try:
            # The session begins with its first statement and rolls back on close unless
            # committed: the same unit of work as ``db.begin()``, cheaper (see UnitOfWork).
            async with UnitOfWork(self.sessionmaker) as db:
                body = await self._handle(handler, db)
                if not await self._insert(db, new_id("idk"), utc_now(),
                                          response=(status_code, body.decode())):
                    raise _KeyExists
                await db.commit()
            return json_response(status_code, body, self.headers)
        except _KeyExists:
            return await self._run_atomic_claimed(handler, status_code)
        except _HandlerFailed as failed:
            return await self._handler_failed(failed.error)

    async def _run_atomic_claimed(self, handler: Handler, status_code: int) -> Outcome:
        try:
            async with self.sessionmaker() as db, db.begin():
                record_id, replay = await self._claim_in(db)
                if replay is not None:
                    return replay
                body = await self._handle(handler, db)
                await store.finish(db, record_id, status_code, body.decode())
            return json_response(status_code, body, self.headers)
        except _HandlerFailed as failed:
            return await self._handler_failed(failed.error)

    @staticmethod
    async def _handle(handler: Handler, db: AsyncSession) -> bytes:
        try:
            return orjson.dumps(await handler(db))
        except AppError as exc:
            raise _HandlerFailed(exc) from exc

    async def _handler_failed(self, error: AppError) -> Outcome:
        # The rollback took any claim with it: nothing to release.
        if not _storable(error):
            raise error from None
        return await self._store_failure(error)

    async def _store_failure(self, exc: AppError, record_id: str | None = None) -> Outcome:
        """Keep a 4xx outcome of an atomic call, unless a duplicate got there first.
        ``record_id``: a claim that may have committed (``run_claiming``): finished if it
        is still ours and in flight, else the key is claimed anew."""
        async with self.sessionmaker() as db, db.begin():
            if record_id is not None:
                body = orjson.dumps(self.render_error(exc))
                if await store.finish_in_flight(db, record_id, exc.status_code,
                                                body.decode()):
                    return json_response(exc.status_code, body,
                                         {**self.headers, **exc.headers})
            record_id, replay = await self._claim_in(db)
            if replay is not None:
                return replay
            return await self._finish_with_error(db, record_id, exc)

    async def _finish_with_error(self, db: AsyncSession, record_id: str, exc: AppError
                                 ) -> Outcome:
        body = orjson.dumps(self.render_error(exc))
        await store.finish(db, record_id, exc.status_code, body.decode())
        return json_response(exc.status_code, body, {**self.headers, **exc.headers})

    async def _release(self, record_id: str) -> None:
        try:
            async with self.sessionmaker() as db, db.begin():
                await store.release(db, record_id)
        except Exception:  # the claim expires on its own; never mask the real error
            log.exception("could not release idempotency claim")

    async def _claim(self) -> tuple[str, Outcome | None]:
        async with self.sessionmaker() as db, db.begin():
            return await self._claim_in(db)

    async def _claim_in(self, db: AsyncSession) -> tuple[str, Outcome | None]:
        """Claim the key in ``db``'s transaction: (record id, None) to go ahead, or
        (record id, stored response) to replay. Raises 422 / 409 for conflicts."""
        now = utc_now()
        record_id = new_id("idk")
        if await self._insert(db, record_id, now):  # the common case: a new key
            return record_id, None
        rec = await store.find(db, self.principal, self.path, self.key, lock=True)
        if rec is None:  # deleted between the two statements: treat as concurrent
            raise self._in_flight()
        if rec.expires_at <= now:  # past retention: a reused key is a new request
            rec.request_hash = self.body_hash
            rec.state = IdempotencyState.in_flight
            rec.status_code = None
            rec.response_body = None
            rec.created_at = now
            rec.locked_until = now + self.lock
            rec.expires_at = now + self.retention
            return rec.id, None
        if rec.request_hash != self.body_hash:
            raise IdempotencyConflict(
                "This Idempotency-Key was already used with a different request body.",
                param="Idempotency-Key", status_code=self.conflict_status)
        if rec.state == IdempotencyState.done:
            assert rec.status_code is not None
            assert rec.response_body is not None
            return rec.id, json_response(
                rec.status_code, rec.response_body.encode(),
                {**self.headers, "Idempotent-Replayed": "true"})
        if rec.locked_until > now:
            raise self._in_flight()
        rec.locked_until = now + self.lock  # the previous owner died: take over
        return rec.id, None

    async def _insert(self, db: AsyncSession, record_id: str, now: datetime, *,
                      response: tuple[int, str] | None = None) -> bool:
        """One statement: the key in flight, or done with ``response``. False if taken."""
        return await store.try_insert(
            db, record_id=record_id, principal=self.principal, path=self.path, key=self.key,
            request_hash=self.body_hash, now=now, locked_until=now + self.lock,
            expires_at=now + self.retention, response=response)

    def _in_flight(self) -> Conflict:
        return Conflict("A request with this Idempotency-Key is still being processed.",
                        code="idempotency_in_flight", headers={"Retry-After": "1"})


def require_key(value: str | None) -> str:
    if value is None or not value.strip():
        raise InvalidRequest("The Idempotency-Key header is required on every POST.",
                             code="idempotency_key_required", param="Idempotency-Key")
    if len(value) > 255:
        raise InvalidRequest("Idempotency-Key must be at most 255 characters.",
                             code="invalid_idempotency_key", param="Idempotency-Key")
    return value
