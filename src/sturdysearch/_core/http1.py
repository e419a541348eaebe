"""HTTP/1.1 framing without I/O: encode a request, parse a response fed in as bytes.

Why our own and not ``http.client`` or urllib3: the deadline must be checked between every two
reads (a dripping server defeats per-read timeouts), and the measured cost of urllib3's pool was
about 15% of throughput on loopback. This parser is fed whatever ``recv`` returned and says when
the response is complete; the drivers own the sockets. It handles what Elasticsearch, OpenSearch
and the proxies in front of them send: Content-Length, chunked (RFC 9112 section 7.1) and
close-delimited bodies, 1xx interim heads, HEAD requests and bodiless statuses.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

#: The response head may not exceed this many bytes (a server sending endless headers is broken).
MAX_HEAD_BYTES = 64 * 1024
_CRLF = b"\r\n"
_HEAD_END = b"\r\n\r\n"
_NO_BODY_STATUSES = frozenset({204, 304})
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")
_DIGITS = re.compile(r"[0-9]{1,19}")
_METHOD = re.compile(r"[A-Z]{1,20}")
#: Framing is the encoder's job; a caller's copy would desynchronize the stream (request
#: smuggling), so these are refused in per-call headers.
_FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding", "host", "connection"})


class ProtocolViolation(Exception):
    """The bytes received are not a valid HTTP/1.1 response; the connection must be dropped."""


class ResponseHead:
    """Status line and headers. ``headers`` is looked up with lower-case names: this parser
    lower-cases them (joining repeats with ``", "``, as RFC 9110 section 5.3 allows). Both
    drivers use this parser."""

    __slots__ = ("headers", "http_version", "reason", "status")

    def __init__(
        self, status: int, reason: str, http_version: str, headers: Mapping[str, str]
    ) -> None:
        self.status = status
        self.reason = reason
        self.http_version = http_version
        self.headers = headers

    @property
    def keep_alive(self) -> bool:
        """Whether the server lets us reuse the connection after this response."""
        connection = self.headers.get("connection", "").lower()
        if self.http_version == "HTTP/1.0":
            return "keep-alive" in connection
        return "close" not in connection


def parse_head(raw: bytes) -> ResponseHead:
    """Parse a status line plus header lines (without the final blank line)."""
    lines = raw.split(_CRLF)
    status_line = lines[0]
    parts = status_line.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
        raise ProtocolViolation(f"not an HTTP/1.x status line: {status_line[:80]!r}")
    try:
        status = int(parts[1])
    except ValueError:
        raise ProtocolViolation(f"bad status code in {status_line[:80]!r}") from None
    if not 100 <= status <= 999:
        raise ProtocolViolation(f"bad status code in {status_line[:80]!r}")
    reason = parts[2].decode("latin-1") if len(parts) > 2 else ""
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or not name or name != name.strip():
            raise ProtocolViolation(f"malformed header line {line[:80]!r}")
        key = name.decode("latin-1").lower()
        text = value.strip().decode("latin-1")
        if key in headers:
            headers[key] = f"{headers[key]}, {text}"
        else:
            headers[key] = text
    return ResponseHead(status, reason, parts[0].decode("latin-1"), headers)


class ResponseParser:
    """Incremental parser of one response.

    Feed it every chunk ``recv`` returns with :meth:`feed`, and :meth:`feed_eof` when the peer
    closed. ``done`` turns true when the whole response is in; then ``head`` and :meth:`body`
    hold it and ``reusable`` says whether the connection may serve another request.
    """

    __slots__ = (
        "_body",
        "_buf",
        "_chunk_left",
        "_head_request",
        "_mode",
        "_remaining",
        "_scanned",
        "done",
        "head",
        "received",
        "reusable",
    )

    def __init__(self, *, head_request: bool = False) -> None:
        self._head_request = head_request
        self._buf = bytearray()
        self._body = bytearray()
        self._mode = "head"  # head | length | chunk-size | chunk-data | chunk-crlf | trailer | eof
        self._remaining = 0
        self._chunk_left = 0
        self._scanned = 0
        self.head: ResponseHead | None = None
        self.done = False
        self.reusable = False
        self.received = 0
        """Bytes received so far: zero means the server sent nothing (the request may be resent
        on a stale keep-alive connection only when it is idempotent)."""

    def feed(self, data: bytes) -> None:
        if self.done:
            if data:
                # Bytes after a complete response: we never pipeline, so the stream is out of
                # step and the connection must not be reused.
                self.reusable = False
            return
        self.received += len(data)
        if self._mode == "head":
            self._buf += data
            self._parse_heads()
        elif self._mode == "length":
            self._take_length(data)
        elif self._mode == "eof":
            self._body += data
        else:
            self._buf += data
            self._parse_chunks()

    def feed_eof(self) -> None:
        """The peer closed the connection."""
        if self.done:
            return
        if self._mode == "eof":
            self._finish(reusable=False)
            return
        if self._mode == "head":
            raise ProtocolViolation(
                "connection closed before a complete response head"
                if self.received
                else "connection closed before any response byte"
            )
        raise ProtocolViolation("connection closed before the response body was complete")

    def body(self) -> bytes:
        return bytes(self._body)

    # -- internals -------------------------------------------------------------------------

    def _parse_heads(self) -> None:
        while True:
            # Search only the new bytes (and 3 before them) so that a server sending its head
            # a byte at a time costs linear, not quadratic, time.
            end = self._buf.find(_HEAD_END, self._scanned)
            if end < 0 or end > MAX_HEAD_BYTES:
                if len(self._buf) > MAX_HEAD_BYTES:
                    raise ProtocolViolation(f"response head larger than {MAX_HEAD_BYTES} bytes")
                self._scanned = max(0, len(self._buf) - 3)
                return
            self._scanned = 0
            head = parse_head(bytes(self._buf[:end]))
            rest = bytes(self._buf[end + 4 :])
            self._buf.clear()
            if 100 <= head.status < 200 and head.status != 101:
                # Interim response (100 Continue, 103 Early Hints): the real one follows.
                self._buf += rest
                continue
            self.head = head
            self._start_body(head, rest)
            return

    def _start_body(self, head: ResponseHead, rest: bytes) -> None:
        if self._head_request or head.status in _NO_BODY_STATUSES:
            self._finish(reusable=head.keep_alive and not rest)
            return
        encoding = head.headers.get("transfer-encoding")
        if encoding is not None:
            if encoding.strip().lower() != "chunked":
                raise ProtocolViolation(f"unsupported transfer-encoding {encoding!r}")
            self._mode = "chunk-size"
            self._buf += rest
            self._parse_chunks()
            return
        length = head.headers.get("content-length")
        if length is not None:
            if not _DIGITS.fullmatch(length):
                raise ProtocolViolation(f"bad content-length {length!r}")
            n = int(length)
            self._mode = "length"
            self._remaining = n
            self._take_length(rest)
            return
        self._mode = "eof"
        self._body += rest

    def _take_length(self, data: bytes) -> None:
        need = self._remaining
        if len(data) < need:
            self._body += data
            self._remaining = need - len(data)
            return
        self._body += data[:need]
        self._remaining = 0
        assert self.head is not None
        self._finish(reusable=self.head.keep_alive and len(data) == need)

    def _parse_chunks(self) -> None:
        buf = self._buf
        while True:
            if self._mode == "chunk-size":
                end = buf.find(_CRLF)
                if end < 0:
                    if len(buf) > 1024:
                        raise ProtocolViolation("chunk-size line too long")
                    return
                line = bytes(buf[:end]).split(b";", 1)[0].strip()
                del buf[: end + 2]
                if not _HEX.fullmatch(line):
                    raise ProtocolViolation(f"bad chunk size {line[:20]!r}")
                size = int(line, 16)
                if size == 0:
                    self._mode = "trailer"
                else:
                    self._chunk_left = size
                    self._mode = "chunk-data"
            elif self._mode == "chunk-data":
                if not buf:
                    return
                take = min(self._chunk_left, len(buf))
                self._body += buf[:take]
                del buf[:take]
                self._chunk_left -= take
                if self._chunk_left:
                    return
                self._mode = "chunk-crlf"
            elif self._mode == "chunk-crlf":
                if len(buf) < 2:
                    return
                if buf[:2] != _CRLF:
                    raise ProtocolViolation("chunk data not followed by CRLF")
                del buf[:2]
                self._mode = "chunk-size"
            else:  # trailer section: header lines until an empty line
                end = buf.find(_CRLF)
                if end < 0:
                    if len(buf) > MAX_HEAD_BYTES:
                        raise ProtocolViolation("trailer section too large")
                    return
                line = bytes(buf[:end])
                del buf[: end + 2]
                if not line:
                    assert self.head is not None
                    self._finish(reusable=self.head.keep_alive and not buf)
                    return

    def _finish(self, *, reusable: bool) -> None:
        self.done = True
        self.reusable = reusable
        self._buf = bytearray()


def _check_header_text(text: str, what: str) -> None:
    if "\r" in text or "\n" in text or "\0" in text:
        # The value is not echoed: it may be a credential.
        raise ValueError(f"{what} contains a line break or NUL")


def encode_head_block(headers: Iterable[tuple[str, str]]) -> bytes:
    """Encode fixed header lines once (Host, User-Agent, auth): the per-request cost is a join.

    Values are checked for CR/LF so no caller-supplied header can inject another.
    """
    lines = []
    for name, value in headers:
        _check_header_text(name, "header name")
        _check_header_text(value, f"header {name!r}")
        lines.append(f"{name}: {value}\r\n")
    return "".join(lines).encode("latin-1")


def encode_request_head(
    method: str,
    target: str,
    fixed_block: bytes,
    extra_headers: Mapping[str, str] | None,
    body: bytes | None,
) -> bytes:
    """Serialize a request's head: request line, the node's fixed header block, per-call
    headers, and the Content-Length that frames ``body``. The body itself is not copied in: a
    driver that can write the two with one system call (``sendmsg``) need not copy a megabyte
    of bulk body behind a few hundred bytes of head."""
    if not _METHOD.fullmatch(method):
        raise ValueError(f"invalid HTTP method {method[:20]!r}")
    _check_header_text(target, "request target")
    if " " in target or "\t" in target:
        raise ValueError(f"request target contains white space: {target[:60]!r}")
    if extra_headers:
        for name in extra_headers:
            if name.lower() in _FRAMING_HEADERS:
                raise ValueError(
                    f"header {name!r} is set by the client itself and cannot be overridden"
                )
    parts = [f"{method} {target} HTTP/1.1\r\n".encode("latin-1"), fixed_block]
    if extra_headers:
        parts.append(encode_head_block(extra_headers.items()))
    if body is not None:
        parts.append(b"content-length: %d\r\n\r\n" % len(body))
    elif method in ("POST", "PUT", "PATCH"):
        parts.append(b"content-length: 0\r\n\r\n")
    else:
        parts.append(b"\r\n")
    return b"".join(parts)
