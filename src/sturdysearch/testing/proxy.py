"""A fault-injecting HTTP/1.1 proxy that sits between the client under test and a real node.

It runs in daemon threads inside the test process, so a test can flip faults between two
requests without any out-of-process coordination. It understands just enough HTTP/1.1
(message heads, Content-Length and chunked bodies, close-delimited responses, `Connection`)
to find request boundaries on keep-alive connections, because the interesting failures are
per request: "the third bulk request of this pooled connection is reset after it reached the
server" is a different bug from "the connection could not be opened".

Each client connection gets its own upstream connection, opened lazily, and the pair is
handled by one thread with blocking sockets. `close()` wakes blocked threads by shutting
their sockets down and then waits for them, so a finished test leaves no threads or file
descriptors behind; leak tests depend on that.
"""

from __future__ import annotations

import contextlib
import http
import random
import select
import socket
import ssl
import struct
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, fields
from types import TracebackType
from typing import TypeVar

from sturdysearch.testing.faults import Fault, FaultKind

__all__ = ["Fault", "FaultKind", "FaultProxy", "ProxyStats"]

_RECV_SIZE = 256 * 1024
_MAX_HEAD = 256 * 1024
_MAX_LINE = 64 * 1024
_P = TypeVar("_P", bound="FaultProxy")
_POLL_IN = select.POLLIN | select.POLLPRI | select.POLLHUP | select.POLLERR


# --------------------------------------------------------------------------------------
# stats


@dataclass(frozen=True)
class ProxyStats:
    """A consistent snapshot of the proxy's counters; `open_connections` is a gauge."""

    connections_accepted: int = 0
    requests_seen: int = 0
    requests_forwarded: int = 0
    faults_applied: int = 0
    upstream_connections_opened: int = 0
    upstream_connect_failures: int = 0
    tls_handshake_failures: int = 0
    open_connections: int = 0


_COUNTERS = tuple(f.name for f in fields(ProxyStats) if f.name != "open_connections")


# --------------------------------------------------------------------------------------
# HTTP/1.1 framing


class _ProtocolError(Exception):
    """The peer sent something we cannot frame; the connection cannot be kept."""


class _Aborted(Exception):
    """The proxy (or a refuse fault) is tearing this connection down."""


class _CutResponse(Exception):
    """The response budget of a reset/truncate fault is spent."""

    def __init__(self, reset: bool) -> None:
        super().__init__("response cut")
        self.reset = reset


class _Reader:
    """Buffered reads from a blocking socket, without per-byte Python work."""

    __slots__ = ("_buf", "_sock")

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buf = bytearray()

    def has_buffered(self) -> bool:
        if self._buf:
            return True
        return isinstance(self._sock, ssl.SSLSocket) and self._sock.pending() > 0

    def _fill(self) -> bool:
        data = self._sock.recv(_RECV_SIZE)
        if not data:
            return False
        self._buf += data
        return True

    def read_head(self) -> bytes | None:
        """Return one message head (through the blank line), or None on a clean EOF."""
        searched = 0
        while True:
            # RFC 9112 2.2: ignore empty lines before a request line.
            while self._buf.startswith(b"\r\n"):
                del self._buf[:2]
                searched = 0
            idx = self._buf.find(b"\r\n\r\n", searched)
            if idx >= 0:
                head = bytes(self._buf[: idx + 4])
                del self._buf[: idx + 4]
                return head
            if len(self._buf) > _MAX_HEAD:
                raise _ProtocolError("message head too large")
            searched = max(0, len(self._buf) - 3)
            if not self._fill():
                if self._buf:
                    raise _ProtocolError("connection closed inside a message head")
                return None

    def read_line(self) -> bytes:
        searched = 0
        while True:
            idx = self._buf.find(b"\n", searched)
            if idx >= 0:
                line = bytes(self._buf[: idx + 1])
                del self._buf[: idx + 1]
                return line
            if len(self._buf) > _MAX_LINE:
                raise _ProtocolError("line too long")
            searched = len(self._buf)
            if not self._fill():
                raise _ProtocolError("connection closed inside a chunked body")

    def take_buffered(self, limit: int) -> bytes:
        data = bytes(self._buf[:limit])
        del self._buf[:limit]
        return data

    def read_some(self, limit: int) -> bytes:
        """Up to `limit` bytes, from the buffer first; b"" means EOF."""
        if self._buf:
            return self.take_buffered(limit)
        return self._sock.recv(min(limit, _RECV_SIZE))


_NONE, _LENGTH, _CHUNKED, _CLOSE = "none", "length", "chunked", "close"


@dataclass(frozen=True)
class _Head:
    start: tuple[str, str, str]
    headers: tuple[tuple[str, str], ...]
    raw: bytes

    def values(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k == name]

    def tokens(self, name: str) -> set[str]:
        return {t.strip().lower() for v in self.values(name) for t in v.split(",") if t.strip()}

    def content_length(self) -> int | None:
        found: set[int] = set()
        for value in self.values("content-length"):
            for part in value.split(","):
                part = part.strip()
                if not part.isdigit():
                    raise _ProtocolError(f"bad Content-Length {value!r}")
                found.add(int(part))
        if len(found) > 1:
            raise _ProtocolError("conflicting Content-Length headers")
        return found.pop() if found else None

    def chunked(self) -> bool | None:
        """True if chunked is the final coding, False if other codings, None if no TE."""
        codings = [
            t.strip().lower()
            for v in self.values("transfer-encoding")
            for t in v.split(",")
            if t.strip()
        ]
        if not codings:
            return None
        return codings[-1] == "chunked"

    def keep_alive(self, version: str) -> bool:
        conn = self.tokens("connection")
        if "close" in conn:
            return False
        if version == "HTTP/1.0":
            return "keep-alive" in conn
        return True


def _parse_head(raw: bytes) -> _Head:
    lines = raw[:-4].decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2:
        raise _ProtocolError(f"bad start line {lines[0]!r}")
    start = (parts[0], parts[1], parts[2] if len(parts) > 2 else "")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t"):
            if not headers:
                raise _ProtocolError("continuation line before any header")
            name, value = headers[-1]
            headers[-1] = (name, f"{value} {line.strip()}")
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise _ProtocolError(f"bad header line {line!r}")
        headers.append((name.lower(), value.strip()))
    return _Head(start, tuple(headers), raw)


@dataclass(frozen=True)
class _Request:
    head: _Head
    method: str
    target: str
    path: str
    version: str
    framing: str
    length: int
    keep_alive: bool
    expect_continue: bool


def _parse_request(raw: bytes) -> _Request:
    head = _parse_head(raw)
    method, target, version = head.start
    if not version.startswith("HTTP/1."):
        raise _ProtocolError(f"unsupported request line {raw[:80]!r}")
    path = target
    if "://" in target:  # absolute-form: match filters against the path the server sees
        split = urllib.parse.urlsplit(target)
        path = urllib.parse.urlunsplit(("", "", split.path or "/", split.query, ""))
    chunked = head.chunked()
    length = head.content_length()
    if chunked is False:
        raise _ProtocolError("request Transfer-Encoding does not end with chunked")
    if chunked:
        framing, size = _CHUNKED, 0
    elif length:
        framing, size = _LENGTH, length
    else:
        framing, size = _NONE, 0
    return _Request(
        head=head,
        method=method,
        target=target,
        path=path,
        version=version,
        framing=framing,
        length=size,
        keep_alive=head.keep_alive(version),
        expect_continue="100-continue" in head.tokens("expect") and version != "HTTP/1.0",
    )


@dataclass(frozen=True)
class _Response:
    head: _Head
    status: int
    version: str
    framing: str
    length: int
    keep_alive: bool


def _parse_response(raw: bytes, request_method: str) -> _Response:
    head = _parse_head(raw)
    version, code, _reason = head.start
    if not version.startswith("HTTP/1.") or not (len(code) == 3 and code.isdigit()):
        raise _ProtocolError(f"bad status line {raw[:80]!r}")
    status = int(code)
    chunked = head.chunked()
    length = head.content_length()
    if request_method == "HEAD" or 100 <= status < 200 or status in (204, 304):
        framing, size = _NONE, 0
    elif chunked:
        framing, size = _CHUNKED, 0
    elif chunked is None and length is not None:
        framing, size = (_LENGTH, length) if length else (_NONE, 0)
    else:
        framing, size = _CLOSE, 0
    return _Response(
        head=head,
        status=status,
        version=version,
        framing=framing,
        length=size,
        keep_alive=head.keep_alive(version) and framing != _CLOSE and status != 101,
    )


def _forward_exact(reader: _Reader, size: int, sink: Callable[[bytes], None]) -> None:
    remaining = size
    while remaining:
        data = reader.read_some(remaining)
        if not data:
            raise _ProtocolError("connection closed inside a body")
        sink(data)
        remaining -= len(data)


def _forward_chunked(reader: _Reader, sink: Callable[[bytes], None]) -> None:
    while True:
        line = reader.read_line()
        size_text = line.split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise _ProtocolError(f"bad chunk size line {line[:40]!r}") from None
        if size < 0:
            raise _ProtocolError("negative chunk size")
        if size == 0:
            parts = [line]
            while True:  # trailer section ends with an empty line
                trailer = reader.read_line()
                parts.append(trailer)
                if trailer in (b"\r\n", b"\n"):
                    break
            sink(b"".join(parts))
            return
        # Send the size line with the first slice of data, keeping small chunks one write.
        first = reader.take_buffered(size + 2)
        sink(line + first)
        _forward_exact(reader, size + 2 - len(first), sink)


def _forward_body(
    reader: _Reader, framing: str, length: int, sink: Callable[[bytes], None]
) -> None:
    if framing == _LENGTH:
        _forward_exact(reader, length, sink)
    elif framing == _CHUNKED:
        _forward_chunked(reader, sink)
    elif framing == _CLOSE:
        while data := reader.read_some(_RECV_SIZE):
            sink(data)


def _discard(_data: bytes) -> None:
    return None


def _canned_response(fault: Fault, request: _Request, close: bool) -> bytes:
    code = fault.status_code
    try:
        reason = http.HTTPStatus(code).phrase
    except ValueError:
        reason = "Injected Fault"
    body = fault.body
    if body is None:
        body = (
            b'{"error":{"type":"sturdysearch_injected_fault","reason":"status %d injected by '
            b'FaultProxy"},"status":%d}' % (code, code)
        )
    names = {name.lower() for name, _ in fault.headers}
    lines = [f"HTTP/1.1 {code} {reason}"]
    lines.extend(f"{name}: {value}" for name, value in fault.headers)
    no_body = request.method == "HEAD" or 100 <= code < 200 or code in (204, 304)
    if "content-type" not in names and body and not no_body:
        lines.append("Content-Type: application/json")
    if (
        "content-length" not in names
        and "transfer-encoding" not in names
        and code not in (204, 304)
    ):
        lines.append(f"Content-Length: {len(body)}")
    if close and "connection" not in names:
        lines.append("Connection: close")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head if no_body else head + body


def _strip_expect(raw: bytes) -> bytes:
    lines = raw[:-4].split(b"\r\n")
    kept = [line for line in lines if not line.lower().startswith(b"expect:")]
    return b"\r\n".join(kept) + b"\r\n\r\n"


# --------------------------------------------------------------------------------------
# per-connection plumbing


def _shutdown_quietly(sock: socket.socket) -> None:
    # socket.socket.shutdown, not SSLSocket.shutdown: the latter drops the TLS state,
    # which the owning thread may still be using when it wakes up.
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


def _linger(sock: ssl.SSLSocket) -> None:
    """After a failed handshake, let the client read the alert before the socket closes.

    Under TLS 1.3 the client's side of the handshake ends before the server judges its
    certificate, so the client's first request may already sit unread here. Closing a socket
    with unread input sends a reset, and a reset makes the client's kernel drop the alert it
    has not read yet: the client would see "connection reset" instead of the server's reason.
    So, as servers do with a lingering close: stop sending, then read and discard until the
    client closes (it does once it has read the alert), for at most a second."""
    with contextlib.suppress(OSError, ValueError):
        sock.shutdown(socket.SHUT_WR)  # also detaches the TLS layer: recv reads raw bytes
        sock.settimeout(1.0)
        limit = time.monotonic() + 1.0
        while time.monotonic() < limit and sock.recv(_RECV_SIZE):
            pass


def _close_quietly(sock: socket.socket, *, reset: bool = False) -> None:
    if reset:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


class _Connection:
    """One client connection and its lazily opened upstream twin."""

    def __init__(self, client: socket.socket, ident: int) -> None:
        self.ident = ident
        self.client = client
        self.client_reader = _Reader(client)
        self.upstream: socket.socket | None = None
        self.upstream_reader: _Reader | None = None
        self.aborted = threading.Event()
        self.thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False

    def abort(self) -> None:
        """Wake the owning thread from any blocking call; safe from any thread."""
        self.aborted.set()
        with self._lock:
            if self._closed:
                return
            _shutdown_quietly(self.client)
            if self.upstream is not None:
                _shutdown_quietly(self.upstream)

    def wait(self, seconds: float) -> None:
        if self.aborted.wait(seconds):
            raise _Aborted()

    def attach_upstream(self, sock: socket.socket) -> None:
        with self._lock:
            if self._closed or self.aborted.is_set():
                _close_quietly(sock)
                raise _Aborted()
            self.upstream = sock
            self.upstream_reader = _Reader(sock)

    def drop_upstream(self) -> None:
        with self._lock:
            if self.upstream is not None:
                _close_quietly(self.upstream)
            self.upstream = None
            self.upstream_reader = None

    def close(self, *, reset: bool) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self.upstream is not None:
                _close_quietly(self.upstream)
            self.upstream = None
            self.upstream_reader = None
            if not reset:
                # FIN first, then swallow what the client already sent: closing a socket
                # with unread bytes makes the kernel send an RST, and a clean close (a
                # truncate fault, a close-delimited body) must not look like a reset.
                with contextlib.suppress(OSError):
                    socket.socket.shutdown(self.client, socket.SHUT_WR)
                    self.client.setblocking(False)
                    for _ in range(64):
                        if not self.client.recv(_RECV_SIZE):
                            break
            _close_quietly(self.client, reset=reset)


class _ResponseWriter:
    """Sends response bytes to the client, applying the response-side part of a fault."""

    def __init__(self, conn: _Connection, fault: Fault | None) -> None:
        self._conn = conn
        self._sock = conn.client
        kind = fault.kind if fault is not None else None
        self._delay = fault.delay if fault is not None and kind is FaultKind.LATENCY else 0.0
        self._drip = fault if kind is FaultKind.DRIP else None
        self._budget: int | None = None
        self._reset = kind is FaultKind.RESET_MID_RESPONSE
        if fault is not None and kind in (FaultKind.RESET_MID_RESPONSE, FaultKind.TRUNCATE):
            self._budget = fault.after_bytes
        self._started = False

    def write(self, data: bytes) -> None:
        if self._delay > 0:
            self._conn.wait(self._delay)
            self._delay = 0.0
        if self._budget is not None:
            if len(data) >= self._budget:
                if self._budget:
                    self._sock.sendall(data[: self._budget])
                self._budget = 0
                raise _CutResponse(self._reset)
            self._sock.sendall(data)
            self._budget -= len(data)
        elif self._drip is not None:
            step = self._drip.chunk
            view = memoryview(data)
            for offset in range(0, len(view), step):
                if self._started:
                    self._conn.wait(self._drip.interval)
                self._started = True
                self._sock.sendall(view[offset : offset + step])
        else:
            self._sock.sendall(data)

    def finish(self) -> None:
        if self._budget is not None:
            raise _CutResponse(self._reset)


class _Outcome:
    KEEP = "keep"
    CLOSE = "close"
    RESET = "reset"


class _Rule:
    """An installed fault with its own remaining budget and random generator."""

    def __init__(self, fault: Fault) -> None:
        self.fault = fault
        self.remaining = fault.limit
        self.rng = random.Random(fault.seed)


# --------------------------------------------------------------------------------------
# the proxy


def _parse_upstream(upstream: str | tuple[str, int]) -> tuple[str, int, bool]:
    if isinstance(upstream, tuple):
        host, port = upstream
        return host, int(port), False
    split = urllib.parse.urlsplit(upstream)
    if split.scheme not in ("http", "https") or not split.hostname:
        raise ValueError(f"upstream must be an http(s) URL or (host, port), got {upstream!r}")
    if split.path not in ("", "/") or split.query or split.fragment:
        raise ValueError(f"the proxy does not rewrite paths; drop the path from {upstream!r}")
    tls = split.scheme == "https"
    return split.hostname, split.port or (443 if tls else 80), tls


class FaultProxy:
    """An HTTP/1.1 proxy on 127.0.0.1 that forwards to `upstream` and injects faults.

    `upstream` is `"http://host:port"` or `(host, port)`; an `https://` upstream needs
    `upstream_ssl_context`. A `tls_context` (server side) makes the proxy speak TLS to
    its clients, which is what `sturdysearch.testing.tls.TLSProxy` builds on.
    """

    def __init__(
        self,
        upstream: str | tuple[str, int],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tls_context: ssl.SSLContext | None = None,
        upstream_ssl_context: ssl.SSLContext | None = None,
        connect_timeout: float = 5.0,
        join_timeout: float = 5.0,
    ) -> None:
        up_host, up_port, up_tls = _parse_upstream(upstream)
        if up_tls and upstream_ssl_context is None:
            raise ValueError("an https upstream needs upstream_ssl_context")
        self._upstream_addr = (up_host, up_port)
        self._upstream_ssl = upstream_ssl_context if up_tls else None
        self._upstream_host = up_host
        self._host = host
        self._port = port
        self._tls_context = tls_context
        self._connect_timeout = connect_timeout
        self._join_timeout = join_timeout

        self._control = threading.RLock()  # start/close/set_fault transitions
        self._cond = threading.Condition()  # stats, rules, connection registry
        self._counters = dict.fromkeys(_COUNTERS, 0)
        self._rules: list[_Rule] = []
        self._connections: dict[int, _Connection] = {}
        self._next_ident = 0
        self._started = False
        self._closing = False
        self._listener: socket.socket | None = None
        self._wake: tuple[socket.socket, socket.socket] | None = None
        self._accept_thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def start(self: _P) -> _P:
        """Bind a port and start accepting; returns self for chaining."""
        with self._control:
            if self._started:
                raise RuntimeError("FaultProxy already started")
            if self._closing:
                raise RuntimeError("FaultProxy is closed")
            self._open_listener()
            self._started = True
        return self

    def close(self) -> None:
        """Stop listening, abort every connection and wait (bounded) for all threads."""
        with self._control:
            with self._cond:
                if self._closing:
                    return
                self._closing = True
            self._close_listener()
            with self._cond:
                conns = list(self._connections.values())
            for conn in conns:
                conn.abort()
            deadline = time.monotonic() + self._join_timeout
            for conn in conns:
                if conn.thread is not None:
                    conn.thread.join(max(0.0, deadline - time.monotonic()))
            with self._cond:
                leftovers = list(self._connections.values())
            for conn in leftovers:  # a thread stuck past the bound: reclaim its sockets anyway
                conn.close(reset=True)

    def __enter__(self: _P) -> _P:
        if not self._started:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- addresses ------------------------------------------------------------------------

    @property
    def scheme(self) -> str:
        return "https" if self._tls_context is not None else "http"

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        """The listening port; stable across refuse/re-listen so clients keep one URL."""
        if not self._started:
            raise RuntimeError("FaultProxy not started")
        return self._port

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self._host}:{self.port}"

    def url_for_host(self, host: str) -> str:
        """The proxy URL under another name for 127.0.0.1, for host-name verification tests."""
        return f"{self.scheme}://{host}:{self.port}"

    # -- faults ---------------------------------------------------------------------------

    def set_fault(self, fault: Fault | None) -> None:
        """Replace all installed faults; `None` means plain pass-through.

        Only requests whose head arrives after this call are affected. `Fault.refuse()`
        closes the listener; any other value (including `None`) re-opens it on the same port.
        """
        with self._control:
            if self._closing:
                raise RuntimeError("FaultProxy is closed")
            if fault is not None and fault.kind is FaultKind.REFUSE:
                if fault.limit is not None or fault.method or fault.path_prefix or fault.path_regex:
                    raise ValueError("refuse() cannot be limited or filtered")
                with self._cond:
                    self._rules = []
                self._close_listener()
                if fault.close_existing:
                    with self._cond:
                        conns = list(self._connections.values())
                    for conn in conns:
                        conn.abort()
                return
            with self._cond:
                self._rules = [_Rule(fault)] if fault is not None else []
            if self._started and self._listener is None:
                self._open_listener()

    def add_fault(self, fault: Fault) -> None:
        """Install another fault next to the current ones; the first that matches applies.

        Lets a test combine e.g. 429s on `_bulk` with latency on everything else.
        """
        if fault.kind is FaultKind.REFUSE:
            raise ValueError("use set_fault(Fault.refuse()) to stop listening")
        with self._cond:
            self._rules.append(_Rule(fault))

    @property
    def faults(self) -> tuple[Fault, ...]:
        """The installed per-request faults that still have applications left."""
        with self._cond:
            return tuple(r.fault for r in self._rules if r.remaining != 0)

    @property
    def refusing(self) -> bool:
        with self._control:
            return self._started and self._listener is None

    def _decide(self, request: _Request) -> Fault | None:
        with self._cond:
            self._counters["requests_seen"] += 1
            for rule in self._rules:
                if rule.remaining == 0 or not rule.fault.matches(request.method, request.path):
                    continue
                if rule.remaining is not None:
                    rule.remaining -= 1
                fault: Fault | None = rule.fault
                if rule.fault.kind is FaultKind.RANDOM:
                    fault = None
                    if rule.rng.random() < rule.fault.reset_probability:
                        fault = (
                            Fault.reset_before_request()
                            if rule.rng.random() < 0.5
                            else Fault.reset_after_request()
                        )
                if fault is not None:
                    self._counters["faults_applied"] += 1
                self._cond.notify_all()
                return fault
            self._cond.notify_all()
            return None

    # -- stats ----------------------------------------------------------------------------

    def _snapshot(self) -> ProxyStats:
        return ProxyStats(**self._counters, open_connections=len(self._connections))

    @property
    def stats(self) -> ProxyStats:
        with self._cond:
            return self._snapshot()

    @property
    def open_connections(self) -> int:
        """Client-side connections currently open, for connection-leak assertions."""
        with self._cond:
            return len(self._connections)

    def reset_stats(self) -> None:
        """Zero the counters (not the `open_connections` gauge)."""
        with self._cond:
            for name in self._counters:
                self._counters[name] = 0
            self._cond.notify_all()

    def wait_for(self, predicate: Callable[[ProxyStats], bool], timeout: float = 5.0) -> ProxyStats:
        """Block until `predicate(stats)` holds, so tests synchronise without sleeping.

        Raises TimeoutError (with the last stats) if it does not hold within `timeout`.
        """
        with self._cond:
            if self._cond.wait_for(lambda: predicate(self._snapshot()), timeout):
                return self._snapshot()
            raise TimeoutError(f"proxy stats never satisfied the condition: {self._snapshot()}")

    def _count(self, name: str) -> None:
        with self._cond:
            self._counters[name] += 1
            self._cond.notify_all()

    # -- listening ------------------------------------------------------------------------

    def _open_listener(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((self._host, self._port))
            listener.listen(128)
            listener.setblocking(False)
            wake = socket.socketpair()
        except BaseException:
            listener.close()
            raise
        self._port = listener.getsockname()[1]
        thread = threading.Thread(
            target=self._accept_loop,
            args=(listener, wake[0]),
            name=f"sturdysearch-proxy-{self._port}-accept",
            daemon=True,
        )
        self._listener, self._wake, self._accept_thread = listener, wake, thread
        thread.start()

    def _close_listener(self) -> None:
        listener, wake, thread = self._listener, self._wake, self._accept_thread
        self._listener = self._wake = self._accept_thread = None
        if wake is not None:
            with contextlib.suppress(OSError):
                wake[1].send(b"x")
        if thread is not None:
            thread.join(self._join_timeout)
        for sock in (listener, *(wake or ())):
            if sock is not None:
                _close_quietly(sock)

    def _accept_loop(self, listener: socket.socket, wake: socket.socket) -> None:
        poller = select.poll()
        poller.register(listener, select.POLLIN)
        poller.register(wake, select.POLLIN)
        wake_fd = wake.fileno()
        while True:
            events = poller.poll()
            if any(fd == wake_fd for fd, _ in events):
                return
            try:
                sock, _addr = listener.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                continue
            except OSError:
                # e.g. EMFILE: back off instead of spinning, but stay wakeable.
                if select.select([wake], [], [], 0.05)[0]:
                    return
                continue
            self._spawn(sock)

    def _spawn(self, sock: socket.socket) -> None:
        try:
            sock.setblocking(True)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._tls_context is not None:
                sock = self._tls_context.wrap_socket(
                    sock, server_side=True, do_handshake_on_connect=False
                )
        except OSError:
            _close_quietly(sock)
            return
        with self._cond:
            if self._closing:
                _close_quietly(sock)
                return
            self._next_ident += 1
            conn = _Connection(sock, self._next_ident)
            conn.thread = threading.Thread(
                target=self._serve,
                args=(conn,),
                name=f"sturdysearch-proxy-{self._port}-conn-{conn.ident}",
                daemon=True,
            )
            self._connections[conn.ident] = conn
            self._counters["connections_accepted"] += 1
            self._cond.notify_all()
            conn.thread.start()

    # -- serving a connection -------------------------------------------------------------

    def _serve(self, conn: _Connection) -> None:
        outcome = _Outcome.CLOSE
        try:
            if isinstance(conn.client, ssl.SSLSocket):
                try:
                    conn.client.do_handshake()
                except (ssl.SSLError, OSError):
                    if not conn.aborted.is_set():
                        self._count("tls_handshake_failures")
                        _linger(conn.client)
                    return
            while not conn.aborted.is_set():
                if not self._await_request(conn):
                    break
                raw = conn.client_reader.read_head()
                if raw is None:
                    break
                try:
                    request = _parse_request(raw)
                except _ProtocolError:
                    conn.client.sendall(
                        b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                        b"Connection: close\r\n\r\n"
                    )
                    break
                fault = self._decide(request)
                outcome = self._handle(conn, request, fault)
                if outcome != _Outcome.KEEP:
                    break
        except _CutResponse as cut:
            outcome = _Outcome.RESET if cut.reset else _Outcome.CLOSE
        except (_Aborted, _ProtocolError, OSError):
            outcome = _Outcome.CLOSE
        finally:
            conn.close(reset=outcome == _Outcome.RESET)
            with self._cond:
                self._connections.pop(conn.ident, None)
                self._cond.notify_all()

    def _await_request(self, conn: _Connection) -> bool:
        """Wait for the next request while watching the idle upstream connection.

        A server closing an idle keep-alive connection is mirrored to the client, so the
        client sees what it would see without the proxy.
        """
        while True:
            upstream = conn.upstream
            if conn.client_reader.has_buffered() or upstream is None:
                return True
            poller = select.poll()
            poller.register(conn.client, _POLL_IN)
            poller.register(upstream, _POLL_IN)
            ready = {fd for fd, _ in poller.poll()}
            if conn.aborted.is_set():
                return False
            if upstream.fileno() in ready:
                upstream.setblocking(False)
                try:
                    data = upstream.recv(_RECV_SIZE)
                except (BlockingIOError, ssl.SSLWantReadError):
                    continue  # TLS housekeeping record, no application data
                finally:
                    upstream.setblocking(True)
                # EOF: the server dropped the idle connection. Data: it spoke out of turn.
                # Either way this connection pair is finished.
                del data
                return False
            return True

    def _handle(self, conn: _Connection, request: _Request, fault: Fault | None) -> str:
        kind = fault.kind if fault is not None else None
        if kind is FaultKind.RESET_BEFORE_REQUEST:
            return _Outcome.RESET
        if kind is FaultKind.BLACKHOLE:
            while conn.client_reader.read_some(_RECV_SIZE):
                pass  # swallow everything until the client or close() gives up
            return _Outcome.CLOSE
        if kind is FaultKind.STATUS:
            assert fault is not None
            if request.expect_continue:
                # The client may never send the body; answer and close rather than guess.
                conn.client.sendall(_canned_response(fault, request, close=True))
                return _Outcome.CLOSE
            _forward_body(conn.client_reader, request.framing, request.length, _discard)
            close = not request.keep_alive
            conn.client.sendall(_canned_response(fault, request, close=close))
            return _Outcome.CLOSE if close else _Outcome.KEEP

        upstream = self._ensure_upstream(conn)
        if upstream is None:
            return _Outcome.RESET
        head = request.head.raw
        if request.expect_continue:
            # We answer 100 ourselves and hide the expectation from the server, so the body
            # can be streamed without a second thread watching the upstream for an early answer.
            head = _strip_expect(head)
            if request.framing != _NONE:
                conn.client.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        body_now = b""
        if request.framing == _LENGTH:
            body_now = conn.client_reader.take_buffered(request.length)
            upstream.sendall(head + body_now)
            _forward_exact(conn.client_reader, request.length - len(body_now), upstream.sendall)
        else:
            upstream.sendall(head)
            _forward_body(conn.client_reader, request.framing, request.length, upstream.sendall)
        self._count("requests_forwarded")

        reader = conn.upstream_reader
        assert reader is not None
        if kind is FaultKind.DROP_ANSWER:
            raw = reader.read_head()
            if raw is not None:
                response = _parse_response(raw, request.method)
                _forward_body(reader, response.framing, response.length, _discard)
            while conn.client_reader.read_some(_RECV_SIZE):
                pass  # nothing goes back; swallow until the client or close() gives up
            return _Outcome.CLOSE
        if kind is FaultKind.RESET_AFTER_REQUEST:
            # The server has acted on the request once it answers. Draining the answer lets
            # the upstream connection end with a FIN, not an RST the server would log.
            raw = reader.read_head()
            if raw is not None:
                response = _parse_response(raw, request.method)
                _forward_body(reader, response.framing, response.length, _discard)
            return _Outcome.RESET
        return self._relay_response(conn, request, reader, _ResponseWriter(conn, fault))

    def _ensure_upstream(self, conn: _Connection) -> socket.socket | None:
        if conn.upstream is not None:
            return conn.upstream
        try:
            sock = socket.create_connection(self._upstream_addr, timeout=self._connect_timeout)
        except OSError:
            self._count("upstream_connect_failures")
            return None
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._upstream_ssl is not None:
                sock = self._upstream_ssl.wrap_socket(sock, server_hostname=self._upstream_host)
            sock.settimeout(None)
        except OSError:
            _close_quietly(sock)
            self._count("upstream_connect_failures")
            return None
        conn.attach_upstream(sock)
        self._count("upstream_connections_opened")
        return sock

    def _relay_response(
        self, conn: _Connection, request: _Request, reader: _Reader, writer: _ResponseWriter
    ) -> str:
        while True:
            raw = reader.read_head()
            if raw is None:
                # The server closed without answering; mirror that to the client.
                conn.drop_upstream()
                return _Outcome.CLOSE
            response = _parse_response(raw, request.method)
            if 100 <= response.status < 200 and response.status != 101:
                writer.write(raw)
                continue
            break
        if response.framing == _LENGTH:
            first = reader.take_buffered(response.length)
            writer.write(raw + first)
            _forward_exact(reader, response.length - len(first), writer.write)
        else:
            writer.write(raw)
            _forward_body(reader, response.framing, response.length, writer.write)
        writer.finish()
        if response.framing == _CLOSE or response.status == 101:
            conn.drop_upstream()
            return _Outcome.CLOSE
        if not (request.keep_alive and response.keep_alive):
            return _Outcome.CLOSE
        return _Outcome.KEEP
