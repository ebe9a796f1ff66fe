"""A feed build shared out over processes: the catalog cut into key ranges
(``feeds.reader.key_ranges``), the first built by this process and each other by a
process of its own (``python -m feeds.build_job`` with a ``part`` request), all at the
same time, each writing part files (``feeds.parts.PartWriter``); the parts are then
joined in key order into the one shard set a single-process build publishes, with the
same content byte for byte (``feeds.parts.join_parts``), and one report.

On PostgreSQL every process reads the snapshot this one exports, so the parts are one
consistent catalog, as a single-process build reads one snapshot.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import orjson

from feeds.builder import FeedConfig, ValidationReport
from feeds.google import GOOGLE_TSV_COLUMNS
from feeds.openai_spec import OpenAISpec
from feeds.parts import PartOutput, join_parts
from feeds.reader import key_ranges, shared_snapshot

# Each build process peaks at ~90 MB (60 of them the interpreter and its imports): three
# stay under the 300 MB a build may take altogether, whatever the number of cores.
MAX_PROCESSES = 3


def default_processes() -> int:
    """The cores this process may run on, capped (a build shares the machine)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_PROCESSES))


class PartFailed(RuntimeError):
    pass


def merge_validation(into: ValidationReport, part: dict[str, Any]) -> None:
    """Adds a later part's validation: the counts add up; the examples (the first five
    per problem) and the problems' first-seen order are the single build's, as the parts
    come in catalog order."""
    into.items += part["items"]
    into.valid += part["valid"]
    into.excluded += part["excluded"]
    for key, count in part["counts"].items():
        into.counts[key] = into.counts.get(key, 0) + count
        bucket = into.examples.setdefault(key, [])
        bucket.extend(part["examples"].get(key, [])[:5 - len(bucket)])


class _Child:
    """One part's build process: its progress lines relayed, its outcome kept."""

    def __init__(self, request: dict[str, Any], errors: IO[bytes],
                 progress: Callable[[int], None] | None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "feeds.build_job"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=errors)
        self.errors = errors
        self.outcome: dict[str, Any] | None = None
        self.progress = progress
        assert self.process.stdin is not None
        self.process.stdin.write(orjson.dumps(request))
        self.process.stdin.close()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            message = orjson.loads(line)
            if "progress" in message and self.progress is not None:
                self.progress(int(message["progress"]))
            elif "part" in message:
                self.outcome = message["part"]

    def result(self) -> dict[str, Any]:
        code = self.process.wait()
        self.reader.join()
        if code != 0 or self.outcome is None:
            self.errors.seek(0)
            detail = self.errors.read().decode(errors="replace").strip()[-2000:]
            raise PartFailed(f"a feed build process exited with {code}: {detail}")
        return self.outcome

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.reader.join()


def build_in_parts(url: str, out_dir: Path, config: FeedConfig, *,
                   openai_formats: tuple[str, ...], spec: OpenAISpec, acp: bool,
                   google_tsv: bool, max_items: int, processes: int,
                   progress: Callable[[int], None] | None,
                   new_builder: Callable[[Path], Any],
                   build_range: Callable[..., None]) -> Any:
    """The build over ``processes`` processes (this one included); None when the
    catalog gives fewer than two ranges (the caller builds it whole). ``new_builder``
    makes this process's ``FeedBuilder`` for a part folder, ``build_range`` fills it
    from one key range (``feeds.publish``)."""
    lock = threading.Lock()

    def report_progress(variants: int) -> None:
        if progress is not None:
            with lock:
                progress(variants)

    with shared_snapshot(url) as snapshot_id:
        ranges = key_ranges(url, processes, snapshot_id)
        if len(ranges) < 2:
            return None
        out_dir.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".build-parts-", dir=out_dir))
        children: list[_Child] = []
        try:
            for k, (after, until) in enumerate(ranges[1:], start=1):
                children.append(_Child({"part": {
                    "database_url": url, "part_dir": str(work / str(k)),
                    "config": dataclasses.asdict(config),
                    "openai_formats": list(openai_formats), "spec_version": spec.version,
                    "acp": acp, "google_tsv": google_tsv, "after": after, "until": until,
                    "snapshot_id": snapshot_id}}, open(work / f"{k}.stderr", "w+b"),
                    report_progress))
            builder = new_builder(work / "0")
            build_range(builder, url, after=None, until=ranges[0][1],
                        snapshot_id=snapshot_id, progress=report_progress)
            parts = [builder.finish_part()] + [child.result() for child in children]
        except BaseException:
            for child in children:
                child.kill()
            shutil.rmtree(work, ignore_errors=True)
            raise
        finally:
            for child in children:
                child.errors.close()
    try:
        for part in parts[1:]:
            builder.report.products += part["products"]
            builder.report.variants += part["variants"]
            merge_validation(builder.validation, part["validation"])
        files = {}
        outputs: list[tuple[str, str, str, bool, tuple[str, ...]]] = \
            [("acp", "acp", "jsonl", False, ())] if acp else []
        outputs += [(f"openai_{fmt}", "openai", fmt, True, spec.columns)
                    for fmt in openai_formats]
        outputs += [("google_tsv", "google", "tsv", False, GOOGLE_TSV_COLUMNS)] \
            if google_tsv else []
        for name, folder, fmt, compress, columns in outputs:
            files[name] = join_parts(
                [PartOutput.from_dict(part["outputs"][name]) for part in parts],
                out_dir / folder, "products", fmt, compress=compress, columns=columns,
                max_items=max_items)
        builder.report.processes = len(parts)
        return builder.finish(files=files)
    finally:
        shutil.rmtree(work, ignore_errors=True)
