"""Raw timings of one node: DNS, TCP connect, TLS handshake and the first byte of ``GET /``,
each measured on its own and under its own deadline, then a short series of ``GET /`` for
latency percentiles.

The client hides where time goes (a 2 s call may be a slow resolver, a firewall dropping SYNs
or a node stuck in GC), so these probes use sockets directly, with the client's own TLS
settings (``build_ssl_context(config.tls)``) so that a certificate the client would refuse is
refused here too. No credentials are sent: a ``401`` is as good an answer as any for timing,
and nothing secret can end up in a report. Everything measured is kept in a
:class:`NodeProbe` for the pure judges in ``reach`` and ``tls``.
"""

from __future__ import annotations

import hashlib
import http.client
import socket
import ssl
import time
from dataclasses import dataclass, field

from sturdysearch._core.nodes import NodeConfig
from sturdysearch.errors import SturdySearchError
from sturdysearch.tls import TLSConfig, build_ssl_context, check_pin

MAX_HEAD = 16 * 1024
LATENCY_SAMPLES = 10


@dataclass(slots=True)
class Step:
    """One timed step: seconds taken, or what went wrong (``timeout`` says whether it was the
    deadline)."""

    seconds: float | None = None
    error: str | None = None
    timeout: bool = False

    @property
    def done(self) -> bool:
        return self.seconds is not None and self.error is None


@dataclass(slots=True)
class NodeProbe:
    """Everything measured about one node."""

    url: str
    host: str
    port: int
    tls: bool
    dns: Step = field(default_factory=Step)
    addresses: list[str] = field(default_factory=list)
    tcp: Step | None = None
    handshake: Step | None = None
    tls_version: str | None = None
    cert_der: bytes | None = None
    verify_code: int | None = None
    verify_message: str | None = None
    pin_error: str | None = None
    first_byte: Step | None = None
    status: int | None = None
    location: str | None = None
    latencies: list[float] = field(default_factory=list)
    latency_error: str | None = None

    @property
    def answered(self) -> bool:
        """Whether the node answered HTTP at all (any status)."""
        return self.status is not None

    @property
    def fingerprint(self) -> str | None:
        return hashlib.sha256(self.cert_der).hexdigest() if self.cert_der else None


def _elapsed(started: float) -> float:
    return time.monotonic() - started


def _describe(exc: BaseException) -> str:
    if isinstance(exc, socket.timeout):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def probe_node(node: NodeConfig, tls: TLSConfig, timeout: float) -> NodeProbe:
    """Measure ``node``; never raises for what the network or the server does."""
    probe = NodeProbe(url=node.url, host=node.host, port=node.port, tls=node.is_tls)
    started = time.monotonic()
    try:
        infos = socket.getaddrinfo(node.host, node.port, type=socket.SOCK_STREAM)
    except OSError as exc:
        probe.dns = Step(error=_describe(exc))
        return probe
    probe.dns = Step(seconds=_elapsed(started))
    probe.addresses = sorted({str(info[4][0]) for info in infos})
    family, kind, proto, _, address = infos[0]
    sock = _connect(probe, family, kind, proto, address, timeout)
    if sock is None:
        return probe
    try:
        if node.is_tls:
            wrapped = _handshake(probe, sock, node, tls, timeout)
            if wrapped is None:
                return probe
            sock = wrapped
        _first_byte(probe, sock, node, timeout)
    finally:
        sock.close()
    _latency_series(probe, node, tls, timeout)
    return probe


def _connect(
    probe: NodeProbe,
    family: int,
    kind: int,
    proto: int,
    address: tuple[object, ...],
    timeout: float,
) -> socket.socket | None:
    sock = socket.socket(family, kind, proto)
    sock.settimeout(timeout)
    started = time.monotonic()
    try:
        sock.connect(address)
    except OSError as exc:
        sock.close()
        probe.tcp = Step(error=_describe(exc), timeout=isinstance(exc, socket.timeout))
        return None
    probe.tcp = Step(seconds=_elapsed(started))
    return sock


def _handshake(
    probe: NodeProbe, sock: socket.socket, node: NodeConfig, tls: TLSConfig, timeout: float
) -> ssl.SSLSocket | None:
    """The handshake with the client's context; when verification fails, once more without
    verification, on a new connection, so the certificate can still be judged (its expiry)
    and the node's HTTP still timed. Nothing secret is ever sent over either."""
    try:
        context = build_ssl_context(tls)
    except SturdySearchError as exc:
        probe.handshake = Step(error=str(exc))
        sock.close()
        return None
    started = time.monotonic()
    try:
        wrapped = context.wrap_socket(sock, server_hostname=node.host)
    except ssl.SSLCertVerificationError as exc:
        probe.handshake = Step(seconds=_elapsed(started))
        probe.verify_code = exc.verify_code
        probe.verify_message = exc.verify_message
        return _unverified(probe, node, timeout)
    except (ssl.SSLError, OSError) as exc:
        sock.close()
        probe.handshake = Step(error=_describe(exc), timeout=isinstance(exc, socket.timeout))
        return None
    probe.handshake = Step(seconds=_elapsed(started))
    probe.tls_version = wrapped.version()
    probe.cert_der = wrapped.getpeercert(binary_form=True)
    if tls.ssl_assert_fingerprint is not None:
        try:
            check_pin(wrapped, tls.ssl_assert_fingerprint, node.url)
        except SturdySearchError as exc:
            probe.pin_error = str(exc)
    return wrapped


def _unverified(probe: NodeProbe, node: NodeConfig, timeout: float) -> ssl.SSLSocket | None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False  # noqa: SSP101 (only to read the refused certificate)
    context.verify_mode = ssl.CERT_NONE  # noqa: SSP101
    try:
        sock = socket.create_connection((node.host, node.port), timeout=timeout)
        wrapped = context.wrap_socket(sock, server_hostname=node.host)
    except (ssl.SSLError, OSError):
        return None
    probe.tls_version = wrapped.version()
    probe.cert_der = wrapped.getpeercert(binary_form=True)
    return wrapped


def _first_byte(probe: NodeProbe, sock: socket.socket, node: NodeConfig, timeout: float) -> None:
    request = (
        f"GET {node.path_prefix or ''}/ HTTP/1.1\r\nHost: {node.host_header}\r\n"
        "User-Agent: sturdysearch-doctor\r\nAccept: application/json\r\n"
        "Connection: close\r\n\r\n"
    ).encode("ascii")
    sock.settimeout(timeout)
    started = time.monotonic()
    try:
        sock.sendall(request)
        head = sock.recv(1)
        if not head:
            probe.first_byte = Step(error="the node closed the connection without answering")
            return
        probe.first_byte = Step(seconds=_elapsed(started))
        while b"\r\n\r\n" not in head and len(head) < MAX_HEAD:
            chunk = sock.recv(4096)
            if not chunk:
                break
            head += chunk
    except OSError as exc:
        if probe.first_byte is None:
            probe.first_byte = Step(error=_describe(exc), timeout=isinstance(exc, socket.timeout))
            return
    status, location = parse_head(head)
    probe.status = status
    probe.location = location
    if status is None and probe.first_byte is not None:
        probe.first_byte = Step(error=f"not an HTTP answer: {head[:40]!r}")


def parse_head(head: bytes) -> tuple[int | None, str | None]:
    """The status and ``Location`` of a response head (``None`` when it is not HTTP)."""
    lines = head.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        return None, None
    location = None
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if sep and name.strip().lower() == b"location":
            location = value.strip().decode("latin-1")
    return int(parts[1]), location


def _latency_series(probe: NodeProbe, node: NodeConfig, tls: TLSConfig, timeout: float) -> None:
    """``GET /`` :data:`LATENCY_SAMPLES` times over one kept-alive connection, within
    ``timeout`` in all: the round trip of a request the node serves without work."""
    deadline = time.monotonic() + timeout
    conn: http.client.HTTPConnection
    if node.is_tls:
        if probe.verify_code is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False  # noqa: SSP101 (timing only; nothing is sent)
            context.verify_mode = ssl.CERT_NONE  # noqa: SSP101
        else:
            context = build_ssl_context(tls)
        conn = http.client.HTTPSConnection(node.host, node.port, timeout=timeout, context=context)
    else:
        conn = http.client.HTTPConnection(node.host, node.port, timeout=timeout)
    try:
        conn.connect()
        for _ in range(LATENCY_SAMPLES):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            if conn.sock is not None:
                conn.sock.settimeout(remaining)
            started = time.monotonic()
            conn.request(
                "GET", f"{node.path_prefix or ''}/", headers={"Accept": "application/json"}
            )
            response = conn.getresponse()
            response.read()
            probe.latencies.append(_elapsed(started))
            if response.will_close:
                conn.close()
                conn.connect()
    except (OSError, http.client.HTTPException) as exc:
        probe.latency_error = _describe(exc)
    finally:
        conn.close()
