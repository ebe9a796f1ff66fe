"""Publishing a feed build is all-or-nothing (``feeds.generations``): a build that fails
partway leaves the previous shard set served intact, whole; a build that succeeds
replaces it whole. The failure is the operating system's: the build process may not
write a file bigger than 96 KB (``RLIMIT_FSIZE``), and the catalog's last product is
bigger than that, so the build fails after its first shards are complete."""

from __future__ import annotations

import asyncio
import gzip
import json
import resource
import signal
import subprocess
import sys
from pathlib import Path

import orjson

from api.runtime import Runtime
from feeds.builder import FeedConfig
from feeds.parsing import parse_acp_jsonl
from feeds.publish import BuildReport, run_build
from feeds.reader import database_url
from feeds.service import import_catalog
from tests.conftest import app_client, sandbox_runtime

MAX_ITEMS = 5  # small shards: a set of several files per format
LIMIT = 96 * 1024


async def catalog(runtime: Runtime, label: str, *, huge: bool = False) -> None:
    """30 products titled ``label``; with ``huge``, a last product (by id, so written
    last) whose description alone exceeds ``LIMIT``."""
    lines = [json.dumps({
        "id": f"gen-{n:03d}", "title": f"{label} mug {n}",
        "description": {"plain": f"A {label} mug."},
        "variants": [{"id": f"gen-{n:03d}-1", "title": f"{label} mug {n}",
                      "price": {"amount": 1200 + n, "currency": "EUR"}}]})
        for n in range(30)]
    if huge:
        lines.append(json.dumps({
            "id": "gen-zzz", "title": f"{label} giant",
            "description": {"plain": "giant " * 40_000},
            "variants": [{"id": "gen-zzz-1", "title": "giant",
                          "price": {"amount": 100, "currency": "EUR"}}]}))
    await import_catalog(runtime.sessionmaker, parse_acp_jsonl(lines))


def served(out: Path, report: BuildReport) -> dict[str, bytes]:
    """Every file of a build's set, read through the published names."""
    names = [f for files in report.files.values() for f in files] + ["report.json"]
    return {name: (out / name).read_bytes() for name in names}


def text(files: dict[str, bytes]) -> str:
    return "".join((gzip.decompress(data) if name.endswith(".gz") else data).decode()
                   for name, data in sorted(files.items()))


def limited() -> None:
    """In the build process: files may not grow beyond ``LIMIT``; a write past it fails
    with EFBIG (instead of the default SIGXFSZ kill)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT, LIMIT))


def build_in_limited_process(url: str, out: Path, config: FeedConfig,
                             processes: int) -> subprocess.CompletedProcess[str]:
    script = ("import sys, orjson\n"
              "from feeds.build_job import config_from\n"
              "from feeds.publish import run_build\n"
              "a = orjson.loads(sys.argv[1])\n"
              "run_build(a['url'], __import__('pathlib').Path(a['out']),"
              " config_from(a['config']), max_items=a['max_items'],"
              " processes=a['processes'])\n")
    import dataclasses
    argument = orjson.dumps({"url": url, "out": str(out), "max_items": MAX_ITEMS,
                             "config": dataclasses.asdict(config),
                             "processes": processes}).decode()
    return subprocess.run([sys.executable, "-B", "-c", script, argument],
                          preexec_fn=limited, capture_output=True, text=True, timeout=120,
                          check=False)


async def test_a_build_failing_partway_leaves_the_previous_set_served_whole(
        database_url: str, tmp_path: Path) -> None:
    out = tmp_path / "feeds"
    async with sandbox_runtime(database_url, feeds_dir=out) as rt:
        url = database_url_of(rt)
        config = rt.settings.feed_config(rt.profile)
        await catalog(rt, "red")
        first = await asyncio.to_thread(run_build, url, out, config, max_items=MAX_ITEMS)
        assert len(first.files["acp"]) > 3  # several shards, then metadata.json
        before = served(out, first)
        assert "red mug" in text(before)

        await catalog(rt, "blue", huge=True)
        for processes in (1, 2):  # one process; key ranges joined (feeds.parallel)
            failed = await asyncio.to_thread(build_in_limited_process, url, out, config,
                                             processes)
            assert failed.returncode != 0
            assert "File too large" in failed.stderr, failed.stderr[-2000:]
            # The shards this build had completed were not published: the previous
            # set, every file of it, is what readers and the pull endpoint see.
            assert served(out, first) == before
            assert sorted(p.name for p in (out / ".generations").iterdir()) == [
                ".lock", Path(first.generation).name]  # its own files are gone
            async with app_client(rt) as client:
                for name, data in before.items():
                    if name != "report.json":
                        response = await client.get(f"/feeds/{name}")
                        assert response.status_code == 200, name
                        assert response.content == data, name

        second = await asyncio.to_thread(run_build, url, out, config, max_items=MAX_ITEMS)
        after = served(out, second)
        assert "blue giant" in text(after)
        assert "red mug" not in text(after)  # replaced whole: no file of the first set left
        for folder in ("acp", "openai", "google"):
            listed = sorted(f for files in second.files.values() for f in files
                            if f.startswith(f"{folder}/"))
            assert sorted(f"{folder}/{p.name}" for p in (out / folder).iterdir()) == listed
        assert sorted(p.name for p in (out / ".generations").iterdir()) == [
            ".lock", Path(second.generation).name]  # the previous generation is removed
        async with app_client(rt) as client:
            shard = await client.get("/feeds/acp/products-00001.jsonl")
            assert shard.content == after["acp/products-00001.jsonl"]
            hidden = await client.get(f"/feeds/{second.generation}/acp/products-00001.jsonl")
            assert hidden.status_code == 404  # only the published names are served


def database_url_of(rt: Runtime) -> str:
    return database_url(rt.sessionmaker.kw["bind"])


async def test_a_folder_from_before_generations_is_taken_over(
        runtime: Runtime, tmp_path: Path) -> None:
    """Files written by an older release, straight into the folder: the first build
    publishes through ``.current`` and the old files are removed."""
    out = tmp_path / "feeds"
    (out / "acp").mkdir(parents=True)
    (out / "acp" / "products-00009.jsonl").write_text("{}\n")
    (out / "report.json").write_text("{}")
    (out / "google").write_text("a file where a folder goes")
    report = await asyncio.to_thread(run_build, database_url_of(runtime), out,
                                     runtime.settings.feed_config(runtime.profile))
    for name in ("acp", "openai", "google", "report.json"):
        assert (out / name).is_symlink()
    assert not (out / "acp" / "products-00009.jsonl").exists()
    assert json.loads((out / "report.json").read_text())["variants"] == report.variants
    assert sorted(p.name for p in (out / ".generations").iterdir()) == [
        ".lock", Path(report.generation).name]


async def test_two_builds_at_once_leave_one_complete_set(runtime: Runtime,
                                                         tmp_path: Path) -> None:
    """Two builds into one folder (the worker's and a CLI one): each publishes whole, the
    later switch wins, neither removes the other's work in progress, one set remains."""
    out = tmp_path / "feeds"
    url = database_url_of(runtime)
    config = runtime.settings.feed_config(runtime.profile)
    a, b = await asyncio.gather(
        asyncio.to_thread(run_build, url, out, config, max_items=MAX_ITEMS),
        asyncio.to_thread(run_build, url, out, config, max_items=MAX_ITEMS, processes=2))
    current = (out / ".current").readlink().name
    assert current in (Path(a.generation).name, Path(b.generation).name)
    assert sorted(p.name for p in (out / ".generations").iterdir()) == [".lock", current]
    winner = a if Path(a.generation).name == current else b
    assert served(out, winner) == served(out / winner.generation, winner)
