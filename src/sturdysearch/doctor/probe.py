"""Raw timings of one node: DNS, TCP connect, TLS handshake and the first byte of ``GET /``,
each measured on its own and under its own deadline, then a short series of ``GET /`` for
latency percentiles.

The client hides where time goes (a 2 s call may be a slow resolver, a firewall dropping SYNs
or a node stuck in GC), so these probes use sockets directly, with the client's own TLS
settings (``build_ssl_context(config.tls)``) so that a certificate the client would refuse is
refused here too. No credentials are sent: a ``401`` is as good an answer as any for timing,
and nothing secret can end up in a report. Everything measured is kept in a
:class:`NodeProbe` for the pure judges in ``reach`` and ``tls``.

A node the client reaches through an HTTP proxy is probed the same way through that proxy:
DNS and TCP are the proxy's, an ``https://`` node is reached through a ``CONNECT`` tunnel
(timed as its own step) and the handshake is with the node; an ``http://`` node gets
absolute-form requests. The only credentials sent are the proxy's own
(``Proxy-Authorization``, to the proxy), as the client sends them.
"""

from __future__ import annotations

import hashlib
import http.client
import socket
import ssl
import time
from dataclasses import dataclass, field

from sturdysearch._core.http1 import ProtocolViolation
from sturdysearch._core.nodes import NodeConfig
from sturdysearch._core.proxy import (
    ProxyEndpoint,
    TunnelAnswer,
    connect_request,
    tunnel_refused,
)
from sturdysearch.errors import SturdySearchError
from sturdysearch.tls import TLSConfig, build_ssl_context, check_pin

MAX_HEAD = 16 * 1024
LATENCY_SAMPLES = 10
USER_AGENT = "sturdysearch-doctor"


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
    proxy: str | None = None
    """The proxy the node is reached through (its URL, credentials shown as ``***``), or
    ``None`` for a direct connection. With a proxy, DNS and TCP are the proxy's, and every
    time includes the hop through it."""
    proxy_host: str | None = None
    proxy_port: int | None = None
    tunnel: Step | None = None
    """The ``CONNECT`` exchange with the proxy (an ``https://`` node through a proxy)."""
    legacy_version: str | None = None
    """The protocol the node offers when the client's handshake failed on the protocol
    version (``TLSv1.1``): learned by a second handshake that accepts old protocols."""

    @property
    def dial_host(self) -> str:
        """The host the TCP connection goes to: the proxy's, or the node's."""
        return self.proxy_host if self.proxy_host is not None else self.host

    @property
    def dial_port(self) -> int:
        return self.proxy_port if self.proxy_port is not None else self.port

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


def probe_node(
    node: NodeConfig, tls: TLSConfig, timeout: float, proxy: ProxyEndpoint | None = None
) -> NodeProbe:
    """Measure ``node`` (through ``proxy`` when given); never raises for what the network,
    the proxy or the server does."""
    probe = NodeProbe(url=node.url, host=node.host, port=node.port, tls=node.is_tls)
    if proxy is not None:
        probe.proxy, probe.proxy_host, probe.proxy_port = proxy.url, proxy.host, proxy.port
    started = time.monotonic()
    try:
        infos = socket.getaddrinfo(probe.dial_host, probe.dial_port, type=socket.SOCK_STREAM)
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
        if proxy is not None and node.is_tls:
            started = time.monotonic()
            error = _open_tunnel(sock, node, proxy, timeout)
            probe.tunnel = Step(seconds=_elapsed(started), error=error)
            if error is not None:
                return probe
        if node.is_tls:
            wrapped = _handshake(probe, sock, node, tls, timeout, proxy)
            if wrapped is None:
                return probe
            sock = wrapped
        _first_byte(probe, sock, node, timeout, proxy)
    finally:
        sock.close()
    _latency_series(probe, node, tls, timeout, proxy)
    return probe


def _open_tunnel(
    sock: socket.socket, node: NodeConfig, proxy: ProxyEndpoint, timeout: float
) -> str | None:
    """``CONNECT`` to ``node`` through the proxy on ``sock``: ``None`` once the tunnel is
    open, else what the proxy did (its refusal, as the client words it)."""
    answer = TunnelAnswer()
    try:
        sock.settimeout(timeout)
        sock.sendall(connect_request(node, proxy, USER_AGENT))
        while not answer.done:
            data = sock.recv(4096)
            if not data:
                answer.feed_eof()
            answer.feed(data)
    except OSError as exc:
        return f"no answer from the proxy to CONNECT: {_describe(exc)}"
    except ProtocolViolation as exc:
        return f"the proxy {proxy.url} failed to open a tunnel: {exc}"
    refusal = tunnel_refused(answer, proxy, node.url)
    return str(refusal) if refusal is not None else None


def _dial(node: NodeConfig, proxy: ProxyEndpoint | None, timeout: float) -> socket.socket:
    """A new TCP connection to ``node``: direct, or a tunnel through ``proxy``."""
    if proxy is None:
        return socket.create_connection((node.host, node.port), timeout=timeout)
    sock = socket.create_connection((proxy.host, proxy.port), timeout=timeout)
    if node.is_tls:
        error = _open_tunnel(sock, node, proxy, timeout)
        if error is not None:
            sock.close()
            raise OSError(error)
    return sock


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
    probe: NodeProbe,
    sock: socket.socket,
    node: NodeConfig,
    tls: TLSConfig,
    timeout: float,
    proxy: ProxyEndpoint | None,
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
        return _unverified(probe, node, timeout, proxy)
    except (ssl.SSLError, OSError) as exc:
        sock.close()
        probe.handshake = Step(error=_describe(exc), timeout=isinstance(exc, socket.timeout))
        if isinstance(exc, ssl.SSLError) and any(r in str(exc) for r in _VERSION_REFUSED):
            probe.legacy_version = _offered_version(node, timeout, proxy)
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


_VERSION_REFUSED = (
    "UNSUPPORTED_PROTOCOL",
    "PROTOCOL_VERSION",
    "WRONG_SSL_VERSION",
    "NO_PROTOCOLS_AVAILABLE",
    "VERSION_TOO_LOW",
)
"""OpenSSL's reasons for a handshake that failed on the protocol version."""


def _offered_version(node: NodeConfig, timeout: float, proxy: ProxyEndpoint | None) -> str | None:
    """The protocol the node negotiates when old ones are allowed (nothing is sent over it)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False  # noqa: SSP101 (only to learn the protocol offered)
    context.verify_mode = ssl.CERT_NONE  # noqa: SSP101
    context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    try:
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
        with context.wrap_socket(_dial(node, proxy, timeout), server_hostname=node.host) as s:
            return s.version()
    except (ssl.SSLError, OSError):
        return None


def _unverified(
    probe: NodeProbe, node: NodeConfig, timeout: float, proxy: ProxyEndpoint | None
) -> ssl.SSLSocket | None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False  # noqa: SSP101 (only to read the refused certificate)
    context.verify_mode = ssl.CERT_NONE  # noqa: SSP101
    try:
        sock = _dial(node, proxy, timeout)
        wrapped = context.wrap_socket(sock, server_hostname=node.host)
    except (ssl.SSLError, OSError):
        return None
    probe.tls_version = wrapped.version()
    probe.cert_der = wrapped.getpeercert(binary_form=True)
    return wrapped


def _absolute(node: NodeConfig, proxy: ProxyEndpoint | None) -> bool:
    """Whether requests to ``node`` go to the proxy in absolute form (plain http via proxy)."""
    return proxy is not None and not node.is_tls


def _root(node: NodeConfig, proxy: ProxyEndpoint | None) -> str:
    """The target of ``GET /``: origin-form, or absolute-form for a proxy."""
    path = f"{node.path_prefix or ''}/"
    return f"http://{node.host_header}{path}" if _absolute(node, proxy) else path


def _proxy_headers(node: NodeConfig, proxy: ProxyEndpoint | None) -> dict[str, str]:
    if _absolute(node, proxy) and proxy is not None and proxy.authorization is not None:
        return {"Proxy-Authorization": proxy.authorization.reveal()}
    return {}


def _first_byte(
    probe: NodeProbe,
    sock: socket.socket,
    node: NodeConfig,
    timeout: float,
    proxy: ProxyEndpoint | None,
) -> None:
    extra = "".join(f"{k}: {v}\r\n" for k, v in _proxy_headers(node, proxy).items())
    request = (
        f"GET {_root(node, proxy)} HTTP/1.1\r\nHost: {node.host_header}\r\n"
        f"User-Agent: {USER_AGENT}\r\nAccept: application/json\r\n{extra}"
        "Connection: close\r\n\r\n"
    ).encode("latin-1")
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


def _latency_series(
    probe: NodeProbe,
    node: NodeConfig,
    tls: TLSConfig,
    timeout: float,
    proxy: ProxyEndpoint | None = None,
) -> None:
    """``GET /`` :data:`LATENCY_SAMPLES` times over one kept-alive connection, within
    ``timeout`` in all: the round trip of a request the node serves without work (through
    the proxy, when there is one)."""
    deadline = time.monotonic() + timeout
    host, port = probe.dial_host, probe.dial_port
    conn: http.client.HTTPConnection
    if node.is_tls:
        if probe.verify_code is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False  # noqa: SSP101 (timing only; nothing is sent)
            context.verify_mode = ssl.CERT_NONE  # noqa: SSP101
        else:
            context = build_ssl_context(tls)
        conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
        if proxy is not None:
            tunnel_headers = {"User-Agent": USER_AGENT}
            if proxy.authorization is not None:
                tunnel_headers["Proxy-Authorization"] = proxy.authorization.reveal()
            conn.set_tunnel(node.host, node.port, headers=tunnel_headers)
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    headers = {"Accept": "application/json", **_proxy_headers(node, proxy)}
    try:
        conn.connect()
        for _ in range(LATENCY_SAMPLES):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            if conn.sock is not None:
                conn.sock.settimeout(remaining)
            started = time.monotonic()
            conn.request("GET", _root(node, proxy), headers=headers)
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
