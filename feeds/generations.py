"""The published feed set switches all at once.

A build writes its whole shard set (ACP, OpenAI, Google, the report) into a generation
folder of its own, ``.generations/<id>/``, beside the one being served; only when it is
complete does one atomic step make it current: ``.current``, a symbolic link to the
generation, is replaced with ``os.replace``. The published names are links through it::

    feeds_dir/acp         -> .current/acp
    feeds_dir/openai      -> .current/openai
    feeds_dir/google      -> .current/google
    feeds_dir/report.json -> .current/report.json
    feeds_dir/.current    -> .generations/<id>

so every path a reader opens (the pull endpoints, the dashboard, a web server pointed at
the folder) resolves into one complete set, the previous one until the switch and the new
one after it; a build that fails (or is killed) partway leaves the previous set served
intact and its own generation is removed. After the switch the other generations are
removed; a reader that still has one of their files open keeps reading it (POSIX).

Builds in progress are told apart by ``<id>.building``, a file their process holds an
exclusive ``flock`` on: a generation whose lock can be taken belongs to a build that died,
and is removed by the next build. Starting, switching and cleaning up happen under
``.generations/.lock``, so two builds (the worker's and a CLI one) never remove each
other's work; the later switch wins.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

GENERATIONS = ".generations"
CURRENT = ".current"
PUBLISHED = ("acp", "openai", "google", "report.json")
_BUILDING = ".building"


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    with open(folder / ".lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield  # released when the file closes


def _try_lock(path: Path) -> IO[bytes] | None:
    """``path`` opened and exclusively locked, or None when another process holds it."""
    handle = open(path, "a+b")  # noqa: SIM115 (the caller closes it)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def current_generation(feeds_dir: Path) -> Path:
    """The folder of the set served now, pinned (a later switch does not move it): for a
    reader of several files that must come from one build. ``feeds_dir`` itself when no
    build has published yet (a folder laid out by hand)."""
    link = feeds_dir / CURRENT
    try:
        target = os.readlink(link)
    except OSError:
        return feeds_dir
    return feeds_dir / target


@contextmanager
def new_generation(feeds_dir: Path) -> Iterator[Path]:
    """A fresh generation folder to build into; made current when the block ends without
    an error, removed when it raises."""
    feeds_dir.mkdir(parents=True, exist_ok=True)
    generations = feeds_dir / GENERATIONS
    generations.mkdir(exist_ok=True)
    with _locked(generations):
        name = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ-") + secrets.token_hex(4)
        building = generations / f"{name}{_BUILDING}"
        held = _try_lock(building)
        assert held is not None  # a new name: nobody else has it
        folder = generations / name
        folder.mkdir()
    try:
        try:
            yield folder
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            building.unlink(missing_ok=True)
            raise
        with _locked(generations):
            _switch(feeds_dir, folder)
            building.unlink(missing_ok=True)
            _remove_others(generations, keep=folder.name)
    finally:
        held.close()


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _switch(feeds_dir: Path, folder: Path) -> None:
    """The one atomic step: ``.current`` points at ``folder``. Then the published names
    are made links through ``.current`` if they are not yet (a folder from before
    generations: its files move aside, to be removed with the old generations)."""
    _fsync_dir(folder)
    for sub in folder.iterdir():
        if sub.is_dir():
            _fsync_dir(sub)
    _replace_link(feeds_dir / CURRENT, f"{GENERATIONS}/{folder.name}")
    legacy: Path | None = None
    for name in PUBLISHED:
        entry = feeds_dir / name
        target = f"{CURRENT}/{name}"
        if entry.is_symlink() and os.readlink(entry) == target:
            continue
        if entry.is_dir() and not entry.is_symlink():
            if legacy is None:
                legacy = feeds_dir / GENERATIONS / f"legacy-{secrets.token_hex(4)}"
                legacy.mkdir()
            entry.rename(legacy / name)
        _replace_link(entry, target)
    _fsync_dir(feeds_dir)


def _replace_link(path: Path, target: str) -> None:
    tmp = path.with_name(f"{path.name}.{secrets.token_hex(4)}.tmp")
    os.symlink(target, tmp)
    try:
        os.replace(tmp, path)  # atomic on POSIX
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _remove_others(generations: Path, *, keep: str) -> None:
    """Every generation but ``keep`` and those still being built."""
    for entry in generations.iterdir():
        if entry.name == ".lock" or entry.name == keep:
            continue
        if entry.name.endswith(_BUILDING):
            folder = entry.with_name(entry.name.removesuffix(_BUILDING))
            handle = _try_lock(entry)
            if handle is None:  # a build in progress
                continue
            with handle:  # its build died: its lock is free
                shutil.rmtree(folder, ignore_errors=True)
                entry.unlink(missing_ok=True)
            continue
        if (generations / f"{entry.name}{_BUILDING}").exists():
            continue  # handled with its lock file
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            with suppress(FileNotFoundError):
                entry.unlink()
