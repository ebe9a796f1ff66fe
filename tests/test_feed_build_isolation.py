"""Issue 16: a feed build never runs on the API's event loop nor through its write engine.

Before, a refresh built and gzipped the feeds on the event loop through the single write
connection: during a 40k-variant build ``/healthz`` stalled up to 749 ms and creates up to
996 ms. Now the build is a process of its own reading through its own connection, so the
API answers while a build is in progress. The build is held mid-way deterministically: it
is stopped (SIGSTOP) as soon as it starts and only resumed after the API has answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import signal
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from api.runtime import Runtime
from feeds.publish import build_feeds
from feeds.reader import database_url, read_catalog
from models import OutboxMessage, Variant
from models.db import transaction
from tests.conftest import US_ADDRESS, Agent, app_client, sandbox_runtime

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGSTOP"), reason="POSIX signals")


async def test_the_api_answers_while_a_build_is_in_progress(
        database_url: str, tmp_path: Path, backend: str) -> None:
    async with sandbox_runtime(database_url, feeds_dir=tmp_path) as rt:
        stopped: list[int] = []
        held = asyncio.Event()

        def hold(pid: int) -> None:  # the build process exists: hold it where it is
            os.kill(pid, signal.SIGSTOP)
            stopped.append(pid)
            held.set()

        build = asyncio.create_task(build_feeds(
            rt.sessionmaker, tmp_path / "feeds", rt.settings.feed_config(rt.profile),
            on_started=hold))
        try:
            await held.wait()
            async with app_client(rt) as http:
                agent = Agent(http)
                health = await http.get("/healthz")
                created = await agent.create(line_items=[{"id": "item_123"}],
                                             fulfillment_details={"address": US_ADDRESS})
                assert health.status_code == 200
                assert created.status_code == 201, created.text
                # ... and the checkout sessions' writes went through the write engine while
                # the build held its own connection.
                completed = await agent.complete(created.json()["id"])
                assert completed.status_code == 200, completed.text
            assert not build.done()  # answered while the build was in progress
        finally:
            for pid in stopped:
                os.kill(pid, signal.SIGCONT)
        report = await build
    assert report.variants >= 72
    assert (tmp_path / "feeds" / "acp" / "products-00001.jsonl").is_file()


async def test_cancelling_a_build_ends_its_process(database_url: str, tmp_path: Path,
                                                   backend: str) -> None:
    async with sandbox_runtime(database_url) as rt:
        pids: list[int] = []
        held = asyncio.Event()

        def hold(pid: int) -> None:
            os.kill(pid, signal.SIGSTOP)
            pids.append(pid)
            held.set()

        build = asyncio.create_task(build_feeds(
            rt.sessionmaker, tmp_path, rt.settings.feed_config(rt.profile), on_started=hold))
        await held.wait()
        build.cancel()
        with pytest.raises(asyncio.CancelledError):
            await build
    with pytest.raises(ProcessLookupError):  # killed and reaped
        os.kill(pids[0], 0)
    assert not (tmp_path / "report.json").exists()


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (Linux ``/proc``)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended meanwhile
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _state(pid: int) -> str:
    """``R``, ``S``, ``T`` (stopped), ``Z`` (ended, not yet reaped)…; "" once reaped."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return ""


async def _until(condition: Any, what: str, within: float = 60.0) -> Any:
    """Polls ``condition`` until it is truthy; fails the test after ``within`` seconds."""
    try:
        async with asyncio.timeout(within):
            while not (value := condition()):  # noqa: ASYNC110 (other processes)
                await asyncio.sleep(0.005)
    except TimeoutError:
        raise AssertionError(f"timed out: {what}") from None
    return value


PR_SET_CHILD_SUBREAPER = 36  # prctl(2)


def _subreaper(on: bool) -> None:
    """This process adopts its descendants' orphans (Linux ``prctl``): a part process
    whose build process was killed becomes this test's child, to be waited for."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def _killed(pid: int) -> int | None:
    """The signal that ended ``pid`` once it has ended and been adopted by this process
    (and reaped here); None before."""
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:  # not (yet) this process's child
        return None
    if done == 0:
        return None
    return os.WTERMSIG(status) if os.WIFSIGNALED(status) else -os.WEXITSTATUS(status)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux /proc, prctl")
async def test_cancelling_a_parallel_build_kills_its_part_processes(
        database_url: str, tmp_path: Path, backend: str) -> None:
    """The build process makes itself a process group and its part processes are in it:
    cancelling kills the group. Held deterministically: the part process is stopped
    (SIGSTOP) as soon as it exists, so it cannot end on its own (and the build, which waits
    for its parts, cannot finish) before the cancel. This process is made a subreaper, so
    the part, orphaned when its build process is killed, is adopted here: its process
    group stays non-orphaned (no SIGHUP that would end a stopped member of an orphaned
    group), and waiting for it tells what ended it."""
    builds: list[int] = []
    parts: list[int] = []
    ended: dict[int, int] = {}
    _subreaper(True)
    try:
        async with sandbox_runtime(database_url) as rt:
            build = asyncio.create_task(build_feeds(
                rt.sessionmaker, tmp_path, rt.settings.feed_config(rt.profile),
                on_started=builds.append, processes=2))
            await _until(lambda: builds and _children(builds[0]), "the part process started")
            parts = _children(builds[0])
            assert len(parts) == 1
            for pid in parts:
                os.kill(pid, signal.SIGSTOP)
                await _until(lambda pid=pid: _state(pid) == "T", f"part {pid} stopped")
                assert os.getpgid(pid) == builds[0]  # in the build's process group
            assert not build.done()
            build.cancel()
            with pytest.raises(asyncio.CancelledError):
                await build
            for pid in parts:
                ended[pid] = await _until(lambda pid=pid: _killed(pid),
                                          f"part {pid} killed", within=30)
        assert ended == {pid: signal.SIGKILL for pid in parts}
        assert not (tmp_path / ".current").exists()  # nothing published
    finally:  # a failed assertion must not leave stopped processes behind
        for pid in parts:
            if pid not in ended and _state(pid) not in ("", "Z"):
                os.kill(pid, signal.SIGKILL)
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, os.WNOHANG)  # noqa: ASYNC222 (reaped if adopted)
        _subreaper(False)


async def test_a_build_reads_one_snapshot_and_never_blocks_writers(runtime: Runtime) -> None:
    """The build's read connection keeps one consistent catalog while the API writes."""
    url = database_url(runtime.sessionmaker.kw["bind"])
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(1) as thread:  # the reader is synchronous: off this loop
        chunks = read_catalog(url, snapshot=True, chunk=5)
        first = await loop.run_in_executor(thread, next, chunks)  # the snapshot is open
        seen = {v.id: v.price_amount for p in first for v in p.variants}
        async with transaction(runtime.sessionmaker) as db:  # not blocked by the reader
            await db.execute(update(Variant).values(price_amount=Variant.price_amount + 1))
        rest = await loop.run_in_executor(thread, list, chunks)
    for chunk in rest:
        seen.update({v.id: v.price_amount for p in chunk for v in p.variants})
    async with runtime.read_sessionmaker() as db:
        now = dict((await db.execute(select(Variant.id, Variant.price_amount))).tuples().all())
    assert seen
    assert {vid: price + 1 for vid, price in seen.items()} == {
        vid: now[vid] for vid in seen}  # every price as before the write


async def test_a_refresh_requested_through_the_api_builds_in_the_worker(
        database_url: str, tmp_path: Path, backend: str) -> None:
    """POST /feeds/refresh queues; the worker builds (in its own process) while the API
    keeps answering; the refresh is delivered and the files are published."""
    from api.worker import run_once

    async with sandbox_runtime(database_url, feeds_dir=tmp_path,
                               merchant_api_keys=["merchant-key"]) as rt:
        async with app_client(rt) as http:
            queued = await http.post("/feeds/refresh",
                                     headers={"Authorization": "Bearer merchant-key",
                                              "Idempotency-Key": "refresh-1"})
            assert queued.status_code == 202, queued.text
            worker = asyncio.create_task(run_once(rt, wait=120))
            answers = [(await http.get("/healthz")).status_code for _ in range(5)]
            await worker
        async with rt.read_sessionmaker() as db:
            message = await db.scalar(select(OutboxMessage).where(
                OutboxMessage.topic == "feeds_refresh"))
    assert answers == [200] * 5
    assert message is not None
    assert message.status == "delivered"
    assert json.loads((tmp_path / "report.json").read_text())["variants"] >= 72


def build_processes() -> list[int]:
    """This process's feed build children (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat[1]) == os.getpid() and b"feeds.build_job" in command:
            found.append(int(entry.name))
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="Linux /proc")
async def test_a_long_refresh_keeps_its_lease_and_outlives_the_partner_deadline(
        database_url: str, tmp_path: Path, backend: str) -> None:
    """A refresh held longer than the outbox's per-call deadline is not cut short, and
    while it runs its message is not started again (it renews its lease)."""
    from api.worker import run_once
    from feeds.refresh import FEEDS_REFRESH, FeedRefresher, request_refresh

    async with sandbox_runtime(database_url, feeds_dir=tmp_path,
                               outbox_delivery_deadline_seconds=0.5) as rt:
        refresher = rt.outbox_deliverers[FEEDS_REFRESH]
        assert isinstance(refresher, FeedRefresher)
        refresher.renew_every = 0.05  # (a setting of the refresher; 30 s by default)
        async with rt.sessionmaker() as db, db.begin():
            assert await request_refresh(db, "merchant_request")
        worker = asyncio.create_task(run_once(rt, wait=120))
        while not (pids := build_processes()):  # noqa: ASYNC110 (another process)
            await asyncio.sleep(0.01)
        os.kill(pids[0], signal.SIGSTOP)
        try:
            async with rt.read_sessionmaker() as db:
                leased = (await db.scalar(select(OutboxMessage).where(
                    OutboxMessage.topic == FEEDS_REFRESH))).leased_until
            renewed = leased
            while renewed == leased:  # noqa: ASYNC110 (written by the refresher's task)
                await asyncio.sleep(0.05)
                async with rt.read_sessionmaker() as db:
                    renewed = (await db.scalar(select(OutboxMessage).where(
                        OutboxMessage.topic == FEEDS_REFRESH))).leased_until
            await asyncio.sleep(1.0)  # twice the per-call deadline
            assert await run_once(rt, wait=0) == 0  # nothing due: it is still leased
            assert build_processes() == pids  # one build, not two
            assert not worker.done()
        finally:
            os.kill(pids[0], signal.SIGCONT)
        await worker
        async with rt.read_sessionmaker() as db:
            message = await db.scalar(select(OutboxMessage).where(
                OutboxMessage.topic == FEEDS_REFRESH))
    assert leased is not None
    assert renewed is not None
    assert renewed > leased
    assert message.status == "delivered", message.last_error
    assert (tmp_path / "report.json").is_file()
