"""``models.greenlets.run``: SQLAlchemy's ``greenlet_spawn`` protocol on reused greenlets
(issue 16: starting a greenlet per statement cost more than the statement's SQL)."""

from __future__ import annotations

import asyncio
import gc
import weakref
from contextvars import ContextVar

import pytest
from greenlet import getcurrent
from sqlalchemy.util import await_

from models.greenlets import run

_REQUEST: ContextVar[str] = ContextVar("request", default="none")


class _Result:
    pass


def _waits_then_answers(pause: float) -> tuple[str, object]:
    await_(asyncio.sleep(pause))  # a real wait on the event loop, as a lock wait is
    return _REQUEST.get(), getcurrent()


def _fails() -> None:
    raise LookupError("from inside the greenlet")


async def test_calls_wait_on_the_loop_see_their_task_context_and_reuse_one_greenlet(
        ) -> None:
    async def request(name: str, pause: float) -> tuple[str, object]:
        _REQUEST.set(name)
        return await run(_waits_then_answers, pause)

    # Two calls waiting at once need two greenlets, each with its task's context.
    (a, first), (b, second) = await asyncio.gather(request("a", 0.02), request("b", 0.01))
    assert (a, b) == ("a", "b")
    assert first is not second
    # One at a time, a kept greenlet serves every call: none is started.
    _, third = await request("c", 0)
    _, fourth = await request("d", 0)
    assert third is fourth
    assert third in (first, second)


async def test_an_exception_reaches_the_caller_and_the_greenlet_serves_on() -> None:
    with pytest.raises(LookupError, match="from inside the greenlet"):
        await run(_fails)
    assert await run(lambda: 42) == 42


async def test_an_idle_greenlet_keeps_neither_the_call_nor_its_result() -> None:
    result = _Result()
    kept = weakref.ref(result)
    assert await run(lambda r: r, result) is result
    del result
    gc.collect()
    assert kept() is None


async def test_a_cancelled_wait_cancels_the_call_inside_the_greenlet() -> None:
    seen: list[str] = []

    def waits() -> None:
        try:
            await_(asyncio.sleep(10))
        except asyncio.CancelledError:
            seen.append("cancelled inside")
            raise

    task = asyncio.create_task(run(waits))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen == ["cancelled inside"]
    assert await run(lambda: "still serving") == "still serving"
