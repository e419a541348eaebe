"""The asyncio call loop, on aiohttp, over the same sans-IO core as the blocking one.

aiohttp owns the sockets: its connector bounds the connections per node (``limit_per_host``) and
its ``ClientTimeout`` bounds each phase: ``total`` is what is left of the call's deadline (it
covers the wait for a pooled connection, the connect, and reading the whole body, so a dripping
server is cut), ``sock_connect`` the connect, ``sock_read`` each read. Everything else (which
node, whether to retry, when a node is ejected or re-admitted, the retry budget, hedging) is
decided by ``CallPlan`` and ``NodeHealth`` exactly as in the blocking driver; only the waiting
differs. Background probes and sniffing run as one task per client; hedges are tasks.

Cancellation: cancelling a task mid-call (``asyncio.timeout``, ``wait_for``, task groups)
propagates through aiohttp, which discards the connection in use; the node's bookkeeping is
restored in ``finally`` blocks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import ssl
import time
from typing import Any

import aiohttp

from sturdysearch._core.config import ClientConfig
from sturdysearch._core.driver import Call, Exchange, TransportBase, probe_exchange
from sturdysearch._core.events import Tracer
from sturdysearch._core.health import probe_answer_ok
from sturdysearch._core.http1 import ResponseHead
from sturdysearch._core.nodes import NodeConfig
from sturdysearch._core.outcome import build_response
from sturdysearch._core.plan import ejects, hedge_node
from sturdysearch._core.request import RequestSpec
from sturdysearch._core.responses import Response
from sturdysearch._core.retry import RetryPolicy
from sturdysearch._core.timeouts import Deadline
from sturdysearch.errors import (
    ConnectionError,
    ConnectTimeout,
    DeadlineExceeded,
    MalformedResponseError,
    ReadTimeout,
    SturdySearchError,
    TLSError,
    TransportError,
)
from sturdysearch.tls import build_ssl_context, describe_tls_failure

logger = logging.getLogger("sturdysearch")
_monotonic = time.monotonic
_NULL_GUARD = contextlib.nullcontext()


class AsyncTransport(TransportBase):
    """Owns the aiohttp session, node health and retry budget. Use from one event loop."""

    def __init__(
        self,
        config: ClientConfig,
        *,
        retry: RetryPolicy | None = None,
        tracer: Tracer | None = None,
    ) -> None:
        super().__init__(config, retry=retry, tracer=tracer)
        self._ssl: Any = None
        if any(node.is_tls for node in config.nodes):
            fingerprint = config.tls.ssl_assert_fingerprint
            if fingerprint is not None:
                self._ssl = aiohttp.Fingerprint(bytes.fromhex(fingerprint))
            else:
                self._ssl = build_ssl_context(config.tls)
        self._headers: dict[NodeConfig, dict[str, str]] = {}
        for node in config.nodes:
            self._add_node(node)
        self._session: aiohttp.ClientSession | None = None
        self._background: asyncio.Task[None] | None = None
        self._probe_changed = asyncio.Event()
        self._wake = asyncio.Event()
        self._hedges: set[asyncio.Task[Any]] = set()
        self._slots: dict[NodeConfig, asyncio.Semaphore] = {}

    def _add_node(self, node: NodeConfig) -> None:
        # aiohttp writes Host itself.
        self._headers[node] = {k: v for k, v in self.header_pairs(node) if k != "host"}

    def _get_session(self) -> aiohttp.ClientSession:
        session = self._session
        if session is None or session.closed:
            if self._closed:
                raise TransportError("the client is closed")
            connector = aiohttp.TCPConnector(
                limit=0,
                limit_per_host=self.config.pool.connections_per_node,
                keepalive_timeout=self.config.pool.idle_timeout,
                ttl_dns_cache=60,
            )
            session = aiohttp.ClientSession(
                connector=connector,
                auto_decompress=False,  # the shared core decodes gzip, as in the sync driver
                trust_env=False,
                skip_auto_headers=("User-Agent", "Accept-Encoding"),
                timeout=aiohttp.ClientTimeout(total=None),
            )
            self._session = session
            if self.config.sniff.on_start or self.config.sniff.interval is not None:
                self._ensure_background()
        return session

    # -- operator view -----------------------------------------------------------------------

    def pool_stats(self) -> dict[str, dict[str, int]]:
        """Per node URL: ``open``, ``idle`` and ``in_use`` connections, read from aiohttp's
        connector (its bookkeeping is private, so this is best effort)."""
        idle: dict[tuple[str, int], int] = {}
        in_use: dict[tuple[str, int], int] = {}
        connector = self._session.connector if self._session is not None else None
        for key, conns in getattr(connector, "_conns", {}).items():
            idle[(key.host, key.port)] = idle.get((key.host, key.port), 0) + len(conns)
        for key, conns in getattr(connector, "_acquired_per_host", {}).items():
            in_use[(key.host, key.port)] = in_use.get((key.host, key.port), 0) + len(conns)
        stats = {}
        for node in self.health.nodes:
            addr = (node.host, node.port)
            n_idle, n_used = idle.get(addr, 0), in_use.get(addr, 0)
            stats[node.url] = {"open": n_idle + n_used, "idle": n_idle, "in_use": n_used}
        return stats

    def nodes_status(self) -> list[dict[str, object]]:
        """Per node: state, failures, last probe, in-flight calls and pool use."""
        stats = self.pool_stats()
        pools = {n: stats[n.url] for n in self.health.nodes}
        return list(self.status_rows(_monotonic(), pools))

    # -- lifecycle ---------------------------------------------------------------------------

    async def close(self) -> None:
        self._closed = True
        self._wake.set()
        tasks = [t for t in (self._background, *self._hedges) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._session is not None:
            await self._session.close()

    # -- calls -------------------------------------------------------------------------------

    async def perform(self, spec: RequestSpec) -> Response:
        """Run one call to completion within its deadline; return the answer or raise."""
        call = self.start_call(spec, _NULL_GUARD)
        while True:
            choice = call.plan.choose(_monotonic())
            node = choice.node
            if choice.await_probe:
                await self._await_probe(node, call.deadline)
                continue
            if choice.probe_first:
                await self._caller_probe(call, node)
            t0 = _monotonic()
            overtaken = False
            try:
                if call.hedge_after is not None:
                    response, overtaken = await self._hedged(call, node, call.hedge_after)
                else:
                    response = await self._attempt(call, node)
            except SturdySearchError as exc:
                delay = self.attempt_failed(call, node, exc, t0)
                if delay > 0:
                    await asyncio.sleep(delay)
                continue
            except BaseException:
                # Cancelled (or a bug): the attempt is over, keep the books straight.
                call.plan.released(node)
                raise
            self.attempt_succeeded(call, node, response, overtaken=overtaken)
            return response

    async def _caller_probe(self, call: Call, node: NodeConfig) -> None:
        """Probe ``node`` for a call that found every node ejected; wakes waiting callers."""
        try:
            error = await self._probe(node, call.deadline)
            call.plan.probe_done(
                node, ok=error is None, now=_monotonic(), rand=random.random(), error=error
            )
        finally:
            self._signal_probe()

    async def _attempt(self, call: Exchange, node: NodeConfig) -> Response:
        spec = call.spec
        deadline = call.deadline
        read_timeout = call.read_timeout
        body = call.body
        extra = call.headers
        session = self._get_session()
        headers = self._headers.get(node)
        if headers is None:
            raise TransportError("the node left the cluster (sniffing)", node=node.url)
        if extra:
            headers = {**headers, **extra}
        t0 = _monotonic()
        slots = self._slots.get(node)
        if slots is None:
            slots = self._slots[node] = asyncio.Semaphore(self.config.pool.connections_per_node)
        if slots.locked():
            # Wait for a connection here, cheaply, rather than inside aiohttp: thousands of
            # tasks queued in aiohttp's connector each cost a request object and timers, and
            # the loop time they take can starve the connects in flight past their timeout.
            try:
                await asyncio.wait_for(slots.acquire(), deadline.at - t0)
            except TimeoutError:
                raise DeadlineExceeded(
                    f"the call's deadline passed while waiting for one of the "
                    f"{self.config.pool.connections_per_node} pooled connections",
                    node=node.url,
                ) from None
        else:
            await slots.acquire()
        try:
            remaining = deadline.at - _monotonic()
            if remaining <= 0:
                raise DeadlineExceeded("the call's deadline passed before the request was sent")
            connect = min(self.config.timeouts.connect, remaining)
            timeout = aiohttp.ClientTimeout(
                total=remaining, sock_connect=connect, sock_read=min(read_timeout, remaining)
            )
            url = node.url + spec.target
            try:
                async with session.request(
                    spec.method,
                    url,
                    data=body,
                    headers=headers,
                    timeout=timeout,
                    allow_redirects=False,
                    ssl=self._ssl if node.is_tls else True,
                ) as resp:
                    data = await resp.read()
                    # aiohttp owns connection reuse, so the HTTP version is not needed here.
                    head = ResponseHead(resp.status, resp.reason or "", "HTTP/1.1", resp.headers)
            except aiohttp.ClientError as exc:
                raise _translate(
                    exc,
                    node,
                    connect_by_deadline=connect < self.config.timeouts.connect,
                    read_timeout=read_timeout,
                ) from None
            except TimeoutError:
                raise DeadlineExceeded(
                    "the call's deadline passed during the request",
                    node=node.url,
                    request_sent=True,
                ) from None
            return build_response(
                head,
                data,
                node=node.url,
                duration=_monotonic() - t0,
                ignore=spec.ignore,
                head_request=spec.method == "HEAD",
            )
        finally:
            slots.release()

    # -- hedged reads ------------------------------------------------------------------------

    async def _hedged(
        self, call: Call, node: NodeConfig, hedge_after: float
    ) -> tuple[Response, bool]:
        """The primary attempt; after ``hedge_after`` without an answer, a second attempt on
        another live node. The first answer wins; the other task is cancelled, which makes
        aiohttp discard its connection."""
        spec = call.spec
        primary = asyncio.ensure_future(self._attempt(call, node))
        try:
            done, _ = await asyncio.wait({primary}, timeout=hedge_after)
            if done:
                return primary.result(), False
            hedge = hedge_node(self.health, _NULL_GUARD, self.budget, node)
            if hedge is None:
                return await primary, False
            if self.tracer.active:
                self.tracer.emit("request.hedge", primary=node.url, hedge=hedge.url, path=spec.path)
            second = asyncio.ensure_future(self._attempt(call, hedge))
            self._hedges.add(second)
            try:
                pending = {primary, second}
                while pending:
                    done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                    for task in done:
                        if task.exception() is None:
                            if task is second and self.tracer.active:
                                self.tracer.emit(
                                    "request.hedge_won", node=hedge.url, path=spec.path
                                )
                            return task.result(), task is second
                # Both failed: report the primary's error, account for the hedge's.
                hedge_exc = second.exception()
                if isinstance(hedge_exc, SturdySearchError) and ejects(hedge_exc):
                    self.health.eject(
                        hedge, now=_monotonic(), rand=random.random(), reason=str(hedge_exc)
                    )
                return primary.result(), False
            finally:
                for task in (second,):
                    if not task.done():
                        task.cancel()
                        with contextlib.suppress(asyncio.CancelledError, SturdySearchError):
                            await task
                self._hedges.discard(second)
                if second.done() and not second.cancelled() and second.exception() is None:
                    call.plan.succeeded(hedge)
                else:
                    call.plan.released(hedge)
        finally:
            if not primary.done():
                primary.cancel()
                with contextlib.suppress(asyncio.CancelledError, SturdySearchError):
                    await primary

    # -- probes and sniffing -----------------------------------------------------------------

    def _signal_probe(self) -> None:
        """A probe finished: wake the callers waiting on it, and the background task, whose
        schedule may have changed."""
        event = self._probe_changed
        self._probe_changed = asyncio.Event()
        event.set()
        self._wake.set()

    async def _await_probe(self, node: NodeConfig, deadline: Deadline) -> None:
        while True:
            state = self.health.states.get(node)
            if state is None or not state.probing:
                return
            remaining = deadline.at - _monotonic()
            if remaining <= 0:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._probe_changed.wait(), remaining)

    async def _probe(self, node: NodeConfig, deadline: Deadline | None = None) -> str | None:
        """``GET /`` on ``node`` within the probe timeout; ``None`` if it answered well."""
        now = _monotonic()
        budget = self.probe_budget(deadline, now)
        if budget <= 0:
            return "no time left for a probe"
        try:
            response = await self._attempt(probe_exchange(now, budget), node)
        except DeadlineExceeded:
            return f"no answer within {budget:.3g} s"
        except SturdySearchError as exc:
            return f"{type(exc).__name__}: {exc}"
        status = response.meta.status
        return None if probe_answer_ok(status) else f"status {status}"

    def _on_node_failure(self) -> None:
        self.request_sniff_on_failure()
        self._ensure_background()

    def _ensure_background(self) -> None:
        if self._closed:
            return
        if self._background is None or self._background.done():
            self._background = asyncio.get_running_loop().create_task(
                self._run_background(), name="sturdysearch-health"
            )
        self._wake.set()

    async def _run_background(self) -> None:
        while not self._closed:
            step = self.next_background_step(_monotonic())
            if not step.due and not step.sniff:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self._wake.wait(), step.wait if step.wait is not None else 60.0
                    )
                continue
            for node in step.due:
                try:
                    error = await self._probe(node)
                    self.background_probe_done(node, error)
                finally:
                    self._signal_probe()
            if step.sniff:
                try:
                    await self.sniff()
                except Exception as exc:  # a failed sniff keeps the current nodes
                    logger.warning("sniffing failed, keeping the current nodes: %s", exc)

    async def sniff(self) -> list[NodeConfig]:
        """Discover the cluster's HTTP nodes and adopt the reachable ones (see the sync
        ``Transport.sniff``)."""
        found = self.sniffed_nodes(await self.perform(self.sniff_spec()))
        if found is None:
            return list(self.health.nodes)
        reachable: list[NodeConfig] = []
        for node in found:
            if node not in self._headers:
                self._add_node(node)
            state = self.health.states.get(node)
            if (state is not None and state.alive) or await self._probe(node) is None:
                reachable.append(node)
        for node in self.adopt_sniffed(found, reachable) or ():
            self._headers.pop(node, None)
        return list(self.health.nodes)


def _translate(
    exc: aiohttp.ClientError, node: NodeConfig, *, connect_by_deadline: bool, read_timeout: float
) -> SturdySearchError:
    """aiohttp's exceptions, mapped onto the same tree as the sync driver's."""
    url = node.url
    if isinstance(exc, aiohttp.ServerFingerprintMismatch):
        return TLSError(
            f"certificate fingerprint mismatch: expected SHA-256 {exc.expected.hex()}, the server "
            f"presented {exc.got.hex()}. If the certificate was rotated on purpose, update "
            "ssl_assert_fingerprint; otherwise something is intercepting the connection",
            node=url,
        )
    if isinstance(exc, aiohttp.ClientSSLError):
        cause = getattr(exc, "certificate_error", None) or getattr(exc, "os_error", None)
        if isinstance(cause, ssl.SSLError):
            return describe_tls_failure(cause, url)
        return TLSError(f"TLS handshake failed: {exc}", node=url)
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        if connect_by_deadline:
            return DeadlineExceeded("the call's deadline passed while connecting", node=url)
        return ConnectTimeout("connect (TCP + TLS handshake) timed out", node=url)
    if isinstance(exc, aiohttp.SocketTimeoutError):
        return ReadTimeout(f"no data for {read_timeout:g} s while reading the response", node=url)
    if isinstance(exc, aiohttp.ServerTimeoutError):
        return ReadTimeout(f"timed out: {exc}", node=url)
    if isinstance(exc, aiohttp.ClientConnectorError):
        os_error = exc.os_error
        if isinstance(exc, aiohttp.ClientConnectorDNSError) or not os_error.errno:
            reason = os_error.strerror or str(os_error)
        else:
            reason = os.strerror(os_error.errno)
        return ConnectionError(f"could not connect: {reason}", node=url, request_sent=False)
    status = getattr(getattr(exc, "message", None), "code", None)
    if isinstance(exc, aiohttp.ServerDisconnectedError) and isinstance(status, int):
        # aiohttp reports a body cut short as a disconnect carrying the response head.
        return MalformedResponseError(
            f"malformed or truncated response: the connection closed before the body of the "
            f"{status} answer was complete",
            node=url,
            status=status,
        )
    if isinstance(exc, aiohttp.ClientPayloadError):
        return MalformedResponseError(f"malformed or truncated response: {exc}", node=url)
    if isinstance(exc, aiohttp.ClientResponseError):
        return MalformedResponseError(f"malformed response: {exc.message}", node=url)
    return ConnectionError(
        f"connection failed: {str(exc) or type(exc).__name__}", node=url, request_sent=True
    )
