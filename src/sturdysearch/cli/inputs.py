"""What ``bulk-load`` reads: JSON lines, a JSON array or CSV, each optionally gzipped, from a
file or stdin, as a stream of ``(number, document)`` records.

The input is never loaded whole: a JSON array is parsed one element at a time
(``json.JSONDecoder.raw_decode`` over a sliding buffer), CSV and JSON lines one line at a time,
so a file larger than memory loads as well as a small one.

``number`` is what ``--skip-lines`` counts and what the summary names as the point to resume
from: the physical line for JSON lines, the line a CSV record ends on (the header is line 1),
the element for a JSON array (whose elements rarely sit one to a line).

Reads go through :class:`_Counted`, which reports the bytes taken from the file (before
decompression: what the progress bar's total, the file size, is made of) and marks the moment
the main thread is blocked in a read, so that the first Ctrl-C can end a read from a pipe that
would otherwise wait for input forever (see ``bulk_cmd``).
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import os
import re
import stat
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

FORMATS = ("auto", "jsonl", "json", "csv")
GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20
_SNIFF_LIMIT = 1 << 20
"""Bytes of leading whitespace read at most while looking for the first character."""
_MAX_ELEMENT = 256 << 20
"""Largest JSON array element taken: beyond it the input is called broken rather than held."""
_WS = re.compile(r"[ \t\n\r]*")


class InputError(Exception):
    """The input cannot be read further (not gzip after all, a broken JSON array, bad UTF-8):
    what is read so far is loaded, the rest is not."""


@dataclass(frozen=True, slots=True)
class Unusable:
    """A record that cannot become a document (a CSV row with the wrong number of fields); the
    loader names it on stderr and dead-letters it (``BulkIndexer.reject``), sending nothing."""

    reason: str
    raw: Any = None
    """The record as read (the CSV row's fields), for its dead letter."""


Record = tuple[int, Any]
"""``(number, document)``: ``document`` is a ``dict``, the raw ``bytes`` of a JSON line (the
indexer parses and checks it), another JSON value, or an :class:`Unusable`."""


class StopReading(Exception):
    """Raised in a read of the input once reading must stop (the first Ctrl-C): a read from a
    pipe or terminal would otherwise wait for input that may never come."""


class Watch:
    """Shared by the reads and the SIGINT handler. ``waiting``: the main thread is in a read
    that may block (a pipe, a terminal), so the handler raises ``StopReading`` to end it;
    ``stopped``: reading must stop, so the next read raises it. Setting ``waiting`` before
    checking ``stopped`` leaves no moment in which a Ctrl-C is missed."""

    __slots__ = ("stopped", "waiting")

    def __init__(self) -> None:
        self.waiting = False
        self.stopped = False


class _Counted(io.RawIOBase):
    """The file's bytes, counted as they are read, with the blocking read marked."""

    def __init__(self, raw: io.FileIO, on_bytes: Callable[[int], None], watch: Watch) -> None:
        super().__init__()
        self._raw = raw
        self._on_bytes = on_bytes
        self._watch = watch

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        self._watch.waiting = True
        try:
            if self._watch.stopped:
                raise StopReading
            n = self._raw.readinto(buffer)
        finally:
            self._watch.waiting = False
        if n:
            self._on_bytes(n)
        return n or 0


class _Primed(io.RawIOBase):
    """A stream that can look ahead: ``prime()`` reads until a condition holds on what it read,
    and what it read is served again first. Used to sniff gzip magic and the first character
    without consuming them, also from a pipe (``peek`` may return a single byte there)."""

    def __init__(self, read: Callable[[int], bytes | None]) -> None:
        super().__init__()
        self._read = read
        self._head = b""

    def readable(self) -> bool:
        return True

    def prime(self, enough: Callable[[bytes], bool], limit: int = _SNIFF_LIMIT) -> bytes:
        """Read ahead until ``enough(head)``, the end of input, or ``limit`` bytes."""
        while not enough(self._head) and len(self._head) < limit:
            chunk = self._read(_CHUNK)
            if not chunk:
                break
            self._head += chunk
        return self._head

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._head:
            n = min(len(view), len(self._head))
            view[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._read(len(view))
        if not data:
            return 0
        view[: len(data)] = data
        return len(data)


@dataclass
class Source:
    """An opened input: ``records()`` iterates it; ``size`` is the file's size (``None`` for
    stdin or a pipe), the total of the progress bar; ``format`` is the format read."""

    name: str
    format: str
    compressed: bool
    size: int | None
    _data: io.BufferedReader[Any]
    _files: list[Any]

    def records(self, skip: int = 0) -> Iterator[Record]:
        """The records after the first ``skip`` (counted as ``number`` counts)."""
        try:
            if self.format == "csv":
                yield from _csv_records(self._data, skip)
            elif self.format == "json":
                yield from _array_records(self._data, skip)
            else:
                yield from _jsonl_records(self._data, skip)
        except (EOFError, gzip.BadGzipFile) as exc:
            raise InputError(f"{self.name} is not a complete gzip stream ({exc})") from None
        except UnicodeDecodeError as exc:
            raise InputError(f"{self.name} is not UTF-8 ({exc.reason})") from None
        except csv.Error as exc:
            raise InputError(f"{self.name}: {exc}") from None

    def close(self) -> None:
        for file in reversed(self._files):
            file.close()

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_source(
    name: str,
    fmt: str = "auto",
    *,
    on_bytes: Callable[[int], None] = lambda n: None,
    watch: Watch | None = None,
) -> Source:
    """Open ``name`` (``-``: stdin), find out whether it is gzipped (its first two bytes) and,
    with ``fmt="auto"``, its format: ``.csv`` (also ``.csv.gz``) is CSV, an input whose first
    character is ``[`` a JSON array, anything else JSON lines. Raises ``OSError`` when the file
    cannot be opened."""
    watch = watch or Watch()
    raw = io.FileIO(_stdin_fd(), "rb", closefd=False) if name == "-" else io.FileIO(name, "rb")
    files: list[Any] = [raw]
    try:
        size = os.fstat(raw.fileno()).st_size if name != "-" and _regular(raw) else None
        counted = _Counted(raw, on_bytes, watch)
        outer = _Primed(counted.read)
        compressed = outer.prime(lambda head: len(head) >= 2)[:2] == GZIP_MAGIC
        inner = outer
        if compressed:
            buffered = io.BufferedReader(outer, _CHUNK)
            unzipped = gzip.GzipFile(fileobj=buffered, mode="rb")
            files.append(unzipped)
            inner = _Primed(unzipped.read1)
        if fmt == "auto":
            fmt = _sniff(name, inner, compressed)
        data = io.BufferedReader(inner, _CHUNK)
    except (EOFError, gzip.BadGzipFile) as exc:
        raw.close()
        raise InputError(f"{name} is not a complete gzip stream ({exc})") from None
    except BaseException:
        raw.close()
        raise
    return Source(name, fmt, compressed, size, data, files)


def _stdin_fd() -> int:
    """The descriptor of stdin; 0 when ``sys.stdin`` was replaced by an object without one."""
    try:
        return sys.stdin.fileno()
    except (AttributeError, OSError, ValueError):
        return 0


def _regular(raw: io.FileIO) -> bool:
    return stat.S_ISREG(os.fstat(raw.fileno()).st_mode)


def _sniff(name: str, stream: _Primed, compressed: bool) -> str:
    base = name[:-3] if name.endswith(".gz") else name
    if base.lower().endswith(".csv"):
        return "csv"
    head = stream.prime(lambda head: bool(head.lstrip(b" \t\r\n\xef\xbb\xbf")))
    return "json" if head.lstrip(b" \t\r\n\xef\xbb\xbf")[:1] == b"[" else "jsonl"


def _jsonl_records(data: io.BufferedReader[Any], skip: int) -> Iterator[Record]:
    for number, line in enumerate(data, 1):
        if number == 1 and line.startswith(codecs.BOM_UTF8):
            line = line[len(codecs.BOM_UTF8) :]
        if number > skip and not line.isspace():
            yield number, line


def _csv_records(data: io.BufferedReader[Any], skip: int) -> Iterator[Record]:
    """Rows as ``{header: value}``, every value a string (CSV has no types)."""
    csv.field_size_limit(max(csv.field_size_limit(), _MAX_ELEMENT))
    text = io.TextIOWrapper(data, encoding="utf-8-sig", newline="")
    reader = csv.reader(text)
    header = next(reader, None)
    if header is None:
        return
    if len(set(header)) != len(header) or not all(header):
        raise InputError("the CSV header must name every column once: " + ",".join(header))
    width = len(header)
    for row in reader:
        number = reader.line_num
        if number <= skip or not row:
            continue
        if len(row) != width:
            yield number, Unusable(f"{len(row)} fields where the header has {width}", row)
        else:
            yield number, dict(zip(header, row, strict=True))


def _array_records(data: io.BufferedReader[Any], skip: int) -> Iterator[Record]:
    """The elements of a JSON array, parsed one at a time from a buffer that holds little more
    than the current element."""
    decoder = json.JSONDecoder()
    utf8 = codecs.getincrementaldecoder("utf-8-sig")()
    buf = ""
    pos = 0
    eof = False

    def more(at_least: int = _CHUNK) -> None:
        nonlocal buf, pos, eof
        chunk = data.read1(at_least) if not eof else b""
        eof = not chunk
        buf = buf[pos:] + utf8.decode(chunk, final=eof)
        pos = 0

    def skip_space() -> None:
        nonlocal pos
        while True:
            match = _WS.match(buf, pos)
            pos = match.end() if match else pos
            if pos < len(buf) or eof:
                return
            more()

    skip_space()
    if buf[pos : pos + 1] != "[":
        raise InputError("a JSON array must start with [")
    pos += 1
    number = 0
    while True:
        skip_space()
        if buf[pos : pos + 1] == "]":
            pos += 1
            skip_space()
            if pos < len(buf):
                raise InputError(f"text after the end of the JSON array, after item {number}")
            return
        if number:
            if buf[pos : pos + 1] != ",":
                raise InputError(f"expected , or ] after item {number} of the JSON array")
            pos += 1
            skip_space()
        if pos >= len(buf):
            raise InputError(f"the JSON array ends after item {number} without ]")
        number += 1
        while True:
            try:
                value, end = decoder.raw_decode(buf, pos)
            except json.JSONDecodeError as exc:
                incomplete = exc.pos >= len(buf) - 16 or exc.msg.startswith("Unterminated")
                if eof or not incomplete:
                    raise InputError(f"item {number} of the JSON array: {exc.msg}") from None
                if len(buf) - pos > _MAX_ELEMENT:
                    raise InputError(
                        f"item {number} of the JSON array is over {_MAX_ELEMENT >> 20} MiB"
                    ) from None
                more(max(_CHUNK, len(buf) - pos))
                continue
            if end >= len(buf) and not eof:  # a number may go on in the next chunk
                more()
                continue
            break
        pos = end
        if number > skip:
            yield number, value
