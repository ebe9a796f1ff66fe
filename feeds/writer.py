"""Streaming, sharded, atomic feed files.

Each shard is written to a temporary file in the target folder and renamed into place
when complete, so a reader (an agent fetching the hosted URL) never sees a half-written
file. Shard names are stable (``products-00001.jsonl.gz`` …) and extra shards from a
bigger previous run are removed, as OpenAI's ingestion expects a stable shard set.
A build writes into a generation folder of its own, published whole when complete
(``feeds.generations``), so readers never see one build's shards beside another's.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any

import orjson

MAX_ITEMS_PER_SHARD = 500_000


class ShardedWriter:
    def __init__(self, folder: Path, stem: str, fmt: str, *, compress: bool,
                 columns: tuple[str, ...] = (), max_items: int = MAX_ITEMS_PER_SHARD) -> None:
        if fmt not in ("jsonl", "csv", "tsv"):
            raise ValueError(f"unknown format {fmt}")
        self.folder = folder
        self.stem = stem
        self.fmt = fmt
        self.compress = compress
        self.columns = columns
        self.max_items = max_items
        self.files: list[Path] = []
        self.items = 0
        self._in_shard = 0
        self._raw: Any = None  # gzip.GzipFile or the file itself
        self._csv: Any = None
        self._tmp: Path | None = None
        self._buffer: list[bytes] = []  # JSONL lines, written in blocks (fewer zlib calls)
        self._rows = io.StringIO()  # CSV/TSV rows, likewise
        # Blocks are gzipped and written on a thread of their own: zlib and the write
        # system call release the interpreter lock, so compressing and copying into the
        # page cache (~1 ms per block of 512 ACP lines) run beside the building (one
        # block in flight).
        self._zipper = ThreadPoolExecutor(1, thread_name_prefix="feed-writer")
        self._in_flight: Future[Any] | None = None
        folder.mkdir(parents=True, exist_ok=True)

    @property
    def suffix(self) -> str:
        return f".{self.fmt}" + (".gz" if self.compress else "")

    def _open(self) -> None:
        index = len(self.files) + 1
        final = self.folder / f"{self.stem}-{index:05d}{self.suffix}"
        self._tmp = final.with_name(f".{final.name}.tmp")
        raw: IO[bytes] = open(self._tmp, "wb")  # noqa: SIM115 (closed in _close)
        self._raw = gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=3, mtime=0) \
            if self.compress else raw
        self._file = raw
        if self.fmt in ("csv", "tsv"):
            self._csv = csv.writer(self._rows, delimiter="," if self.fmt == "csv" else "\t")
            self._csv.writerow(self.columns)
        self.files.append(final)
        self._in_shard = 0

    def write_line(self, line: bytes) -> None:
        """One JSONL item already encoded (``orjson.dumps`` of the item, no newline)."""
        if self._raw is None or self._in_shard >= self.max_items:
            self._close()
            self._open()
        self._buffer.append(line)
        if len(self._buffer) >= 512:
            self._drain()
        self._in_shard += 1
        self.items += 1

    def write(self, item: dict[str, Any]) -> None:
        if self._raw is None or self._in_shard >= self.max_items:
            self._close()
            self._open()
        if self.fmt == "jsonl":
            self._buffer.append(orjson.dumps(item))
            if len(self._buffer) >= 512:
                self._drain()
        else:  # the columns in order; a missing one (or None) is an empty cell
            get = item.get
            self._csv.writerow([v if type(v := get(c)) is str or v is None else _cell(v)
                                for c in self.columns])
            if self._rows.tell() >= 256 * 1024:
                self._drain()
        self._in_shard += 1
        self.items += 1

    def _drain(self) -> None:
        if self._buffer:
            self._buffer.append(b"")  # the last line's newline, in the same (only) copy
            self._put(b"\n".join(self._buffer))
            self._buffer.clear()
        if self._rows.tell():
            self._put(self._rows.getvalue().encode())
            self._rows.seek(0)
            self._rows.truncate()

    def _put(self, block: bytes) -> None:
        self._settle()
        self._in_flight = self._zipper.submit(self._raw.write, block)

    def _settle(self) -> None:
        if self._in_flight is not None:
            self._in_flight.result()  # a failed write fails the build here
            self._in_flight = None

    def _close(self) -> None:
        if self._raw is None:
            return
        self._drain()
        self._settle()
        if self.compress:
            self._raw.close()
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        assert self._tmp is not None
        os.replace(self._tmp, self.files[-1])  # atomic on POSIX
        self._raw = None

    def close(self) -> list[Path]:
        if not self.files:  # an empty catalog still publishes one (empty) shard
            self._open()
        try:
            self._close()
        finally:
            self._zipper.shutdown()
        keep = {p.name for p in self.files}
        for stale in self.folder.glob(f"{self.stem}-*{self.suffix}"):
            if stale.name not in keep:
                stale.unlink()
        return self.files


def _cell(value: Any) -> Any:
    """Delimited files: lists comma-separated (the OpenAI and Google specs' form for
    repeated values), objects as JSON."""
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    if isinstance(value, dict):
        return orjson.dumps(value).decode()
    return value


def write_json_atomic(path: Path, payload: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(orjson.dumps(payload, option=orjson.OPT_INDENT_2))
    os.replace(tmp, path)
