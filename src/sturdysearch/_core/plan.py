"""One call across its attempts: which node next, and what a failure means.

The drivers (sync and async) run the same loop::

    plan = CallPlan(...)
    while True:
        choice = plan.choose(now)            # a node, maybe to be probed first
        ... wait if asked (choice.await_probe), then choose again ...
        ... probe if asked: plan.probe_done(...); choose again if it failed ...
        ... exchange bytes with choice.node ...
        on success: plan.succeeded(node); return
        on error:   delay = plan.failed(node, exc, now, rand)   # raises when it is over
                    wait delay

and differ only in how they wait. All shared state (node health, retry budget) is touched under
``guard``, a lock the driver supplies (a no-op for asyncio).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass

from sturdysearch._core.budget import RetryBudget
from sturdysearch._core.counts import CallCounts
from sturdysearch._core.events import Tracer
from sturdysearch._core.health import EJECT_STATUSES, NodeHealth
from sturdysearch._core.nodes import NodeConfig
from sturdysearch._core.outcome import failure_of, final_error
from sturdysearch._core.request import RequestSpec
from sturdysearch._core.retry import RetryPolicy
from sturdysearch._core.timeouts import Deadline
from sturdysearch.errors import (
    ApiError,
    ConnectionError,
    DeadlineExceeded,
    MalformedResponseError,
    NoLiveNodesError,
    ProxyAuthenticationError,
    ReadTimeout,
    SturdySearchError,
    TLSError,
    TransportError,
)


@dataclass(frozen=True, slots=True)
class Choice:
    node: NodeConfig
    probe_first: bool = False
    await_probe: bool = False
    """Every node is ejected: wait for a probe's outcome (``until`` is ``None``: the probe of
    ``node`` that is running now), or until ``until``, when the probe of ``node`` is due; then
    choose again."""
    until: float | None = None


def ejects(exc: SturdySearchError) -> bool:
    """Whether this failure takes the node out of rotation (see ``_core.health``)."""
    if isinstance(exc, ApiError):
        return exc.status in EJECT_STATUSES
    if isinstance(exc, (TLSError, ProxyAuthenticationError)):
        return False  # the client's configuration is wrong, not the node
    return isinstance(exc, (ConnectionError, ReadTimeout, MalformedResponseError))


class CallPlan:
    __slots__ = (
        "_budget",
        "_counts",
        "_guard",
        "_health",
        "_probe_failed",
        "_probes_failed_before",
        "_retry",
        "_tracer",
        "attempt",
        "awaited_probe",
        "deadline",
        "ejected_last",
        "history",
        "seen_probe",
        "spec",
        "tried",
    )

    def __init__(
        self,
        spec: RequestSpec,
        deadline: Deadline,
        *,
        retry: RetryPolicy,
        budget: RetryBudget,
        health: NodeHealth,
        guard: AbstractContextManager[object],
        tracer: Tracer,
        counts: CallCounts | None = None,
    ) -> None:
        self.spec = spec
        self.deadline = deadline
        self._retry = spec.retry if spec.retry is not None else retry
        self._budget = budget
        self._health = health
        self._guard = guard
        self._tracer = tracer
        self._counts = counts if counts is not None else CallCounts()
        self.attempt = 0
        self.ejected_last = False
        """Whether the last failed attempt took its node out of rotation."""
        self.awaited_probe = False
        """Waiting for the outcome of a running probe (``await_probe`` without ``until``)."""
        self.seen_probe = False
        """A probe this call ran or waited for failed: it waits for no further probe (a call
        waits for the next scheduled probe, not for an outage to end)."""
        self._probe_failed = "every node is ejected and the probe failed"
        self.history: list[SturdySearchError] = []
        self.tried: list[NodeConfig] = []
        with guard:
            budget.deposit()
            self._probes_failed_before = health.probes_failed

    def choose(self, now: float) -> Choice:
        """The node for the next attempt.

        With every node ejected the call follows the shared probe schedule and never probes
        on its own (see ``_core.health``): it runs the probe that is due now
        (``Choice.probe_first``), or waits for the one running or the next one scheduled
        within its deadline (``Choice.await_probe``), or fails at once with
        ``NoLiveNodesError`` (or the last failure on a retry) saying when the next probe is
        due. Once a probe it ran or waited for has failed, it waits for no other: it waits for
        the next probe, not for the outage to end.
        """
        health = self._health
        deadline = self.deadline.at
        with self._guard:
            node = health.pick(self.tried)
            if node is not None:
                # A probe this call waited for (if any) re-admitted a node: should this attempt
                # fail too, the call may wait for (or run) a probe again.
                self.awaited_probe = False
                health.states[node].in_flight += 1
                self.attempt += 1
                return Choice(node)
            if self.awaited_probe or health.probes_failed > self._probes_failed_before:
                # A probe failed since this call started (the one it waited for, or the
                # background prober's while it backed off), and still no node: a due probe may
                # still be run, but the call waits no further.
                self.seen_probe = True
                self.awaited_probe = False
            if deadline - now > 0.01:
                due = health.claim_due_probe(now)
                if due is not None:
                    return Choice(due, probe_first=True)
                probing = health.probing_node()
                if probing is not None and not self.seen_probe:
                    self.awaited_probe = True
                    return Choice(probing, await_probe=True)
            scheduled = health.next_scheduled_probe()
        if self.seen_probe:
            if scheduled is None:
                raise self._no_live_nodes(self._probe_failed, None)
            wait = max(0.0, scheduled[1] - now)
            raise self._no_live_nodes(
                f"{self._probe_failed}; the next probe is due in {wait:.3g} s", wait
            )
        if scheduled is None:
            raise self._no_live_nodes(
                "every node is ejected and the deadline leaves no time to wait for a probe", None
            )
        node, at = scheduled
        wait = max(0.0, at - now)
        if deadline - now <= 0.01:
            why = "every node is ejected and the deadline leaves no time to probe one"
        elif at < deadline:
            return Choice(node, await_probe=True, until=at)
        else:
            why = (
                f"every node is ejected and the next probe ({node.url}) is due in {wait:.3g} s, "
                "after this call's deadline"
            )
        raise self._no_live_nodes(why, wait)

    def probe_done(
        self, node: NodeConfig, *, ok: bool, now: float, rand: float, error: str | None
    ) -> None:
        """Outcome of the probe a caller ran for ``choose``'s ``probe_first``. Either way the
        driver chooses again: a re-admitted node is picked, a failed probe leads to a wait for
        the next one or to ``NoLiveNodesError``."""
        with self._guard:
            readmitted = self._health.probe_finished(node, ok=ok, now=now, rand=rand, error=error)
            state = self._health.states.get(node)
            probes = state.probes if state is not None else None
        if not ok:
            self.seen_probe = True
            self._probe_failed = (
                f"every node is ejected and the probe of {node.url} failed: {error}"
            )
        if self._tracer.active:
            self._tracer.emit(
                "node.probe", node=node.url, ok=ok, by="caller", error=error, probes=probes
            )
        if readmitted:
            self._counts.readmissions += 1
            self._tracer.emit("node.readmitted", node=node.url)

    def succeeded(self, node: NodeConfig) -> None:
        self._counts.attempts += 1
        with self._guard:
            state = self._health.states.get(node)
            if state is not None:
                state.in_flight -= 1
            self._health.record_success(node)

    def released(self, node: NodeConfig) -> None:
        """An attempt on ``node`` ended without telling anything about the node's health (a
        hedge that lost or was cancelled): only the in-flight count changes."""
        self._counts.attempts += 1
        with self._guard:
            state = self._health.states.get(node)
            if state is not None:
                state.in_flight -= 1

    def overtaken(self, node: NodeConfig, now: float, rand: float) -> None:
        """``node``'s attempt lost a hedged race (cancelled, not failed)."""
        self._counts.attempts += 1
        with self._guard:
            state = self._health.states.get(node)
            if state is not None:
                state.in_flight -= 1
            ejected = self._health.hedge_lost(node, now=now, rand=rand)
            live = len(self._health.live_nodes())
        if ejected:
            self._counts.ejections += 1
            self._tracer.emit(
                "node.ejected", node=node.url, reason="overtaken by hedges", live=live
            )

    def failed(self, node: NodeConfig, exc: SturdySearchError, now: float, rand: float) -> float:
        """Record a failed attempt; return the delay before the next one, or raise the error
        the caller should see."""
        self._judge_node(node, exc, now, rand)
        failure = failure_of(exc)
        spec = self.spec
        if failure is None:
            raise final_error(exc, idempotent=spec.idempotent, history=self.history)
        remaining = self.deadline.at - now
        decision = self._retry.decide(
            failure,
            attempt=self.attempt,
            idempotent=spec.idempotent,
            remaining=remaining,
            rand=rand,
        )
        if not decision.retry:
            raise self._final(exc, remaining, sent=failure.sent)
        # Every retry is charged, also after a connection that failed before sending: during
        # an outage those are most of the traffic, and uncharged they would be unbounded.
        with self._guard:
            allowed = self._budget.try_withdraw()
            denied = self._budget.denied
        if not allowed:
            self._tracer.emit(
                "retry.budget_exhausted", node=node.url, path=spec.path, denied=denied
            )
            raise final_error(exc, idempotent=spec.idempotent, history=self.history)
        self.history.append(exc)
        self.tried.append(node)
        self._counts.retries += 1
        self._tracer.emit(
            "request.retry",
            node=node.url,
            method=spec.method,
            path=spec.path,
            attempt=self.attempt,
            delay=decision.delay,
            error=type(exc).__name__,
        )
        return decision.delay

    def _judge_node(
        self, node: NodeConfig, exc: SturdySearchError, now: float, rand: float
    ) -> None:
        """What a failed attempt says about its node: eject it on a transport failure or a
        502/503/504, count an unanswered deadline cut towards ejecting it, else nothing."""
        self._counts.attempts += 1
        self._counts.attempts_failed += 1
        with self._guard:
            state = self._health.states.get(node)
            if state is not None:
                state.in_flight -= 1
            if ejects(exc):
                ejected = self._health.eject(node, now=now, rand=rand, reason=str(exc))
                reason = type(exc).__name__
            elif isinstance(exc, DeadlineExceeded) and exc.unanswered:
                ejected = self._health.deadline_cut(node, now=now, rand=rand)
                reason = "calls running out of time without an answer"
            else:
                ejected = False
            live = len(self._health.live_nodes())
        self.ejected_last = ejected
        if ejected:
            self._counts.ejections += 1
            self._tracer.emit("node.ejected", node=node.url, reason=reason, live=live)

    def _final(self, exc: SturdySearchError, remaining: float, *, sent: bool) -> Exception:
        """The error a call that is not retried raises. A transport failure once time is up is
        reported as the deadline; the server's own answers (4xx/5xx) and TLS failures keep
        their type, so that handlers such as ``except NotFoundError`` still work."""
        idempotent = self.spec.idempotent
        if remaining > 0 or isinstance(exc, (DeadlineExceeded, ApiError, TLSError)):
            return final_error(exc, idempotent=idempotent, history=self.history)
        self.history.append(exc)
        timeout = DeadlineExceeded(
            f"the call's deadline of {self.deadline.budget:g} s passed after "
            f"{self.attempt} attempt(s); last error: {exc}",
            request_sent=sent,
        )
        timeout.__cause__ = exc
        return final_error(timeout, idempotent=idempotent, history=self.history)

    def requeue(self, node: NodeConfig) -> None:
        """The attempt on ``node`` never started: the node was ejected while the call waited
        for one of its connections. Nothing was sent; the call chooses again, uncharged."""
        with self._guard:
            state = self._health.states.get(node)
            if state is not None:
                state.in_flight -= 1
        self.attempt -= 1

    def _no_live_nodes(self, why: str, next_probe_in: float | None) -> SturdySearchError:
        """The error for "nowhere left to send this": on a retry, the last real failure (a 502
        stays a ``ServerError``, a refused connection a ``ConnectionError``) with the earlier
        ones attached; on a first attempt, ``NoLiveNodesError``."""
        if self.history:
            last = self.history[-1]
            if isinstance(last, TransportError):
                last.message = f"{last.message}; no other node is live ({why})"
                last.args = (last.message,)
            return final_error(last, idempotent=self.spec.idempotent, history=self.history[:-1])
        return NoLiveNodesError(
            f"no live node to send the request to: {why}", next_probe_in=next_probe_in
        )


def hedge_node(
    health: NodeHealth,
    guard: AbstractContextManager[object],
    budget: RetryBudget,
    primary: NodeConfig,
) -> NodeConfig | None:
    """The node for a hedged second attempt, or ``None`` (no other live node, or no budget).

    A hedge costs the cluster as much as a retry, so it draws on the same budget.
    """
    with guard:
        node = health.pick((primary,))
        if node is None or node == primary or not budget.try_withdraw():
            return None
        health.states[node].in_flight += 1
        return node
