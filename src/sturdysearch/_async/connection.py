"""One HTTP/1.1 connection on an asyncio transport, framed by the shared sans-IO parser.

This is the asyncio twin of ``sturdysearch._sync.connection``: the same ``ResponseParser``
decides where a response ends and whether the connection may be reused, so the blocking and the
asyncio client agree byte for byte on what a malformed, truncated or over-long answer is.

Timeouts cost one timer per exchange, not one per received chunk: ``data_received`` only notes
the time, and the timer, when it fires, checks whether the server has been silent for the read
timeout (or the deadline passed) and otherwise re-arms itself for the earliest moment either
could be true. A server that drips a byte a second is cut by the deadline, one that goes silent
by the read timeout.

Cancellation (``asyncio.timeout``, ``wait_for``, a lost hedge) can strike at any ``await``;
the owner then discards the connection with :meth:`AsyncConnection.abort`, because a response
may still be on its way and would be read as the answer to the next request.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
import time
from typing import Any

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
    SturdySearchError,
    TLSError,
)
from sturdysearch.tls import TLSConfig, check_pin, describe_tls_failure, is_tls_alert

_monotonic = time.monotonic

# Why an exchange ended early (set by the protocol, read by the waiting coroutine).
_DEADLINE = "deadline"
_SILENT = "silent"
# While the request is still being written, how often the timer looks again (seconds).
_SENDING_RECHECK = 0.05


class _ResponseProtocol(asyncio.Protocol):
    """Feeds received bytes to the current exchange's parser and wakes its waiter.

    Outcomes are recorded on the protocol and the waiter only ever gets ``None`` as a result,
    so no exception can be left in a future nobody awaits (asyncio would log it)."""

    __slots__ = (
        "closed",
        "deadline_at",
        "failure",
        "last_data",
        "lost",
        "parser",
        "read_timeout",
        "timer",
        "transport",
        "waiter",
    )

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser: ResponseParser | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.closed = False
        self.lost: BaseException | None = None
        self.failure: ProtocolViolation | str | None = None
        self.last_data = 0.0
        self.deadline_at = 0.0
        self.read_timeout = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        parser = self.parser
        if parser is None or self.waiter is None:
            # Bytes nobody asked for (we never pipeline): the stream is out of step.
            self.closed = True
            return
        self.last_data = _monotonic()
        try:
            parser.feed(data)
        except ProtocolViolation as exc:
            self.failure = exc
            self._wake()
            return
        if parser.done:
            self._wake()

    def eof_received(self) -> bool:
        self.closed = True
        parser = self.parser
        if parser is not None and self.waiter is not None and not parser.done:
            try:
                parser.feed_eof()
            except ProtocolViolation as exc:
                self.failure = exc
            self._wake()
        return False  # let asyncio close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.lost = exc
        if self.waiter is not None:
            parser = self.parser
            # A clean close ends a read-until-close body or makes the answer truncated; an
            # error (reset, TLS alert) is reported as itself.
            if exc is None and parser is not None and not parser.done and self.failure is None:
                try:
                    parser.feed_eof()
                except ProtocolViolation as violation:
                    self.failure = violation
            self._wake()

    def check_timers(self) -> None:
        """The exchange's single timer: stop it if the deadline passed or the server has been
        silent for the read timeout, else re-arm for the earliest moment either can happen."""
        self.timer = None
        if self.waiter is None:
            return
        now = _monotonic()
        if now >= self.deadline_at:
            self.failure = _DEADLINE
            self._wake()
            return
        loop = asyncio.get_running_loop()
        transport = self.transport
        if transport is not None and transport.get_write_buffer_size():
            # Still sending (a large bulk body to a slow reader): as in the blocking driver,
            # only the deadline bounds the send, and the read timeout counts from its end
            # (known to within the short re-check interval).
            self.last_data = now
            self.timer = loop.call_later(
                min(_SENDING_RECHECK, self.read_timeout, self.deadline_at - now), self.check_timers
            )
            return
        wait = read_wait(now, self.deadline_at, self.last_data, self.read_timeout)
        if wait <= 0:
            ends = deadline_ends_wait(now, self.deadline_at, self.last_data, self.read_timeout)
            self.failure = _DEADLINE if ends else _SILENT
            self._wake()
            return
        self.timer = loop.call_later(wait + 0.0005, self.check_timers)

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class AsyncConnection:
    """A connected transport to one node. The pool hands it to one task at a time."""

    __slots__ = ("idle_since", "node", "pid", "protocol", "transport")

    def __init__(
        self, transport: asyncio.Transport, protocol: _ResponseProtocol, node: str, now: float
    ) -> None:
        self.transport = transport
        self.protocol = protocol
        self.node = node
        self.idle_since = now
        self.pid = 0

    def is_dropped(self) -> bool:
        """True if the server closed the connection (or sent unsolicited bytes) while idle."""
        return self.protocol.closed or self.transport.is_closing()

    def abort(self) -> None:
        """Close at once, without waiting for buffered writes or a TLS close_notify: used for
        connections in an unknown state and when the client closes."""
        with contextlib.suppress(Exception):
            self.transport.abort()

    async def exchange(
        self, data: bytes, *, head_request: bool, deadline: Deadline, read_timeout: float
    ) -> tuple[ResponseHead, bytes, bool]:
        """Send ``data`` and read one whole response. Returns ``(head, body, reusable)``.

        Raises ``ConnectionError`` (with ``request_sent``), ``ReadTimeout``,
        ``DeadlineExceeded``, ``MalformedResponseError`` or ``TLSError``; after any of them (or
        a cancellation) the connection is unusable and the caller must abort it."""
        now = _monotonic()
        if deadline.at - now <= 0:
            raise DeadlineExceeded("the call's deadline passed before the request was sent")
        proto = self.protocol
        if proto.closed:
            raise ConnectionError(
                "the server closed the connection before the request was sent",
                node=self.node,
                request_sent=False,
            )
        parser = ResponseParser(head_request=head_request)
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        proto.parser = parser
        proto.failure = None
        proto.waiter = waiter
        proto.last_data = now
        proto.deadline_at = deadline.at
        proto.read_timeout = read_timeout
        proto.timer = loop.call_later(
            min(read_timeout, deadline.at - now) + 0.0005, proto.check_timers
        )
        try:
            self.transport.write(data)
            await waiter
        finally:
            proto.waiter = None
            proto.parser = None
            timer = proto.timer
            if timer is not None:
                timer.cancel()
                proto.timer = None
        failure = proto.failure
        if failure is None and parser.done:
            head = parser.head
            assert head is not None
            reusable = (
                parser.reusable
                and not proto.closed
                and self.transport.get_write_buffer_size() == 0  # answered before reading all
            )
            return head, parser.body(), reusable
        raise self._failure(parser, failure, proto.lost, read_timeout)

    def _failure(
        self,
        parser: ResponseParser,
        failure: ProtocolViolation | str | None,
        lost: BaseException | None,
        read_timeout: float,
    ) -> Exception:
        node = self.node
        if failure == _DEADLINE:
            return DeadlineExceeded(
                "the call's deadline passed while reading the response",
                node=node,
                request_sent=True,
                unanswered=parser.received == 0,
            )
        if failure == _SILENT:
            what = "response head" if parser.head is None else "rest of the response"
            return ReadTimeout(
                f"no data for {read_timeout:g} s while waiting for the {what}", node=node
            )
        if isinstance(lost, ssl.SSLError) and is_tls_alert(lost):
            # TLS 1.3 servers reject a missing/bad client certificate after the client's side
            # of the handshake is done: the alert arrives with the first read.
            return describe_tls_failure(lost, node)
        if isinstance(failure, ProtocolViolation):
            return violation_error(failure, parser, node, cause=lost)
        return ConnectionError(
            f"connection failed while reading the response: {lost or 'closed'}",
            node=node,
            request_sent=True,
        )


class _TunnelProtocol(asyncio.Protocol):
    """Reads the proxy's answer to CONNECT into a :class:`TunnelAnswer` and wakes the opener.

    As in :class:`_ResponseProtocol`, the waiter only ever gets ``None``; what happened is
    recorded here (``failure``), so no exception is left in a future nobody awaits."""

    def __init__(self) -> None:
        self.answer = TunnelAnswer()
        self.failure: ProtocolViolation | None = None
        self.lost: BaseException | None = None
        self.waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        try:
            done = self.answer.feed(data)
        except ProtocolViolation as exc:
            self.failure = exc
            done = True
        if done:
            self._wake()

    def eof_received(self) -> bool:
        self._ended()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = exc
        self._ended()

    def _ended(self) -> None:
        if not self.answer.done and self.failure is None:
            try:
                self.answer.feed_eof()
            except ProtocolViolation as exc:
                self.failure = exc
        self._wake()

    def _wake(self) -> None:
        if not self.waiter.done():
            self.waiter.set_result(None)


async def _through_tunnel(
    node: NodeConfig, route: ProxyRoute, ssl_context: ssl.SSLContext
) -> tuple[asyncio.Transport, _ResponseProtocol]:
    """TCP to the proxy, ``CONNECT`` and its answer, then the TLS handshake with the node
    (its name for SNI and the certificate check) over the tunnel. The caller bounds it all
    with the connect budget; a cancellation closes the half-made connection."""
    loop = asyncio.get_running_loop()
    proxy = route.proxy
    raw, opener = await loop.create_connection(_TunnelProtocol, proxy.host, proxy.port)
    try:
        raw.write(route.request)
        await opener.waiter
        if opener.failure is not None:
            raise tunnel_violation(opener.failure, proxy, node.url)
        refused = tunnel_refused(opener.answer, proxy, node.url)
        if refused is not None:
            raise refused
        protocol = _ResponseProtocol()
        transport = await loop.start_tls(raw, protocol, ssl_context, server_hostname=node.host)
        if transport is None:  # the loop closed the connection meanwhile
            raise ProxyError(
                f"the proxy {proxy.url} closed the tunnel before the TLS handshake", node=node.url
            )
        # start_tls hands the protocol its new transport without calling connection_made.
        protocol.connection_made(transport)
        return transport, protocol
    except BaseException:
        raw.abort()
        raise


async def open_connection(
    node: NodeConfig,
    *,
    ssl_context: ssl.SSLContext | None,
    tls: TLSConfig,
    connect_timeout: float,
    deadline: Deadline,
    proxy: ProxyRoute | None = None,
) -> AsyncConnection:
    """Connect (and handshake) within ``min(connect_timeout, remaining deadline)``. Through a
    ``proxy``, the connect goes to the proxy, and the CONNECT exchange of a tunnel shares the
    same budget as the TCP connect and the TLS handshake."""
    now = _monotonic()
    limit = deadline.connect_timeout_for(connect_timeout, now)
    if limit <= 0:
        raise DeadlineExceeded("the call's deadline passed before connecting", node=node.url)
    by_deadline = limit < connect_timeout
    loop = asyncio.get_running_loop()
    via = proxy.proxy.url if proxy is not None else None
    kwargs: dict[str, Any] = {}
    if node.is_tls and proxy is None:
        assert ssl_context is not None
        kwargs = {"ssl": ssl_context, "server_hostname": node.host}
    try:
        if proxy is None:
            transport, protocol = await asyncio.wait_for(
                loop.create_connection(_ResponseProtocol, node.host, node.port, **kwargs), limit
            )
        elif proxy.tunnel:
            assert ssl_context is not None
            transport, protocol = await asyncio.wait_for(
                _through_tunnel(node, proxy, ssl_context), limit
            )
        else:
            transport, protocol = await asyncio.wait_for(
                loop.create_connection(_ResponseProtocol, proxy.proxy.host, proxy.proxy.port),
                limit,
            )
    except TimeoutError:
        raise connect_timeout_error(node.url, limit, by_deadline=by_deadline, proxy=via) from None
    except SturdySearchError:
        raise  # the proxy's refusal, already worded (a ConnectionError is an OSError too)
    except ssl.SSLError as exc:
        raise describe_tls_failure(exc, node.url) from None
    except OSError as exc:
        # asyncio words it "Connect call failed (addr)"; the errno says what happened.
        if exc.errno and not isinstance(exc, socket.gaierror):
            reason = os.strerror(exc.errno)
        else:
            reason = exc.strerror or str(exc) or type(exc).__name__
        if proxy is not None:
            raise ProxyError(
                f"could not connect to the proxy {via}: {reason}", node=node.url
            ) from exc
        raise ConnectionError(
            f"could not connect: {reason}", node=node.url, request_sent=False
        ) from exc
    assert isinstance(transport, asyncio.Transport)
    if node.is_tls and tls.ssl_assert_fingerprint is not None:
        ssl_object = transport.get_extra_info("ssl_object")
        try:
            check_pin(ssl_object, tls.ssl_assert_fingerprint, node.url)
        except TLSError:
            transport.abort()
            raise
    return AsyncConnection(transport, protocol, node.url, _monotonic())
