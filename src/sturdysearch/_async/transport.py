"""The asyncio call loop, over the same sans-IO core as the blocking one.

Sockets are asyncio transports framed by the shared HTTP/1.1 parser (``_async/connection.py``),
one bounded pool per node (``_async/pool.py``). Everything that decides (which node, whether to
retry, when a node is ejected or re-admitted, the retry budget, hedging) is decided by
``CallPlan`` and ``NodeHealth`` exactly as in the blocking driver; only the waiting differs.
Background probes and sniffing run as one task per client; hedges are tasks.

Cancellation: cancelling a task mid-call (``asyncio.timeout``, ``wait_for``, task groups)
aborts the connection in use (a late answer must never be read as the next request's) and
restores the node's bookkeeping in ``finally`` blocks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from typing import Any

from sturdysearch._async.pool import AsyncNodePool
from sturdysearch._core.config import ClientConfig
from sturdysearch._core.driver import (
    Call,
    EjectedMeanwhile,
    Exchange,
    TransportBase,
    probe_exchange,
)
from sturdysearch._core.events import Tracer
from sturdysearch._core.nodes import NodeConfig
from sturdysearch._core.plan import hedge_node
from sturdysearch._core.request import RequestSpec
from sturdysearch._core.responses import Response
from sturdysearch._core.retry import RetryPolicy
from sturdysearch._core.timeouts import Deadline
from sturdysearch.errors import (
    DeadlineExceeded,
    SturdySearchError,
    TransportError,
)
from sturdysearch.tls import build_ssl_context

logger = logging.getLogger("sturdysearch")
_monotonic = time.monotonic
_NULL_GUARD = contextlib.nullcontext()


class AsyncTransport(TransportBase):
    """Owns the pools, node health and retry budget, and runs calls. Use from one event loop
    (the first call binds it; background tasks start there)."""

    def __init__(
        self,
        config: ClientConfig,
        *,
        retry: RetryPolicy | None = None,
        tracer: Tracer | None = None,
    ) -> None:
        super().__init__(
            config, clock=time.monotonic, rand=random.random, retry=retry, tracer=tracer
        )
        needs_tls = any(node.is_tls for node in config.nodes)
        self._ssl_context = build_ssl_context(config.tls) if needs_tls else None
        self.pools: dict[NodeConfig, AsyncNodePool] = {}
        for node in config.nodes:
            self._add_node(node)
        self._started = False
        self._background: asyncio.Task[None] | None = None
        self._probe_changed = asyncio.Event()
        self._wake = asyncio.Event()
        self._hedges: set[asyncio.Task[Any]] = set()

    # -- node set ----------------------------------------------------------------------------

    def _add_node(self, node: NodeConfig) -> None:
        self.pools[node] = AsyncNodePool(
            node,
            self.config.pool,
            self.config.tls,
            self._ssl_context,
            self.config.timeouts.connect,
            proxy=self.proxy_route(node),
        )
        self.remember_headers(node)

    def _drop_node(self, node: NodeConfig) -> None:
        pool = self.pools.pop(node, None)
        self.forget_headers(node)
        if pool is not None:
            pool.close()

    def _start(self) -> None:
        """First call: background sniffing starts on the caller's loop if configured."""
        if self._closed:
            raise TransportError("the client is closed")
        self._started = True
        if self.config.sniff.on_start or self.config.sniff.interval is not None:
            self._ensure_background()

    # -- operator view -----------------------------------------------------------------------

    def pool_stats(self) -> dict[str, dict[str, int]]:
        """Per node URL: ``open``, ``idle`` and ``in_use`` connections now; ``opened`` since
        the start and ``waits`` (checkouts that waited for a free connection)."""
        return {node.url: pool.counts() for node, pool in list(self.pools.items())}

    def nodes_status(self) -> list[dict[str, object]]:
        """Per node: state, failures, last probe, in-flight calls and pool use."""
        stats = self.pool_stats()
        pools = {n: stats[n.url] for n in self.health.nodes if n.url in stats}
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
        for pool in list(self.pools.values()):
            pool.close()
        # Let the aborted transports report connection_lost before the loop may stop.
        await asyncio.sleep(0)

    # -- calls -------------------------------------------------------------------------------

    async def perform(self, spec: RequestSpec) -> Response:
        """Run one call to completion within its deadline; return the answer or raise."""
        if not self._started:
            self._start()
        call = self.start_call(spec, _NULL_GUARD)
        try:
            response = await self._run(call)
        except BaseException as exc:
            self.call_failed(call, exc)
            raise
        self.call_done(call, response)
        return response

    async def _run(self, call: Call) -> Response:
        while True:
            choice = call.plan.choose(_monotonic())
            node = choice.node
            if choice.await_probe:
                await self._await_probe(node, call.deadline, choice.until)
                continue
            if choice.probe_first:
                await self._caller_probe(call, node)
                continue
            t0 = _monotonic()
            overtaken = False
            try:
                if call.hedge_after is not None:
                    response, overtaken = await self._hedged(call, node, call.hedge_after)
                else:
                    response = await self._attempt(call, node, primary=True)
            except EjectedMeanwhile:
                call.plan.requeue(node)
                continue
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

    async def _attempt(
        self, call: Exchange, node: NodeConfig, *, primary: bool = False
    ) -> Response:
        spec = call.spec
        pool = self.pools.get(node)
        if pool is None:
            raise TransportError("the node left the cluster (sniffing)", node=node.url)
        t0 = _monotonic()
        conn = await pool.acquire(call.deadline)
        state = self.health.states.get(node)
        if primary and state is not None and not state.alive:
            # Ejected while this call waited for a connection: sending now would add to the
            # outage's load what the probe schedule keeps out of it.
            pool.release(conn, reusable=True)
            raise EjectedMeanwhile
        try:
            head, body, reusable = await conn.exchange(
                _joined(self.encode_for(call, node)),
                head_request=spec.method == "HEAD",
                deadline=call.deadline,
                read_timeout=call.read_timeout,
            )
        except BaseException:
            pool.release(conn, reusable=False)
            raise
        pool.release(conn, reusable=reusable)
        return self.answer(spec, node, head, body, t0)

    # -- hedged reads ------------------------------------------------------------------------

    async def _hedged(
        self, call: Call, node: NodeConfig, hedge_after: float
    ) -> tuple[Response, bool]:
        """The primary attempt; after ``hedge_after`` without an answer, a second attempt on
        another live node. The first answer wins; the other task is cancelled, which makes
        its connection be aborted."""
        spec = call.spec
        primary = asyncio.ensure_future(self._attempt(call, node, primary=True))
        try:
            done, _ = await asyncio.wait({primary}, timeout=hedge_after)
            if done:
                return primary.result(), False
            hedge = hedge_node(self.health, _NULL_GUARD, self.budget, node)
            if hedge is None:
                return await primary, False
            self.counts.hedges += 1
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
                if isinstance(hedge_exc, SturdySearchError):
                    self.hedge_failed(call, hedge, hedge_exc, eject=True, guard=_NULL_GUARD)
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

    async def _await_probe(self, node: NodeConfig, deadline: Deadline, until: float | None) -> None:
        """Wait (within the deadline) until nobody is probing ``node`` any more, or, with
        ``until``, until then or until any probe finishes, whichever comes first."""
        if until is not None:
            # Woken by any probe's outcome, or at ``until`` to claim the due probe.
            wait = min(until, deadline.at) - _monotonic()
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._probe_changed.wait(), wait)
            return
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
            response = await self._attempt(probe_exchange(now, budget, self.signer), node)
        except DeadlineExceeded:
            return f"no answer within {budget:.3g} s"
        except SturdySearchError as exc:
            return f"{type(exc).__name__}: {exc}"
        status = response.meta.status
        return None if self.probe_ok(status) else f"status {status}"

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
            if node not in self.pools:
                self._add_node(node)
            state = self.health.states.get(node)
            if (state is not None and state.alive) or await self._probe(node) is None:
                reachable.append(node)
        self.adopt_sniffed(found, reachable)
        for node in [n for n in self.pools if n not in self.health.nodes]:
            self._drop_node(node)
        return list(self.health.nodes)


def _joined(request: tuple[bytes, bytes | None]) -> bytes:
    """Head and body as one buffer: asyncio's transports copy what they cannot send at once
    into their own buffer anyway (and ``writelines`` joins), so one write is the cheap way."""
    head, body = request
    return head if body is None else head + body
