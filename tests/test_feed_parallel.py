"""Issue 16, parallel feed builds: N processes build key ranges of the catalog and the
parts are joined into the ONE shard set a single-process build publishes — gzip shards
pigz-style (raw-deflate parts ended with a full flush, one header, a final empty block,
the CRC-32 combined from the parts'), so any gzip reader sees one member whose content is
the single-process build's byte for byte. Every entry point (API/worker refresh, the
CLI) builds this way with ``REELCART_FEED_BUILD_PROCESSES``."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import random
import sqlite3
import subprocess
import sys
import zlib
from contextlib import closing
from pathlib import Path

import orjson
import pytest
from sqlalchemy.engine import make_url

from api.runtime import Runtime
from api.settings import Settings
from feeds.builder import FeedConfig
from feeds.parallel import MAX_PROCESSES, PartFailed, default_processes
from feeds.parsing import parse_acp_jsonl
from feeds.parts import PartWriter, crc32_combine, crc32_of_tail, join_parts
from feeds.publish import BuildReport, build_feeds, run_build
from feeds.reader import database_url
from feeds.service import import_catalog
from feeds.writer import ShardedWriter
from tests.conftest import sandbox_runtime

COLUMNS = ("id", "title", "description")


def test_crc32_combine_is_zlibs_crc_of_the_concatenation() -> None:
    rng = random.Random(16)
    for _ in range(200):
        a = rng.randbytes(rng.randrange(0, 2000))
        b = rng.randbytes(rng.choice((0, 1, 3, rng.randrange(0, 100_000))))
        assert crc32_combine(zlib.crc32(a), zlib.crc32(b), len(b)) == zlib.crc32(a + b)
        assert crc32_of_tail(zlib.crc32(a + b), zlib.crc32(a), len(b)) == zlib.crc32(b)
    pieces = [rng.randbytes(rng.randrange(0, 5000)) for _ in range(30)]
    crc = 0
    for piece in pieces:
        crc = crc32_combine(crc, zlib.crc32(piece), len(piece))
    assert crc == zlib.crc32(b"".join(pieces))


def items(first: int, count: int) -> list[dict[str, str]]:
    """Rows with what makes delimited files hard: quotes, delimiters, line breaks inside a
    field, non-ASCII text (character and byte offsets differ)."""
    return [{"id": f"item-{n:05d}", "title": f"Tasse « bleue » n°{n}, \"quoted\"\tand tab",
             "description": "line one\nline two" if n % 7 == 0 else "☃" * (n % 5)}
            for n in range(first, first + count)]


def content(path: Path) -> bytes:
    """A file's content; a gzip file must be exactly one member."""
    data = path.read_bytes()
    if path.suffix != ".gz":
        return data
    member = zlib.decompressobj(31)
    out = member.decompress(data)
    assert member.eof, path
    assert member.unused_data == b"", path  # one member, nothing after it
    assert gzip.decompress(data) == out
    return out


@pytest.mark.parametrize(("fmt", "compress"), [("jsonl", True), ("csv", True),
                                                ("tsv", False), ("jsonl", False)])
@pytest.mark.parametrize("max_items", [1, 300, 512, 700, 5000])
def test_joined_parts_are_the_sharded_writers_files(tmp_path: Path, fmt: str,
                                                    compress: bool, max_items: int) -> None:
    """Parts of uneven sizes (one empty, one exactly a segment) joined with shard
    boundaries inside segments, on segment ends and on part ends."""
    sizes = [700, 0, 512, 1301, 1]
    whole = ShardedWriter(tmp_path / "one", "products", fmt, compress=compress,
                          columns=COLUMNS, max_items=max_items)
    parts = []
    first = 0
    for k, size in enumerate(sizes):
        part = PartWriter(tmp_path / f"part-{k}", fmt, compress=compress, columns=COLUMNS)
        for item in items(first, size):
            whole.write(item)
            part.write(item)
        parts.append(part.close())
        first += size
    expected = whole.close()
    (tmp_path / "two").mkdir()
    (tmp_path / "two" / f"products-99999.{fmt}").write_bytes(b"stale")  # another format
    stale = tmp_path / "two" / f"products-99999{expected[0].name[14:]}"
    stale.write_bytes(b"stale")
    joined = join_parts(parts, tmp_path / "two", "products", fmt, compress=compress,
                        columns=COLUMNS, max_items=max_items)
    assert [p.name for p in joined] == [p.name for p in expected]
    assert len(joined) == -(-sum(sizes) // max_items)
    for mine, theirs in zip(joined, expected, strict=True):
        assert content(mine) == content(theirs), mine.name
    assert not stale.exists()
    assert not list((tmp_path / "two").glob(".*.tmp"))


def test_an_empty_catalog_joins_into_one_empty_shard(tmp_path: Path) -> None:
    part = PartWriter(tmp_path / "part", "csv", compress=True, columns=COLUMNS).close()
    joined = join_parts([part, part], tmp_path / "out", "products", "csv", compress=True,
                        columns=COLUMNS, max_items=10)
    assert [p.name for p in joined] == ["products-00001.csv.gz"]
    assert content(joined[0]) == b"id,title,description\r\n"


async def awkward_catalog(runtime: Runtime, products: int = 40) -> None:
    lines = [json.dumps({
        "id": f"zz-{n:03d}", "title": f"Tasse « bleue » {n}, \"quoted\"",
        "description": "first line\nsecond line, with a comma" if n % 3 else "☃ snow",
        "variants": [{"id": f"zz-{n:03d}-{size}", "title": f"Tasse {n} — {size}",
                      "price": {"amount": 999 + n, "currency": "EUR"},
                      "variant_options": [{"name": "Size", "value": size}]}
                     for size in ("S", "M", "L")[:1 + n % 3]]}) for n in range(products)]
    await import_catalog(runtime.sessionmaker, parse_acp_jsonl(lines))


def assert_same_build(one: Path, other: Path, a: BuildReport, b: BuildReport) -> None:
    assert b.files == a.files
    assert (b.products, b.variants, b.validation) == (a.products, a.variants, a.validation)
    for files in a.files.values():
        for relative in files:
            if relative != "acp/metadata.json":  # its updated_at is the build's time
                assert content(other / relative) == content(one / relative), relative
    # Only the published generation is left: no parts, no other generation.
    assert sorted(p.name for p in other.iterdir() if p.name.startswith(".")) == [
        ".current", ".generations"]
    assert sorted(p.name for p in (other / ".generations").iterdir()) == [
        ".lock", Path(b.generation).name]
    assert not [p for p in (other / b.generation).iterdir() if p.name.startswith(".")]
    kept = ("seconds", "generated_at", "items_per_second", "processes")
    report = {k: v for k, v in json.loads((other / "report.json").read_text()).items()
              if k not in kept}
    assert report == {k: v for k, v in json.loads((one / "report.json").read_text()).items()
                      if k not in kept}


async def test_a_parallel_build_is_the_one_process_build_byte_for_byte(
        runtime: Runtime, tmp_path: Path) -> None:
    """Small shards (7 items) so that shard boundaries fall inside the parts; every
    format; the parts' processes read one snapshot (PostgreSQL) through their own
    connections."""
    await awkward_catalog(runtime)
    url = database_url(runtime.sessionmaker.kw["bind"])
    config = runtime.settings.feed_config(runtime.profile)
    one = await asyncio.to_thread(run_build, url, tmp_path / "one", config, max_items=7)
    three = await asyncio.to_thread(run_build, url, tmp_path / "three", config,
                                    max_items=7, processes=3)
    assert (one.processes, three.processes) == (1, 3)
    assert one.variants >= 150
    assert len(one.files["openai_csv"]) > 3
    assert_same_build(tmp_path / "one", tmp_path / "three", one, three)


async def test_a_refresh_builds_with_the_configured_processes(database_url: str,
                                                              tmp_path: Path) -> None:
    """The worker's (and the API-triggered) refresh: ``REELCART_FEED_BUILD_PROCESSES``
    processes, in the build's own process group, the one-process content."""
    async with sandbox_runtime(database_url, feeds_dir=tmp_path / "two",
                               feed_build_processes=2) as rt:
        await awkward_catalog(rt, products=12)
        report, _ = await rt.feed_refresher().run()
        config: FeedConfig = rt.settings.feed_config(rt.profile)
        one = await build_feeds(rt.sessionmaker, tmp_path / "one", config, processes=1)
    assert (report.processes, one.processes) == (2, 1)
    assert_same_build(tmp_path / "one", tmp_path / "two", one, report)


async def test_the_cli_builds_with_the_configured_processes(runtime: Runtime,
                                                            tmp_path: Path) -> None:
    env = {**os.environ, "REELCART_DATABASE_URL": database_url(
        runtime.sessionmaker.kw["bind"]), "REELCART_FEED_BUILD_PROCESSES": "2"}
    done = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "api.cli", "feeds", "build", "--out",
                         str(tmp_path)], env=env, capture_output=True, text=True,
        timeout=120)
    assert done.returncode == 0, done.stderr
    report = orjson.loads((tmp_path / "report.json").read_bytes())
    assert report["processes"] == 2
    assert report["variants"] >= 72


def test_builds_use_the_cores_by_default() -> None:
    settings = Settings(_env_file=None)
    assert settings.feed_build_processes == default_processes()
    assert 1 <= default_processes() <= MAX_PROCESSES
    assert default_processes() == min(len(os.sched_getaffinity(0)), MAX_PROCESSES)


@pytest.mark.backends("sqlite")  # PostgreSQL's JSON column refuses the broken value
async def test_a_failing_part_process_fails_the_build_and_publishes_nothing(
        runtime: Runtime, tmp_path: Path) -> None:
    """The last product (the second process's range) holds an unreadable option list:
    that process fails, so the build fails with its error; nothing is published and the
    parts are removed (``tests/test_feed_generations.py``: a previous set stays served)."""
    await import_catalog(runtime.sessionmaker, parse_acp_jsonl([json.dumps({
        "id": "zzzz-last", "title": "Last", "variants": [{
            "id": "zzzz-last-1", "title": "Last", "price": {"amount": 100, "currency": "USD"},
            "variant_options": [{"name": "Size", "value": "S"}]}]})]))
    url = database_url(runtime.sessionmaker.kw["bind"])
    path = make_url(url).database
    assert path
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("UPDATE variants SET variant_options = '[{broken' "
                     "WHERE product_id = 'zzzz-last'")
        conn.commit()
    out = tmp_path / "out"
    with pytest.raises(PartFailed, match="JSONDecodeError"):
        await asyncio.to_thread(run_build, url, out, runtime.settings.feed_config(
            runtime.profile), processes=2)
    assert [p.name for p in out.iterdir()] == [".generations"]  # nothing published
    assert [p.name for p in (out / ".generations").iterdir()] == [".lock"]  # no parts


async def test_the_build_process_stays_in_the_callers_session(
        runtime: Runtime, tmp_path: Path) -> None:
    """With autogroup scheduling a new session is a scheduling group of its own, where
    the build's lower priority would no longer yield to the API."""
    seen: list[tuple[int, int, int]] = []

    def started(pid: int) -> None:
        seen.append((pid, os.getpgid(pid), os.getsid(pid)))

    report = await build_feeds(runtime.sessionmaker, tmp_path, runtime.settings.feed_config(
        runtime.profile), on_started=started, processes=2)
    assert report.processes == 2
    [(_, _, session)] = seen
    assert session == os.getsid(0)
