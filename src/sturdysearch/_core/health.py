"""Which nodes get traffic: ejected fast, re-admitted only after a probe.

Theory of operation. Every node starts *alive*. A node that fails at the transport level
(refused, reset, timed out, garbage) or answers 502/503/504 is *ejected* at once: no caller's
request goes to it any more. An ejected node is *probed* (a cheap ``GET /`` with a short timeout)
at once, then, while probes fail, on a jittered exponential schedule: ``base * 2**(k-1)`` seconds
after its k-th failed probe, capped at ``probe_backoff_cap``, each delay drawn uniformly from its
upper half (equal jitter, so that clients do not probe in lockstep). Only a successful probe re-admits it; a
caller's request is never used as the probe, so nobody's call pays for checking a dead node.

Not reasons to eject: 429 (the node is alive and asking for less load; ejecting it would
concentrate that load on the others), 4xx, TLS failures (configuration, not health), and one
call's own deadline running out (the caller gave up, the node did nothing provably wrong). But
a node that lets ``DEADLINE_CUTS_TO_EJECT`` calls in a row run out of time without sending a
byte of their answers is treated as unresponsive: ejected and probed. Otherwise callers whose
deadline is shorter than the read timeout (``search(timeout=2.0)`` with the default 10 s) would
each send a request into an outage, so that its load grew with their number. A node that is
only slow answers the probe at once and is back in rotation; the WARNING says why it left.

When every node is ejected, no call probes on its own: each node has one probe schedule,
shared by every caller, worker and indexer of the client (and by its background prober). A
call whose node's probe is due claims it and runs it; a call that finds a probe running, or the
next one scheduled before its deadline, waits for that probe's outcome; any other call fails at
once with ``NoLiveNodesError`` saying when the next probe is due. An outage therefore costs the
cluster one probe per node per backoff step, however many threads, tasks or indexer workers
call; a one-node cluster still recovers from a blip at once, since the first probe after an
ejection is immediate.

This module holds state and arithmetic only; the drivers hold the lock, run the probes and
supply ``now`` and the random numbers.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sturdysearch._core.nodes import NodeConfig
from sturdysearch._core.timeouts import check_seconds
from sturdysearch.errors import ConfigError

#: Statuses that mean "this node cannot serve now", as opposed to "not this request".
EJECT_STATUSES = frozenset({502, 503, 504})
#: A node whose attempts lose this many hedged races in a row, without answering, is treated as
#: unresponsive: ejected and probed. Without this a blackholed node would never time out (its
#: attempts are always cancelled by the winning hedge) and would keep costing a hedge per visit.
HEDGE_LOSSES_TO_EJECT = 3
#: A node that lets this many attempts in a row run out of their calls' time, sent and with
#: not a byte of the answer back, is treated as unresponsive: ejected and probed.
DEADLINE_CUTS_TO_EJECT = 3


@dataclass(frozen=True, slots=True)
class HealthConfig:
    probe_timeout: float = 2.0
    """Deadline of one health probe (connect + answer)."""
    probe_backoff_base: float = 0.5
    """Upper bound of the wait after the first failed probe (the first probe is immediate);
    doubles with each further failure, jittered."""
    probe_backoff_cap: float = 60.0
    """Longest wait between two probes of a node that keeps failing."""

    def __post_init__(self) -> None:
        check_seconds("probe_timeout", self.probe_timeout)
        check_seconds("probe_backoff_base", self.probe_backoff_base)
        check_seconds("probe_backoff_cap", self.probe_backoff_cap)
        if self.probe_backoff_base > self.probe_backoff_cap:
            raise ConfigError("probe_backoff_base must not exceed probe_backoff_cap")

    def probe_delay(self, failures: int, rand: float) -> float:
        """Delay before the next probe after ``failures`` consecutive failures (>= 1).

        The first probe is immediate: most failures are blips, and a node that answers again
        should be back before callers notice. Each failed probe doubles the wait."""
        if failures <= 1:
            return 0.0
        # The exponent is bounded so that a node dead for days cannot overflow the float.
        ceiling = min(
            self.probe_backoff_cap, self.probe_backoff_base * 2.0 ** min(failures - 2, 64)
        )
        return float(ceiling * (0.5 + 0.5 * rand))


def probe_answer_ok(status: int) -> bool:
    """Whether a probe's answer shows a serving node. 401/403 count as alive: the node answered,
    the credentials are just not allowed on ``/``. So does 405: builds without the ``rest-root``
    module (Elasticsearch's integ-test distribution) do not serve ``GET /`` at all, and would
    otherwise never be re-admitted once ejected."""
    return status < 300 or status in (401, 403, 405)


class NodeState:
    """Mutable facts about one node, for the selector and for operators."""

    __slots__ = (
        "alive",
        "deadline_cuts",
        "ejections",
        "failures",
        "hedge_losses",
        "in_flight",
        "last_error",
        "last_probe_at",
        "last_probe_ok",
        "next_probe_at",
        "node",
        "probes",
        "probing",
        "seed",
    )

    def __init__(self, node: NodeConfig, *, seed: bool) -> None:
        self.node = node
        self.seed = seed
        self.alive = True
        self.failures = 0
        self.hedge_losses = 0
        self.deadline_cuts = 0
        self.ejections = 0
        self.in_flight = 0
        self.next_probe_at = 0.0
        self.last_probe_at: float | None = None
        self.last_probe_ok: bool | None = None
        self.last_error: str | None = None
        self.probing = False
        self.probes = 0
        """Probes sent to this node (by callers and the background prober)."""

    def snapshot(self, now: float) -> dict[str, Any]:
        return {
            "node": self.node.url,
            "state": "alive" if self.alive else ("probing" if self.probing else "ejected"),
            "consecutive_failures": self.failures,
            "ejections": self.ejections,
            "in_flight": self.in_flight,
            "last_error": self.last_error,
            "last_probe_ago": None if self.last_probe_at is None else now - self.last_probe_at,
            "last_probe_ok": self.last_probe_ok,
            "next_probe_in": None if self.alive else max(0.0, self.next_probe_at - now),
            "probes": self.probes,
            "seed": self.seed,
        }


class NodeHealth:
    """The node set and its health. Not thread-safe: drivers serialize calls."""

    def __init__(self, nodes: Sequence[NodeConfig], config: HealthConfig | None = None) -> None:
        if not nodes:
            raise ConfigError("no nodes")
        self.config = config or HealthConfig()
        self.states: dict[NodeConfig, NodeState] = {n: NodeState(n, seed=True) for n in nodes}
        self.seeds = tuple(nodes)
        self._order: tuple[NodeConfig, ...] = tuple(nodes)
        self._counter = itertools.count()
        self._retry_counter = itertools.count()
        self.probes_sent = 0
        """Probes sent to any node, also to nodes that sniffing removed since."""
        self.probes_failed = 0
        """Probes that failed; a call that saw one fail since it started waits for no other."""

    @property
    def nodes(self) -> tuple[NodeConfig, ...]:
        return self._order

    def live_nodes(self) -> list[NodeConfig]:
        return [n for n in self._order if self.states[n].alive]

    def pick(self, exclude: Sequence[NodeConfig] = ()) -> NodeConfig | None:
        """Next live node round-robin, avoiding ``exclude`` when another live node exists;
        ``None`` when no node is alive. Rotation is over the eligible nodes only, so skipping
        one does not double the load of its neighbour."""
        # First attempts and retries (which exclude nodes) rotate on separate counters:
        # sharing one would let the excluded picks skew where first attempts land.
        turn = next(self._retry_counter if exclude else self._counter)
        states = self.states
        eligible = [n for n in self._order if states[n].alive and n not in exclude]
        if eligible:
            return eligible[turn % len(eligible)]
        live = [n for n in self._order if states[n].alive]
        return live[turn % len(live)] if live else None

    def most_promising(self, exclude: Sequence[NodeConfig] = ()) -> NodeConfig:
        """The ejected node most likely to answer: fewest consecutive failures, then the
        earliest scheduled probe."""
        candidates = [s for s in self.states.values() if s.node not in exclude] or list(
            self.states.values()
        )
        best = min(candidates, key=lambda s: (s.failures, s.next_probe_at))
        return best.node

    def record_success(self, node: NodeConfig) -> None:
        state = self.states.get(node)
        if state is not None and state.alive:
            state.failures = 0
            state.hedge_losses = 0
            state.deadline_cuts = 0

    def hedge_lost(self, node: NodeConfig, *, now: float, rand: float) -> bool:
        """``node``'s attempt was overtaken by a hedge; returns ``True`` if that ejected it."""
        return self._unanswered(
            node,
            "hedge_losses",
            HEDGE_LOSSES_TO_EJECT,
            f"unresponsive: overtaken by {HEDGE_LOSSES_TO_EJECT} hedges in a row",
            now=now,
            rand=rand,
        )

    def deadline_cut(self, node: NodeConfig, *, now: float, rand: float) -> bool:
        """An attempt on ``node`` ran out of its call's time, sent and unanswered; returns
        ``True`` if that ejected the node (see ``DEADLINE_CUTS_TO_EJECT``)."""
        return self._unanswered(
            node,
            "deadline_cuts",
            DEADLINE_CUTS_TO_EJECT,
            f"unresponsive: {DEADLINE_CUTS_TO_EJECT} calls in a row ran out of time without "
            "a byte of their answers",
            now=now,
            rand=rand,
        )

    def _unanswered(
        self, node: NodeConfig, streak: str, limit: int, reason: str, *, now: float, rand: float
    ) -> bool:
        """One more attempt of a streak (``NodeState.<streak>``) that tells nothing alone but
        ``limit`` in a row without a success make the node unresponsive: ejected and probed."""
        state = self.states.get(node)
        if state is None or not state.alive:
            return False
        count = getattr(state, streak) + 1
        if count < limit:
            setattr(state, streak, count)
            return False
        setattr(state, streak, 0)
        return self.eject(node, now=now, rand=rand, reason=reason)

    def eject(self, node: NodeConfig, *, now: float, rand: float, reason: str) -> bool:
        """Take ``node`` out of rotation; returns ``True`` if it was alive until now."""
        state = self.states.get(node)
        if state is None:
            return False
        state.last_error = reason
        was_alive = state.alive
        if was_alive:
            # Only the first failure counts towards the probe backoff: the other calls in
            # flight when a node goes down fail too, and counting each of them would push its
            # next probe out by one doubling per call (a minute after a burst of eight).
            state.failures += 1
            state.alive = False
            state.ejections += 1
            state.next_probe_at = now + self.config.probe_delay(state.failures, rand)
        return was_alive

    def due_probes(self, now: float) -> list[NodeConfig]:
        """Ejected nodes whose probe time has come and that no one is probing yet; marks them
        as being probed."""
        due = []
        for state in self.states.values():
            if not state.alive and not state.probing and state.next_probe_at <= now:
                self._claimed(state)
                due.append(state.node)
        return due

    def _claimed(self, state: NodeState) -> None:
        state.probing = True
        state.probes += 1
        self.probes_sent += 1

    def claim_due_probe(self, now: float) -> NodeConfig | None:
        """Claim the most promising ejected node whose scheduled probe is due and that nobody
        probes yet, for a caller to run; ``None`` if no probe is due."""
        due = [
            s
            for s in self.states.values()
            if not s.alive and not s.probing and s.next_probe_at <= now
        ]
        if not due:
            return None
        best = min(due, key=lambda s: (s.failures, s.next_probe_at))
        self._claimed(best)
        return best.node

    def probing_node(self) -> NodeConfig | None:
        """A node whose probe is running now, if any."""
        for state in self.states.values():
            if state.probing:
                return state.node
        return None

    def next_scheduled_probe(self) -> tuple[NodeConfig, float] | None:
        """The ejected node probed next by the schedule, and when."""
        waiting = [s for s in self.states.values() if not s.alive and not s.probing]
        if not waiting:
            return None
        best = min(waiting, key=lambda s: s.next_probe_at)
        return best.node, best.next_probe_at

    def claim_probe(self, node: NodeConfig) -> bool:
        """Claim ``node`` for a probe run by a caller; ``False`` if someone already probes it."""
        state = self.states.get(node)
        if state is None or state.probing:
            return False
        self._claimed(state)
        return True

    def next_probe_at(self) -> float | None:
        times = [s.next_probe_at for s in self.states.values() if not s.alive and not s.probing]
        return min(times) if times else None

    def probe_finished(
        self, node: NodeConfig, *, ok: bool, now: float, rand: float, error: str | None = None
    ) -> bool:
        """Record a probe's outcome; returns ``True`` if the node was re-admitted."""
        state = self.states.get(node)
        if state is None:
            return False
        state.probing = False
        state.last_probe_at = now
        state.last_probe_ok = ok
        if ok:
            readmitted = not state.alive
            state.alive = True
            state.failures = 0
            state.last_error = None
            return readmitted
        self.probes_failed += 1
        state.failures += 1
        state.last_error = error
        state.alive = False
        state.next_probe_at = now + self.config.probe_delay(state.failures, rand)
        return False

    def replace_nodes(
        self, nodes: Iterable[NodeConfig]
    ) -> tuple[list[NodeConfig], list[NodeConfig]]:
        """Adopt a new node set (from sniffing); known nodes keep their state. Returns
        ``(added, removed)``."""
        new_order = tuple(dict.fromkeys(nodes))
        if not new_order:
            raise ValueError("refusing to replace the node set with an empty one")
        added = [n for n in new_order if n not in self.states]
        removed = [n for n in self._order if n not in new_order]
        for node in added:
            self.states[node] = NodeState(node, seed=node in self.seeds)
        for node in removed:
            del self.states[node]
        self._order = new_order
        return added, removed

    def snapshot(self, now: float) -> list[dict[str, Any]]:
        return [self.states[n].snapshot(now) for n in self._order]
