"""One HTTP/1.1 connection over a blocking socket, every wait bounded.

The socket's timeout is set before *each* ``recv`` to the smaller of ``read_timeout`` and what is
left of the call's deadline, so a server that drips a byte a second is stopped by the deadline,
and one that goes silent by the read timeout, whichever comes first.
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
import time
from collections.abc import Callable

from sturdysearch._core.http1 import ProtocolViolation, ResponseHead, ResponseParser
from sturdysearch._core.nodes import NodeConfig
from sturdysearch._core.outcome import connect_timeout_error, violation_error
from sturdysearch._core.proxy import ProxyRoute, TunnelAnswer, tunnel_refused, tunnel_violation
from sturdysearch._core.timeouts import Deadline, deadline_ends_wait, read_wait
from sturdysearch.errors import (
    ConnectionError,
    DeadlineExceeded,
    ProxyError,
    ReadTimeout,
    TLSError,
)
from sturdysearch.tls import TLSConfig, check_pin, describe_tls_failure, is_tls_alert

_RECV_SIZE = 256 * 1024
#: Reads of the proxy's answer to CONNECT: its head is a few hundred bytes.
_TUNNEL_RECV_SIZE = 4096
_monotonic = time.monotonic


def _send_both(sock: socket.socket, head: bytes, body: bytes, deadline: Deadline) -> None:
    """``sendall(head + body)`` without making that buffer: one ``sendmsg`` writes both, and
    partial writes go on from where they stopped. Each wait is bounded by what is left of the
    deadline (``TimeoutError`` once it has passed), as ``sendall`` bounds its whole run."""
    pending = [memoryview(head), memoryview(body)]
    while True:
        sent = sock.sendmsg(pending)
        while sent:
            size = len(pending[0])
            if sent < size:
                pending[0] = pending[0][sent:]
                break
            sent -= size
            del pending[0]
        if not pending:
            return
        remaining = deadline.at - _monotonic()
        if remaining <= 0:
            raise TimeoutError
        sock.settimeout(remaining)


class Connection:
    """A connected socket to one node. Not thread-safe: the pool hands it to one caller at a
    time."""

    __slots__ = ("idle_since", "node", "pid", "sock")

    def __init__(self, sock: socket.socket, node: str, now: float) -> None:
        self.sock = sock
        self.node = node
        self.idle_since = now
        self.pid = 0

    def is_dropped(self) -> bool:
        """True if the server closed the connection (or sent unsolicited bytes) while idle."""
        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def _pending_tls_alert(self) -> ssl.SSLError | None:
        """After a failed TLS write, read what the server sent before closing: under TLS 1.3 a
        rejected client certificate arrives as an alert after the handshake."""
        try:
            self.sock.settimeout(0.2)
            self.sock.recv(1)
        except ssl.SSLError as exc:
            return exc if is_tls_alert(exc) else None
        except OSError:
            return None
        return None

    def abort(self) -> None:
        """Wake a thread blocked on this connection (it sees EOF or an error) and make the
        connection unusable; the owner still closes it."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)

    def exchange(
        self,
        data: bytes,
        body: bytes | None = None,
        *,
        head_request: bool,
        deadline: Deadline,
        read_timeout: float,
        hedge_at: float | None = None,
        on_hedge: Callable[[], None] | None = None,
    ) -> tuple[ResponseHead, bytes, bool]:
        """Send ``data`` (then ``body``, if given) and read one whole response.

        ``on_hedge`` is called once if no complete response has arrived by ``hedge_at``
        (monotonic time); the read goes on after it. Returns ``(head, body, reusable)``. Raises ``ConnectionError`` (with ``request_sent``),
        ``ReadTimeout``, ``DeadlineExceeded`` or ``MalformedResponseError``; after any of them
        the connection is unusable and the caller must close it.
        """
        self._send(data, body, deadline)
        parser = ResponseParser(head_request=head_request)
        try:
            self._receive(parser, deadline, read_timeout, hedge_at, on_hedge)
        except ProtocolViolation as exc:
            raise violation_error(exc, parser, self.node) from None
        except (ssl.SSLError, OSError) as exc:
            if isinstance(exc, TimeoutError):
                raise
            if isinstance(exc, ssl.SSLError) and is_tls_alert(exc):
                # TLS 1.3 servers reject a missing/bad client certificate after the client's
                # side of the handshake is done: the alert arrives on the first read.
                raise describe_tls_failure(exc, self.node) from None
            raise ConnectionError(
                f"connection failed while reading the response: {exc}",
                node=self.node,
                request_sent=True,
            ) from exc
        head = parser.head
        assert head is not None
        return head, parser.body(), parser.reusable

    def _send(self, data: bytes, body: bytes | None, deadline: Deadline) -> None:
        """Write the request within the deadline (a server that stops reading cannot hold
        the call past it)."""
        sock = self.sock
        remaining = deadline.at - _monotonic()
        if remaining <= 0:
            raise DeadlineExceeded("the call's deadline passed before the request was sent")
        try:
            sock.settimeout(remaining)
            if not body:
                sock.sendall(data)
            elif isinstance(sock, ssl.SSLSocket):
                sock.sendall(data + body)  # encrypted into records of its own anyway: one call
            else:
                _send_both(sock, data, body, deadline)
        except TimeoutError:
            raise DeadlineExceeded(
                "the call's deadline passed while sending the request (the server is not reading)",
                node=self.node,
            ) from None
        except OSError as exc:
            if isinstance(sock, ssl.SSLSocket):
                # An SSL error or a broken pipe: either way the server may have said why.
                alert = self._pending_tls_alert()
                if alert is not None:
                    raise describe_tls_failure(alert, self.node) from None
            # Part of the request may be in the server's buffers: treat it as sent.
            raise ConnectionError(
                f"connection failed while sending: {exc}", node=self.node, request_sent=True
            ) from exc

    def _receive(
        self,
        parser: ResponseParser,
        deadline: Deadline,
        read_timeout: float,
        hedge_at: float | None,
        on_hedge: Callable[[], None] | None,
    ) -> None:
        """Feed ``parser`` until the answer is complete, each ``recv`` bounded by
        ``read_wait`` (and by ``hedge_at``, when ``on_hedge`` is called once)."""
        sock = self.sock
        recv = sock.recv
        at = deadline.at
        quiet_since = _monotonic()
        while True:
            now = _monotonic()
            limit = read_wait(now, at, quiet_since, read_timeout)
            if limit <= 0:
                raise self._cut(parser, now, at, quiet_since, read_timeout)
            hedge_wait = False
            if hedge_at is not None:
                if hedge_at - now <= 0:
                    hedge_at = None
                    assert on_hedge is not None
                    on_hedge()
                    continue
                if hedge_at - now < limit:
                    limit = hedge_at - now
                    hedge_wait = True
            sock.settimeout(limit)
            try:
                chunk = recv(_RECV_SIZE)
            except TimeoutError:
                if hedge_wait:
                    continue
                now = _monotonic()
                raise self._cut(parser, now, at, quiet_since, read_timeout) from None
            if not chunk:
                parser.feed_eof()
                return
            quiet_since = _monotonic()
            parser.feed(chunk)
            if parser.done:
                return

    def _cut(
        self, parser: ResponseParser, now: float, at: float, quiet_since: float, read_timeout: float
    ) -> DeadlineExceeded | ReadTimeout:
        """Why the wait for the answer ended: the call's deadline, or the server's silence."""
        if deadline_ends_wait(now, at, quiet_since, read_timeout):
            return DeadlineExceeded(
                "the call's deadline passed while reading the response",
                node=self.node,
                request_sent=True,
                unanswered=parser.received == 0,
            )
        what = "response head" if parser.head is None else "rest of the response"
        return ReadTimeout(
            f"no data for {read_timeout:g} s while waiting for the {what}", node=self.node
        )


def open_connection(
    node: NodeConfig,
    *,
    ssl_context: ssl.SSLContext | None,
    tls: TLSConfig,
    connect_timeout: float,
    deadline: Deadline,
    proxy: ProxyRoute | None = None,
) -> Connection:
    """Connect (and handshake) within ``min(connect_timeout, remaining deadline)``. Through a
    ``proxy``, the connect goes to the proxy, and the CONNECT exchange of a tunnel shares the
    same budget as the TCP connect and the TLS handshake."""
    now = _monotonic()
    limit = deadline.connect_timeout_for(connect_timeout, now)
    if limit <= 0:
        raise DeadlineExceeded("the call's deadline passed before connecting", node=node.url)
    by_deadline = limit < connect_timeout
    via = proxy.proxy.url if proxy is not None else None
    address = (node.host, node.port) if proxy is None else (proxy.proxy.host, proxy.proxy.port)
    try:
        sock = socket.create_connection(address, timeout=limit)
    except TimeoutError:
        raise connect_timeout_error(node.url, limit, by_deadline=by_deadline, proxy=via) from None
    except OSError as exc:
        if proxy is not None:
            raise ProxyError(
                f"could not connect to the proxy {via}: {exc.strerror or exc}", node=node.url
            ) from exc
        raise ConnectionError(
            f"could not connect: {exc.strerror or exc}", node=node.url, request_sent=False
        ) from exc
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if proxy is not None and proxy.tunnel:
        try:
            _open_tunnel(sock, proxy, node.url, now + limit)
        except TimeoutError:
            sock.close()
            raise connect_timeout_error(
                node.url, limit, by_deadline=by_deadline, proxy=via
            ) from None
        except BaseException:
            sock.close()
            raise
    if node.is_tls:
        assert ssl_context is not None
        try:
            # The handshake shares the connect budget: a server that accepts and never speaks TLS
            # is caught here.
            sock.settimeout(max(limit - (_monotonic() - now), 0.001))
            sock = ssl_context.wrap_socket(sock, server_hostname=node.host)
            if tls.ssl_assert_fingerprint is not None:
                check_pin(sock, tls.ssl_assert_fingerprint, node.url)
        except TLSError:
            sock.close()
            raise
        except TimeoutError:
            sock.close()
            raise connect_timeout_error(
                node.url, limit, by_deadline=by_deadline, proxy=via
            ) from None
        except ssl.SSLError as exc:
            sock.close()
            raise describe_tls_failure(exc, node.url) from None
        except OSError as exc:
            sock.close()
            raise ConnectionError(
                f"connection failed during the TLS handshake: {exc}",
                node=node.url,
                request_sent=False,
            ) from exc
        except BaseException:
            sock.close()
            raise
    return Connection(sock, node.url, _monotonic())


def _open_tunnel(sock: socket.socket, route: ProxyRoute, node: str, until: float) -> None:
    """Ask the proxy for a tunnel to the node and read its answer, every wait bounded by
    ``until`` (the end of the connect budget: ``TimeoutError`` past it). Reads stop at the end
    of the answer's head: what follows a 200 is the node's TLS, which the handshake reads."""
    answer = TunnelAnswer()
    try:
        sock.settimeout(max(until - _monotonic(), 0.001))
        sock.sendall(route.request)
        while True:
            sock.settimeout(max(until - _monotonic(), 0.001))
            chunk = sock.recv(_TUNNEL_RECV_SIZE)
            if not chunk:
                answer.feed_eof()
            if answer.feed(chunk):
                break
    except ProtocolViolation as exc:
        raise tunnel_violation(exc, route.proxy, node) from None
    except TimeoutError:
        raise
    except OSError as exc:
        raise ProxyError(
            f"the connection to the proxy {route.proxy.url} failed during CONNECT: "
            f"{exc.strerror or exc}",
            node=node,
        ) from exc
    refused = tunnel_refused(answer, route.proxy, node)
    if refused is not None:
        raise refused
