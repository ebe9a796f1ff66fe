"""A feed built in parts (one per key range, each by its own process) and joined into the
very shard set a single-process build writes (``feeds.writer.ShardedWriter``).

Each part of an output is one file: the items' bytes in order, written in segments (a
block of lines or rows). A compressed output's part is raw deflate, each segment ended
with a full flush (byte-aligned, no back-references across it), so segments can be
copied as they are into one gzip member — the way pigz joins its blocks: one gzip
header, the parts' deflate data, a final empty block, then the CRC-32 of the whole
content (combined from the parts' CRCs and lengths, ``crc32_combine``) and its length.
The only segment ever re-compressed is one that a shard boundary cuts in two.

Any gzip reader sees one member whose content equals the single-process build's byte
for byte; the compressed bytes themselves differ (other block boundaries).
"""

from __future__ import annotations

import csv
import io
import os
import struct
import zlib
from array import array
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from feeds.writer import _cell

LEVEL = 3  # as the single-process gzip shards
# A gzip header (RFC 1952): deflate, no flags, no mtime, no extra flags, OS unknown.
GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
FINAL_EMPTY_BLOCK = b"\x03\x00"  # a fixed-Huffman block, BFINAL set, only end-of-block

_POLY = 0xEDB88320  # CRC-32 (reflected)


def _multmodp(a: int, b: int) -> int:
    """a × b modulo the CRC-32 polynomial (bits reflected, as zlib's multmodp)."""
    m = 1 << 31
    p = 0
    while True:
        if a & m:
            p ^= b
            if not a & (m - 1):
                return p
        m >>= 1
        b = (b >> 1) ^ _POLY if b & 1 else b >> 1


def _x2n_table() -> tuple[int, ...]:
    """x^(2^n) modulo the polynomial, n = 0…31."""
    out = [1 << 30]  # x^1
    for _ in range(31):
        out.append(_multmodp(out[-1], out[-1]))
    return tuple(out)


_X2N = _x2n_table()


def _x8nmodp(n: int) -> int:
    """x^(8n) modulo the polynomial: appending n zero bytes, as a multiplier."""
    p = 1 << 31  # x^0
    k = 3
    while n:
        if n & 1:
            p = _multmodp(_X2N[k & 31], p)
        n >>= 1
        k += 1
    return p


def crc32_combine(crc1: int, crc2: int, len2: int) -> int:
    """The CRC-32 of A + B from crc32(A), crc32(B) and len(B) (zlib's crc32_combine)."""
    if len2 <= 0:
        return crc1
    return _multmodp(_x8nmodp(len2), crc1) ^ crc2


def crc32_of_tail(crc_whole: int, crc_head: int, len_tail: int) -> int:
    """The CRC-32 of B from crc32(A + B), crc32(A) and len(B): the combination is linear
    (crc(A+B) = crc(A)·x^8|B| ⊕ crc(B)), so a part's running CRCs give any run's CRC."""
    if len_tail <= 0:
        return 0
    return crc_whole ^ _multmodp(_x8nmodp(len_tail), crc_head)


@dataclass
class Segment:
    items: int
    raw_end: int  # uncompressed bytes of the part up to the end of this segment
    stored_end: int  # bytes of the part file up to the end of this segment
    crc: int  # CRC-32 of the part's content up to the end of this segment


@dataclass
class PartOutput:
    """One output's part: its file, its segments and (delimited files) each row's end
    offset within its segment, in ``ends`` (uint32s, one per item)."""
    path: str
    segments: list[Segment] = field(default_factory=list)
    ends: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "ends": self.ends,
                "segments": [[s.items, s.raw_end, s.stored_end, s.crc] for s in self.segments]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PartOutput:
        return cls(data["path"], [Segment(*s) for s in data["segments"]], data["ends"])


class PartWriter:
    """The ``ShardedWriter`` interface (``write_line``, ``write``, ``close``) writing one
    part file to be joined by ``join_parts``: no shards, no header row, segments."""

    def __init__(self, path: Path, fmt: str, *, compress: bool,
                 columns: tuple[str, ...] = ()) -> None:
        if fmt not in ("jsonl", "csv", "tsv"):
            raise ValueError(f"unknown format {fmt}")
        self.fmt = fmt
        self.compress = compress
        self.columns = columns
        self.items = 0
        self.output = PartOutput(str(path))
        self._file: BinaryIO = open(path, "wb")  # noqa: SIM115 (closed in close)
        self._ends_file: BinaryIO | None = None
        if fmt != "jsonl":
            self.output.ends = str(path) + ".ends"
            self._ends_file = open(self.output.ends, "wb")  # noqa: SIM115
        self._deflate = zlib.compressobj(LEVEL, zlib.DEFLATED, -15) if compress else None
        self._buffer: list[bytes] = []
        self._rows = io.StringIO()
        self._row_ends = array("I")
        self._csv = csv.writer(self._rows, delimiter="," if fmt == "csv" else "\t")
        self._pending = 0  # items in the buffer
        self._raw = 0
        self._stored = 0
        self._crc = 0
        # As ShardedWriter: compression (and the CRC) on a thread, one block in flight.
        self._zipper = ThreadPoolExecutor(1, thread_name_prefix="deflate")
        self._in_flight: Future[None] | None = None

    def write_line(self, line: bytes) -> None:
        self._buffer.append(line)
        self._pending += 1
        self.items += 1
        if self._pending >= 512:
            self._drain()

    def write(self, item: dict[str, Any]) -> None:
        if self.fmt == "jsonl":
            self.write_line(orjson.dumps(item))
            return
        get = item.get
        rows = self._rows
        self._csv.writerow([v if type(v := get(c)) is str or v is None else _cell(v)
                            for c in self.columns])
        self._row_ends.append(rows.tell())
        self._pending += 1
        self.items += 1
        if rows.tell() >= 256 * 1024:
            self._drain()

    def _drain(self) -> None:
        if not self._pending:
            return
        items, self._pending = self._pending, 0
        ends = None
        if self._buffer:
            self._buffer.append(b"")
            block = b"\n".join(self._buffer)
            self._buffer.clear()
        else:
            text = self._rows.getvalue()
            self._rows.seek(0)
            self._rows.truncate()
            block = text.encode()
            ends = self._row_ends
            self._row_ends = array("I")
            if len(block) != len(text):  # not ASCII: character offsets → byte offsets
                at, total, exact = 0, 0, array("I")
                for end in ends:
                    total += len(text[at:end].encode())
                    exact.append(total)
                    at = end
                ends = exact
        if self._in_flight is not None:
            self._in_flight.result()
        self._in_flight = self._zipper.submit(self._store, items, block, ends)

    def _store(self, items: int, block: bytes, ends: array[int] | None) -> None:
        self._crc = zlib.crc32(block, self._crc)
        self._raw += len(block)
        if self._deflate is not None:
            block = self._deflate.compress(block) + self._deflate.flush(zlib.Z_FULL_FLUSH)
        self._file.write(block)
        self._stored += len(block)
        if ends is not None and self._ends_file is not None:
            self._ends_file.write(ends.tobytes())
        self.output.segments.append(Segment(items, self._raw, self._stored, self._crc))

    def close(self) -> PartOutput:
        try:
            self._drain()
            if self._in_flight is not None:
                self._in_flight.result()
        finally:
            self._zipper.shutdown()
            self._file.close()
            if self._ends_file is not None:
                self._ends_file.close()
        return self.output


class _Shards:
    """The shard files of one output, written in order (as ``ShardedWriter`` names and
    replaces them)."""

    def __init__(self, folder: Path, stem: str, fmt: str, *, compress: bool,
                 columns: tuple[str, ...]) -> None:
        self.folder, self.stem, self.compress = folder, stem, compress
        self.suffix = f".{fmt}" + (".gz" if compress else "")
        self.header = b""
        if fmt != "jsonl":
            text = io.StringIO()
            csv.writer(text, delimiter="," if fmt == "csv" else "\t").writerow(columns)
            self.header = text.getvalue().encode()
        self.files: list[Path] = []
        self.in_shard = 0
        self._out: Any = None
        self._tmp: Path | None = None
        self._crc = 0
        self._size = 0
        folder.mkdir(parents=True, exist_ok=True)

    @property
    def is_open(self) -> bool:
        return self._out is not None

    def open(self) -> None:
        self.close()
        final = self.folder / f"{self.stem}-{len(self.files) + 1:05d}{self.suffix}"
        self._tmp = final.with_name(f".{final.name}.tmp")
        # Unbuffered: writes and copy_file_range share the file offset.
        self._out = open(self._tmp, "wb", buffering=0)  # noqa: SIM115 (closed in close)
        self.files.append(final)
        self.in_shard = 0
        self._crc = 0
        self._size = 0
        if self.compress:
            self._out.write(GZIP_HEADER)
        if self.header:
            self.write(self.header)

    def write(self, content: bytes) -> None:
        """Content bytes (compressed here when the shard is)."""
        self._crc = zlib.crc32(content, self._crc)
        self._size += len(content)
        if self.compress:
            deflate = zlib.compressobj(LEVEL, zlib.DEFLATED, -15)
            content = deflate.compress(content) + deflate.flush(zlib.Z_FULL_FLUSH)
        self._out.write(content)

    def copy(self, source: BinaryIO, start: int, end: int, crc: int, raw: int) -> None:
        """Bytes ``start:end`` of a part file as they are; ``crc`` and ``raw`` are the
        CRC-32 and length of the content they hold."""
        self._crc = crc32_combine(self._crc, crc, raw)
        self._size += raw
        _copy_range(source, self._out, start, end - start)

    def close(self) -> None:
        if self._out is None:
            return
        if self.compress:
            self._out.write(FINAL_EMPTY_BLOCK + struct.pack(
                "<II", self._crc, self._size & 0xFFFFFFFF))
        os.fsync(self._out.fileno())
        self._out.close()
        self._out = None
        assert self._tmp is not None
        os.replace(self._tmp, self.files[-1])  # atomic on POSIX

    def abort(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None
            if self._tmp is not None:
                self._tmp.unlink(missing_ok=True)


def _copy_range(source: BinaryIO, target: Any, offset: int, count: int) -> None:
    src, dst = source.fileno(), target.fileno()
    while count > 0:
        try:
            done = os.copy_file_range(src, dst, count, offset)
        except OSError:  # not supported here (file systems, kernels): copy through memory
            done = os.write(dst, os.pread(src, min(count, 1 << 20), offset))
        if done <= 0:
            raise OSError(f"copying a feed part stopped with {count} bytes left")
        offset += done
        count -= done


def _item_ends(content: bytes, fmt: str, ends_file: BinaryIO | None, first_item: int,
               items: int) -> list[int]:
    """The end offsets of a segment's items within its content."""
    if fmt == "jsonl":  # one line per item (JSON text has no raw newline)
        out, at = [], 0
        for _ in range(items):
            at = content.index(b"\n", at) + 1
            out.append(at)
        return out
    assert ends_file is not None
    ends_file.seek(first_item * 4)
    found = array("I")
    found.frombytes(ends_file.read(items * 4))
    return found.tolist()


def join_parts(parts: list[PartOutput], folder: Path, stem: str, fmt: str, *,
               compress: bool, columns: tuple[str, ...] = (), max_items: int) -> list[Path]:
    """The parts (in key order) as the shard set ``ShardedWriter`` writes: the same file
    names, ``max_items`` items per shard, each shard replaced atomically; stale shards of
    a bigger previous build are removed."""
    shards = _Shards(folder, stem, fmt, compress=compress, columns=columns)
    try:
        for part in parts:
            _join_part(part, shards, fmt, max_items)
        if not shards.files:  # an empty catalog still publishes one (empty) shard
            shards.open()
        shards.close()
    except BaseException:
        shards.abort()
        raise
    keep = {p.name for p in shards.files}
    for stale in folder.glob(f"{stem}-*{shards.suffix}"):
        if stale.name not in keep:
            stale.unlink()
    return shards.files


def _join_part(part: PartOutput, shards: _Shards, fmt: str, max_items: int) -> None:
    ends_file = open(part.ends, "rb") if part.ends else None  # noqa: SIM115
    try:
        with open(part.path, "rb") as source:
            raw = stored = crc = 0  # where the part has been copied up to
            run_raw, run_stored, run_crc = 0, 0, 0  # where the current run starts
            item = 0

            def flush_run() -> None:
                nonlocal run_raw, run_stored, run_crc
                if stored > run_stored:
                    shards.copy(source, run_stored, stored,
                                crc32_of_tail(crc, run_crc, raw - run_raw), raw - run_raw)
                run_raw, run_stored, run_crc = raw, stored, crc

            for segment in part.segments:
                if not shards.is_open or shards.in_shard >= max_items:
                    flush_run()
                    shards.open()
                if shards.in_shard + segment.items <= max_items:  # whole: copied as is
                    shards.in_shard += segment.items
                else:  # a shard boundary inside: this segment's content, cut
                    flush_run()
                    data = os.pread(source.fileno(), segment.stored_end - stored, stored)
                    content = zlib.decompressobj(-15).decompress(data) if shards.compress \
                        else data
                    cuts = _item_ends(content, fmt, ends_file, item, segment.items)
                    at, done = 0, 0
                    while done < segment.items:
                        if shards.in_shard >= max_items:
                            shards.open()
                        take = min(max_items - shards.in_shard, segment.items - done)
                        end = cuts[done + take - 1]
                        shards.write(content[at:end])
                        shards.in_shard += take
                        done += take
                        at = end
                    run_raw, run_stored, run_crc = segment.raw_end, segment.stored_end, \
                        segment.crc
                item += segment.items
                raw, stored, crc = segment.raw_end, segment.stored_end, segment.crc
            flush_run()
    finally:
        if ends_file is not None:
            ends_file.close()
