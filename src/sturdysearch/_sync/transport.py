"""The blocking call loop: pick a node, borrow a connection, exchange, decide, maybe retry.

Everything that decides lives in ``sturdysearch._core`` (``CallPlan``, ``NodeHealth``,
``RetryBudget``); this module only waits (sockets, ``time.sleep``, threads) and keeps the pools.
Background work (probing ejected nodes, periodic sniffing) runs in one daemon thread per client,
started on first need and joined on ``close()``.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

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
from sturdysearch._sync.connection import Connection
from sturdysearch._sync.pool import NodePool
from sturdysearch.errors import DeadlineExceeded, SturdySearchError, TransportError
from sturdysearch.tls import build_ssl_context

logger = logging.getLogger("sturdysearch")
_monotonic = time.monotonic


class _Race:
    """A hedged call: two attempts, the first answer wins, the loser is aborted."""

    __slots__ = ("connections", "done", "lock", "result", "winner")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.winner: str | None = None
        self.result: Response | None = None
        self.connections: dict[str, Connection] = {}

    def claim(self, who: str, result: Response | None = None) -> bool:
        """Declare ``who`` the winner (with its answer) unless someone won already."""
        with self.lock:
            if self.winner is not None:
                return False
            self.winner = who
            self.result = result
            other = self.connections.get("hedge" if who == "primary" else "primary")
        if other is not None:
            other.abort()
        self.done.set()
        return True


class Transport(TransportBase):
    """Owns the pools, the node health and the retry budget, and runs calls. Thread-safe."""

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
        self._lock = threading.Lock()
        needs_tls = any(node.is_tls for node in config.nodes)
        self._ssl_context = build_ssl_context(config.tls) if needs_tls else None
        self.pools: dict[NodeConfig, NodePool] = {}
        for node in config.nodes:
            self._add_node(node)
        self._wake = threading.Condition(self._lock)
        self._worker: threading.Thread | None = None
        self._worker_pid = 0
        self._hedge_pool: ThreadPoolExecutor | None = None
        if config.sniff.on_start or config.sniff.interval is not None:
            self._ensure_worker()

    # -- node set ----------------------------------------------------------------------------

    def _add_node(self, node: NodeConfig) -> None:
        self.pools[node] = NodePool(
            node,
            self.config.pool,
            self.config.tls,
            self._ssl_context,
            self.config.timeouts.connect,
            proxy=self.proxy_route(node),
        )
        self.remember_headers(node)

    def pool_stats(self) -> dict[str, dict[str, int]]:
        """Per node URL: ``open``, ``idle`` and ``in_use`` connections now; ``opened`` since
        the start and ``waits`` (checkouts that waited for a free connection)."""
        return {node.url: pool.counts() for node, pool in list(self.pools.items())}

    def nodes_status(self) -> list[dict[str, object]]:
        """Per node: state, failures, last probe, in-flight calls and pool use."""
        stats = self.pool_stats()
        with self._lock:
            pools = {n: stats[n.url] for n in self.health.nodes if n.url in stats}
            return list(self.status_rows(_monotonic(), pools))

    def stats(self) -> dict[str, Any]:
        """Probes sent (in all and per node) and retries granted and denied by the budget."""
        with self._lock:
            return super().stats()

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._wake.notify_all()
            worker = self._worker
        if worker is not None and worker is not threading.current_thread():
            worker.join(timeout=self.config.health.probe_timeout + 5)
        if self._hedge_pool is not None:
            self._hedge_pool.shutdown(wait=True, cancel_futures=True)
        for pool in list(self.pools.values()):
            pool.close()

    # -- calls -------------------------------------------------------------------------------

    def perform(self, spec: RequestSpec) -> Response:
        """Run one call to completion within its deadline; return the answer or raise."""
        call = self.start_call(spec, self._lock)
        try:
            response = self._run(call)
        except BaseException as exc:
            self.call_failed(call, exc)
            raise
        self.call_done(call, response)
        return response

    def _run(self, call: Call) -> Response:
        while True:
            choice = call.plan.choose(_monotonic())
            node = choice.node
            if choice.await_probe:
                self._await_probe(node, call.deadline, choice.until)
                continue
            if choice.probe_first:
                self._caller_probe(call, node)
                continue
            t0 = _monotonic()
            overtaken = False
            try:
                if call.hedge_after is not None:
                    response, overtaken = self._hedged(call, node, call.hedge_after)
                else:
                    response = self._attempt(call, node, call_of=call)
            except EjectedMeanwhile:
                call.plan.requeue(node)
                continue
            except SturdySearchError as exc:
                delay = self.attempt_failed(call, node, exc, t0)
                if delay > 0:
                    time.sleep(delay)
                continue
            self.attempt_succeeded(call, node, response, overtaken=overtaken)
            return response

    def _caller_probe(self, call: Call, node: NodeConfig) -> None:
        """Probe ``node`` for a call that found every node ejected; wakes callers waiting on
        the outcome."""
        error = self._probe(node, call.deadline)
        try:
            call.plan.probe_done(
                node, ok=error is None, now=_monotonic(), rand=random.random(), error=error
            )
        finally:
            with self._wake:
                self._wake.notify_all()

    def _await_probe(self, node: NodeConfig, deadline: Deadline, until: float | None) -> None:
        """Wait (within the deadline) until nobody is probing ``node`` any more, or, with
        ``until``, until then or until any probe finishes, whichever comes first."""
        with self._wake:
            if until is not None:
                # Woken by any probe's outcome, or at ``until`` to claim the due probe.
                wait = min(until, deadline.at) - _monotonic()
                if wait > 0:
                    self._wake.wait(wait)
                return
            while True:
                state = self.health.states.get(node)
                if state is None or not state.probing:
                    return
                remaining = deadline.at - _monotonic()
                if remaining <= 0:
                    return
                self._wake.wait(remaining)

    def _attempt(
        self,
        call: Exchange,
        node: NodeConfig,
        *,
        race: _Race | None = None,
        role: str = "",
        on_hedge: Callable[[], None] | None = None,
        hedge_at: float | None = None,
        call_of: Call | None = None,
    ) -> Response:
        spec = call.spec
        pool = self.pools.get(node)
        if pool is None:
            raise TransportError("the node left the cluster (sniffing)", node=node.url)
        t0 = _monotonic()
        deadline = call.deadline
        conn = pool.acquire(deadline)
        state = self.health.states.get(node)
        if call_of is not None and state is not None and not state.alive:
            # Ejected while this call waited for a connection: sending now would add to the
            # outage's load what the probe schedule keeps out of it.
            pool.release(conn, reusable=True)
            raise EjectedMeanwhile
        if race is not None:
            with race.lock:
                race.connections[role] = conn
                lost = race.winner is not None
            if lost:
                pool.release(conn, reusable=True)
                raise TransportError("hedge lost before sending", node=node.url)
        try:
            head, data, reusable = conn.exchange(
                *self.encode_for(call, node),
                head_request=spec.method == "HEAD",
                deadline=deadline,
                read_timeout=call.read_timeout,
                hedge_at=hedge_at,
                on_hedge=on_hedge,
            )
        except BaseException:
            pool.release(conn, reusable=False)
            raise
        pool.release(conn, reusable=reusable)
        return self.answer(spec, node, head, data, t0)

    # -- hedged reads ------------------------------------------------------------------------

    def _hedged(self, call: Call, node: NodeConfig, hedge_after: float) -> tuple[Response, bool]:
        """The primary attempt runs in the caller's thread; if it has not answered after
        ``hedge_after``, a second attempt starts on another live node in a worker thread. The
        first answer wins and the other attempt's connection is aborted and discarded. Returns
        the answer and whether the primary was overtaken by the hedge."""
        spec = call.spec
        plan = call.plan
        deadline = call.deadline
        race = _Race()
        hedge_started = threading.Event()

        def run_hedge(hedge: NodeConfig) -> None:
            try:
                response = self._attempt(call, hedge, race=race, role="hedge")
            except SturdySearchError as exc:
                plan.released(hedge)
                self.hedge_failed(call, hedge, exc, eject=race.winner is None, guard=self._lock)
                race.done.set()
                return
            plan.succeeded(hedge)
            if race.claim("hedge", response) and self.tracer.active:
                self.tracer.emit("request.hedge_won", node=hedge.url, path=spec.path)

        def on_hedge() -> None:
            hedge = hedge_node(self.health, self._lock, self.budget, node)
            if hedge is None:
                return
            self.counts.hedges += 1
            if self.tracer.active:
                self.tracer.emit("request.hedge", primary=node.url, hedge=hedge.url, path=spec.path)
            hedge_started.set()
            self._hedge_executor().submit(run_hedge, hedge)

        try:
            response = self._attempt(
                call,
                node,
                race=race,
                role="primary",
                call_of=call,
                on_hedge=on_hedge,
                hedge_at=_monotonic() + hedge_after,
            )
        except SturdySearchError:
            if not hedge_started.is_set():
                raise
            # The primary failed or was aborted because the hedge won: wait for the hedge.
            remaining = deadline.at - _monotonic()
            race.done.wait(max(0.0, remaining))
            if race.winner == "hedge" and race.result is not None:
                return race.result, True  # the primary was cancelled, not failed
            raise
        if race.claim("primary"):
            return response, False
        # Lost the race by a hair: the hedge's answer is already taken, use it.
        race.done.wait(max(0.0, deadline.at - _monotonic()))
        assert race.result is not None
        return race.result, True

    def _hedge_executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._hedge_pool is None:
                self._hedge_pool = ThreadPoolExecutor(
                    max_workers=max(4, len(self.health.nodes) * 2),
                    thread_name_prefix="sturdysearch-hedge",
                )
            return self._hedge_pool

    # -- probes and sniffing (background) ------------------------------------------------------

    def _probe(self, node: NodeConfig, deadline: Deadline | None = None) -> str | None:
        """``GET /`` on ``node`` with the probe timeout (and within ``deadline``); returns
        ``None`` on success, else why it failed. Never touches the node's health itself."""
        now = _monotonic()
        budget = self.probe_budget(deadline, now)
        if budget <= 0:
            return "no time left for a probe"
        try:
            status = self._attempt(probe_exchange(now, budget, self.signer), node).meta.status
        except DeadlineExceeded:
            return f"no answer within {budget:.3g} s"
        except SturdySearchError as exc:
            return f"{type(exc).__name__}: {exc}"
        return None if self.probe_ok(status) else f"status {status}"

    def _ensure_worker(self) -> None:
        with self._lock:
            if self._closed:
                return
            pid = os.getpid()
            if self._worker is not None and self._worker_pid == pid and self._worker.is_alive():
                self._wake.notify_all()
                return
            self._worker_pid = pid
            self._worker = threading.Thread(
                target=self._background, name="sturdysearch-health", daemon=True
            )
            self._worker.start()

    def _on_node_failure(self) -> None:
        with self._lock:
            self.request_sniff_on_failure()
        self._ensure_worker()

    def _background(self) -> None:
        while True:
            with self._lock:
                if self._closed:
                    return
                step = self.next_background_step(_monotonic())
                if not step.due and not step.sniff:
                    # With nothing scheduled, sleep until _ensure_worker wakes us.
                    self._wake.wait(timeout=step.wait if step.wait is not None else 60.0)
                    continue
            for node in step.due:
                error = self._probe(node)
                with self._lock:
                    self.background_probe_done(node, error)
                    self._wake.notify_all()
            if step.sniff:
                try:
                    self.sniff()
                except Exception as exc:  # a failed sniff keeps the current nodes
                    logger.warning("sniffing failed, keeping the current nodes: %s", exc)

    def sniff(self) -> list[NodeConfig]:
        """Discover the cluster's HTTP nodes and adopt the reachable ones.

        Keeps the current nodes when the answer is unusable, and when none of the discovered
        addresses answers from here (the publish_address trap behind Docker or Kubernetes NAT),
        with a warning that says so. Returns the node list in force afterwards.
        """
        found = self.sniffed_nodes(self.perform(self.sniff_spec()))
        if found is None:
            return list(self.health.nodes)
        reachable: list[NodeConfig] = []
        for node in found:
            if node not in self.pools:
                with self._lock:
                    self._add_node(node)
            state = self.health.states.get(node)
            if (state is not None and state.alive) or self._probe(node) is None:
                reachable.append(node)
        with self._lock:
            self.adopt_sniffed(found, reachable)
        self._drop_pools_not_in(self.health.nodes)
        return list(self.health.nodes)

    def _drop_pools_not_in(self, keep: tuple[NodeConfig, ...] | list[NodeConfig]) -> None:
        with self._lock:
            stale = [node for node in self.pools if node not in keep]
            pools = [self.pools.pop(node) for node in stale]
            for node in stale:
                self.forget_headers(node)
        for pool in pools:
            pool.close()
