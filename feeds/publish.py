"""Building the published feeds from the catalog, streamed in constant memory.

    catalog (keyset pages) → ProductRow → ACP products.jsonl + metadata.json
                                        → OpenAI jsonl.gz / csv.gz / tsv.gz (+ validation)
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from feeds.builder import (
    FeedConfig,
    ProductRow,
    ValidationReport,
    VariantRow,
    acp_product_json,
    openai_items,
    screen_urls,
    validate_openai_item,
    validate_store,
)
from feeds.generations import new_generation
from feeds.google import GOOGLE_TSV_COLUMNS, google_tsv_rows
from feeds.openai_spec import CURRENTLY_STABLE, OpenAISpec, Problem
from feeds.parts import PartWriter
from feeds.reader import database_url, read_catalog
from feeds.writer import MAX_ITEMS_PER_SHARD, ShardedWriter, write_json_atomic
from models.base import rfc3339, utc_now

OPENAI_FORMATS = ("jsonl", "csv", "tsv")


@dataclass
class BuildReport:
    products: int = 0
    variants: int = 0
    seconds: float = 0.0
    files: dict[str, list[str]] = field(default_factory=dict)
    validation: dict[str, Any] = field(default_factory=dict)
    generated_at: str = ""
    processes: int = 1  # that built it (``feeds.parallel``)
    # The folder holding ``files``, relative to the output folder (``feeds.generations``):
    # "" when built straight into it. Not in the report file.
    generation: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"products": self.products, "variants": self.variants,
                "seconds": round(self.seconds, 3), "processes": self.processes,
                "items_per_second": int(self.variants / self.seconds) if self.seconds else None,
                "files": self.files, "validation": self.validation,
                "generated_at": self.generated_at}


def product_row(p: Any, variants: Iterable[Any],
                videos: tuple[tuple[str, str | None, str], ...] = ()) -> ProductRow:
    return ProductRow(
        id=p.id, title=p.title, description=p.description, url=p.url, brand=p.brand,
        media=tuple(p.media or ()), videos=videos,
        variants=tuple(VariantRow(
            id=v.id, title=v.title, price_amount=v.price_amount, currency=v.currency,
            description=v.description, sku=v.sku, url=v.url, image_url=v.image_url,
            list_price_amount=v.list_price_amount, availability=v.availability,
            stock=v.stock, requires_shipping=v.requires_shipping,
            variant_options=tuple((o["name"], o["value"]) for o in v.variant_options or ()),
            categories=tuple(v.categories or ()), is_eligible_search=v.is_eligible_search,
            is_eligible_checkout=v.is_eligible_checkout) for v in variants))


Rejected = Callable[[str, Problem], None]


async def catalog_rows(sessionmaker: async_sessionmaker[AsyncSession],
                       on_rejected: Rejected | None = None) -> AsyncIterator[ProductRow]:
    """The publishable catalog: every destination reads it through here, so an item whose
    URLs are not http(s) is left out of all of them (reported through ``on_rejected``).

    Read through a connection of its own on a thread of its own (``feeds.reader``), a
    short transaction per chunk: the event loop only receives finished rows."""
    url = database_url(sessionmaker.kw["bind"])
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(1, thread_name_prefix="catalog-reader") as thread:
        pages = read_catalog(url, snapshot=False)
        try:
            while (page := await loop.run_in_executor(thread, next, pages, None)) is not None:
                for product in page:
                    row, problems = screen_urls(product)
                    if on_rejected is not None:
                        for item_id, problem in problems:
                            on_rejected(item_id, problem)
                    if row is not None:
                        yield row
        finally:
            await loop.run_in_executor(thread, pages.close)


class FeedBuilder:
    """Feeds ``ProductRow``s to every output at once; one pass over the catalog."""

    def __init__(self, out_dir: Path, config: FeedConfig, *,
                 openai_formats: tuple[str, ...] = OPENAI_FORMATS, acp: bool = True,
                 max_items: int = MAX_ITEMS_PER_SHARD, spec: OpenAISpec = CURRENTLY_STABLE,
                 google_tsv: bool = True, part_dir: Path | None = None) -> None:
        """``part_dir``: one key range's share of a parallel build (``feeds.parallel``):
        the outputs are part files in ``part_dir`` to be joined (``feeds.parts``), and
        ``finish_part`` ends it."""
        self.out_dir = out_dir
        self.config = config
        self.spec = spec

        def writer(name: str, folder: str, fmt: str, compress: bool,
                   columns: tuple[str, ...] = ()) -> Any:
            if part_dir is not None:
                part_dir.mkdir(parents=True, exist_ok=True)
                return PartWriter(part_dir / f"{name}.part", fmt, compress=compress,
                                  columns=columns)
            return ShardedWriter(out_dir / folder, "products", fmt, compress=compress,
                                 columns=columns, max_items=max_items)

        self.acp = writer("acp", "acp", "jsonl", False) if acp else None
        self.openai = [writer(f"openai_{fmt}", "openai", fmt, True, spec.columns)
                       for fmt in openai_formats]
        # Google Merchant Center's fallback: a plain TSV feed a merchant can download/fetch.
        self.google = writer("google_tsv", "google", "tsv", False, GOOGLE_TSV_COLUMNS) \
            if google_tsv else None
        self.validation = ValidationReport(spec_version=spec.version)
        self.store_problems = validate_store(config, spec)
        self.report = BuildReport()
        self._started = time.perf_counter()

    def reject(self, item_id: str, problem: Problem) -> None:
        self.validation.exclude(item_id, problem)

    def add(self, product: ProductRow) -> None:
        screened, problems = screen_urls(product)
        for item_id, problem in problems:
            self.reject(item_id, problem)
        if screened is None:
            return
        product = screened
        self.report.products += 1
        self.report.variants += len(product.variants)
        if self.acp is not None:
            self.acp.write_line(acp_product_json(product, self.config))
        if self.google is not None:
            for row in google_tsv_rows(product, self.config):
                self.google.write(row)
        if not self.openai:
            return
        for item in openai_items(product, self.config, self.spec):
            self.validation.add(item, validate_openai_item(item, self.spec,
                                                           store_checked=True))
            for writer in self.openai:
                writer.write(item)

    def finish_part(self) -> dict[str, Any]:
        """A part's outcome (JSON): counts, validation, and each output's part file."""
        outputs = {}
        if self.acp is not None:
            outputs["acp"] = self.acp.close().as_dict()
        for writer in self.openai:
            outputs[f"openai_{writer.fmt}"] = writer.close().as_dict()
        if self.google is not None:
            outputs["google_tsv"] = self.google.close().as_dict()
        return {"products": self.report.products, "variants": self.report.variants,
                "validation": dataclasses.asdict(self.validation), "outputs": outputs}

    def finish(self, *, files: dict[str, list[Path]] | None = None) -> BuildReport:
        """Closes the outputs (or, after a parallel build, takes the joined ``files``)
        and writes the ACP metadata and the report."""
        now = rfc3339(utc_now())
        if files is not None:
            self.report.files = {name: [str(p.relative_to(self.out_dir)) for p in paths]
                                 for name, paths in files.items()}
            if "acp" in files:
                self.report.files["acp"].append("acp/metadata.json")
        if self.acp is not None:
            if files is None:
                self.report.files["acp"] = [
                    str(p.relative_to(self.out_dir)) for p in self.acp.close()]
                self.report.files["acp"].append("acp/metadata.json")
            (self.out_dir / "acp").mkdir(parents=True, exist_ok=True)
            write_json_atomic(self.out_dir / "acp" / "metadata.json", {
                "id": self.config.feed_id, "target_country": self.config.target_country,
                "updated_at": now})
        for writer in self.openai if files is None else ():
            self.report.files[f"openai_{writer.fmt}"] = [
                str(p.relative_to(self.out_dir)) for p in writer.close()]
        if self.google is not None and files is None:
            self.report.files["google_tsv"] = [
                str(p.relative_to(self.out_dir)) for p in self.google.close()]
        self.report.seconds = time.perf_counter() - self._started
        self.report.validation = self.validation.as_dict()
        self.report.validation["store_problems"] = [
            {"problem": f"{p.code}:{p.field}", "message": p.message}
            for p in self.store_problems]
        self.report.generated_at = now
        write_json_atomic(self.out_dir / "report.json", self.report.as_dict())
        return self.report


def run_build(url: str, out_dir: Path, config: FeedConfig, *,
              openai_formats: tuple[str, ...] = OPENAI_FORMATS,
              progress: Callable[[int], None] | None = None,
              spec: OpenAISpec = CURRENTLY_STABLE, acp: bool = True,
              google_tsv: bool = True, after: str | None = None,
              until: str | None = None, processes: int = 1,
              max_items: int = MAX_ITEMS_PER_SHARD) -> BuildReport:
    """Build the feeds here and now, reading the catalog through a read connection of
    its own. Synchronous: for a CLI command or a build process, never for an event loop
    (``build_feeds`` runs this in a process of its own). ``after`` and ``until`` restrict
    it to a range of product ids (``feeds.reader.key_ranges``). ``processes`` > 1 shares
    the build out over that many processes (``feeds.parallel``): the same files, the same
    content.

    The files are written into a generation folder of their own and published in one
    atomic step when all are complete (``feeds.generations``): readers of ``out_dir``
    see the previous set until then, and keep it when the build fails.

    PostgreSQL: one snapshot for the whole build. SQLite: a short read transaction per
    chunk (each product still read whole, from one moment), because a snapshot held for
    the whole build keeps the WAL from being checkpointed: every commit made meanwhile
    piles up in it (measured: 0.8 GB in 5 minutes of checkouts during a 1M-variant build
    on a busy machine), to be copied back in one burst at the end."""
    with new_generation(out_dir) as folder:
        report = _build_into(folder, url, config, openai_formats=openai_formats,
                           progress=progress, spec=spec, acp=acp, google_tsv=google_tsv,
                           after=after, until=until, processes=processes,
                           max_items=max_items)
        report.generation = str(folder.relative_to(out_dir))
    return report


def _build_into(out_dir: Path, url: str, config: FeedConfig, *,
                openai_formats: tuple[str, ...], progress: Callable[[int], None] | None,
                spec: OpenAISpec, acp: bool, google_tsv: bool, after: str | None,
                until: str | None, processes: int, max_items: int) -> BuildReport:
    """``run_build``'s work, into a new (not yet published) generation folder."""
    if processes > 1 and after is None and until is None:
        from feeds.parallel import build_in_parts

        report: BuildReport | None = build_in_parts(
            url, out_dir, config, openai_formats=openai_formats, spec=spec, acp=acp,
            google_tsv=google_tsv, max_items=max_items, processes=processes,
            progress=progress, build_range=build_range,
            new_builder=lambda part_dir: FeedBuilder(
                out_dir, config, openai_formats=openai_formats, spec=spec, acp=acp,
                google_tsv=google_tsv, part_dir=part_dir))
        if report is not None:
            return report
    builder = FeedBuilder(out_dir, config, openai_formats=openai_formats, spec=spec,
                          acp=acp, google_tsv=google_tsv, max_items=max_items)
    build_range(builder, url, after=after, until=until, progress=progress)
    return builder.finish()


def build_range(builder: FeedBuilder, url: str, *, after: str | None, until: str | None,
                snapshot_id: str | None = None,
                progress: Callable[[int], None] | None = None) -> None:
    """Everything the catalog holds in ``after < id <= until`` through ``builder``."""
    snapshot = make_url(url).get_backend_name() != "sqlite"
    with few_collections():
        for page in read_catalog(url, snapshot=snapshot, after=after, until=until,
                                 snapshot_id=snapshot_id):
            variants = 0
            for product in page:
                builder.add(product)
                variants += len(product.variants)
            if progress is not None:
                progress(variants)


def build_part(url: str, part_dir: Path, config: FeedConfig, *,
               openai_formats: tuple[str, ...], spec: OpenAISpec, acp: bool,
               google_tsv: bool, after: str | None, until: str | None,
               snapshot_id: str | None,
               progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """One key range of a parallel build, as part files (``feeds.parallel``)."""
    builder = FeedBuilder(part_dir, config, openai_formats=openai_formats, spec=spec,
                          acp=acp, google_tsv=google_tsv, part_dir=part_dir)
    build_range(builder, url, after=after, until=until, snapshot_id=snapshot_id,
                progress=progress)
    return builder.finish_part()


@contextmanager
def few_collections() -> Iterator[None]:
    """A build allocates millions of short-lived objects (rows, items) and almost no
    reference cycles, yet with the default thresholds the cyclic garbage collector runs
    every 700 allocations and, as chunks survive a few young collections, keeps walking
    the whole heap: a third of a build's CPU. Rarer collections while building (reference
    counting still frees everything acyclic at once); the thresholds come back after."""
    before = gc.get_threshold()
    gc.set_threshold(20_000, 20, 100)
    try:
        yield
    finally:
        gc.set_threshold(*before)


class FeedBuildFailed(RuntimeError):
    pass


BUILD_NICENESS = 10  # builds yield the CPU to requests


async def build_feeds(sessionmaker: async_sessionmaker[AsyncSession], out_dir: Path,
                      config: FeedConfig, *, openai_formats: tuple[str, ...] = OPENAI_FORMATS,
                      progress: Callable[[int], None] | None = None,
                      spec: OpenAISpec = CURRENTLY_STABLE,
                      on_started: Callable[[int], None] | None = None,
                      processes: int = 1) -> BuildReport:
    """``run_build`` in a separate, lower-priority process (``python -m feeds.build_job``),
    so a build never holds the event loop (nor, in Python, the interpreter lock) of the
    API or worker that asked for it. The process reads through its own connection and
    writes the files atomically; progress and the report come back as JSON lines.
    ``processes`` > 1: that process shares the build out over as many (its own included;
    ``feeds.parallel``), all at its lower priority.
    ``on_started`` receives the build process's id. Cancelling kills the process."""
    request = orjson.dumps({
        "database_url": database_url(sessionmaker.kw["bind"]), "out_dir": str(out_dir),
        "config": dataclasses.asdict(config), "openai_formats": list(openai_formats),
        "spec_version": spec.version, "niceness": BUILD_NICENESS, "processes": processes})
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "feeds.build_job", stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        # Not a new session: with autogroup scheduling (Linux's default) a session is a
        # scheduling group of its own, where the build's lower priority would only count
        # inside it. The process makes itself a process group (``feeds.build_job``; uvloop
        # takes no ``process_group``), so that it is killed with its part processes.
        )
    assert process.stdin is not None
    assert process.stdout is not None
    assert process.stderr is not None
    errors = asyncio.create_task(process.stderr.read())
    report: BuildReport | None = None
    try:
        if on_started is not None:
            on_started(process.pid)
        process.stdin.write(request)
        await process.stdin.drain()
        process.stdin.close()
        async for line in process.stdout:
            message = orjson.loads(line)
            if "progress" in message and progress is not None:
                progress(int(message["progress"]))
            elif "report" in message:
                report = BuildReport(**message["report"])
        code = await process.wait()
    except BaseException:  # cancelled (or failed) while building: stop the build
        if process.returncode is None:
            try:
                os.killpg(process.pid, signal.SIGKILL)  # the part processes too
            except ProcessLookupError:  # not yet a group (so no part processes yet)
                with suppress(ProcessLookupError):
                    process.kill()
            await process.wait()
        errors.cancel()
        raise
    stderr = (await errors).decode(errors="replace").strip()
    if code != 0 or report is None:
        raise FeedBuildFailed(f"feed build exited with {code}: {stderr[-2000:]}")
    return report
