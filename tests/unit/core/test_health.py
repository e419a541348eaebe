"""Node health (``sturdysearch._core.health``): ejection, probe schedule, selection fairness.

Every clock reading and random number is passed in; nothing here sleeps or reads a clock.
"""

from __future__ import annotations

import itertools
import random
from collections import Counter

import pytest

from sturdysearch._core.health import (
    EJECT_STATUSES,
    HEDGE_LOSSES_TO_EJECT,
    HealthConfig,
    NodeHealth,
    probe_answer_ok,
)
from sturdysearch._core.nodes import NodeConfig
from sturdysearch.errors import ConfigError

A, B, C, D = (NodeConfig("http", f"10.0.0.{i}", 9200) for i in range(1, 5))
CONFIG = HealthConfig(probe_timeout=1.0, probe_backoff_base=0.5, probe_backoff_cap=8.0)


def health(*nodes: NodeConfig, config: HealthConfig = CONFIG) -> NodeHealth:
    return NodeHealth(nodes or (A, B, C), config)


def fail_probes(h: NodeHealth, node: NodeConfig, count: int, *, now: float, rand: float) -> None:
    for _ in range(count):
        assert h.claim_probe(node)
        assert not h.probe_finished(node, ok=False, now=now, rand=rand, error="refused")


# -- configuration ---------------------------------------------------------------------------


def test_defaults() -> None:
    config = HealthConfig()
    assert (config.probe_timeout, config.probe_backoff_base, config.probe_backoff_cap) == (
        2.0,
        0.5,
        60.0,
    )
    assert frozenset({502, 503, 504}) == EJECT_STATUSES
    assert HEDGE_LOSSES_TO_EJECT == 3


@pytest.mark.parametrize(
    "kwargs",
    [
        {"probe_timeout": 0},
        {"probe_timeout": -1.0},
        {"probe_timeout": float("nan")},
        {"probe_timeout": float("inf")},
        {"probe_backoff_base": 0},
        {"probe_backoff_cap": float("inf")},
        {"probe_backoff_base": 10.0, "probe_backoff_cap": 5.0},
    ],
)
def test_config_rejects(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        HealthConfig(**kwargs)


def test_config_base_equal_to_cap_is_fine() -> None:
    assert HealthConfig(probe_backoff_base=5.0, probe_backoff_cap=5.0).probe_delay(9, 1.0) == 5.0


def test_no_nodes_refused() -> None:
    with pytest.raises(ConfigError):
        NodeHealth([])


@pytest.mark.parametrize(
    ("status", "ok"),
    [(200, True), (204, True), (299, True), (401, True), (403, True), (405, True)]
    + [(s, False) for s in (300, 301, 400, 404, 429, 500, 502, 503, 504)],
)
def test_probe_answer_ok(status: int, ok: bool) -> None:
    assert probe_answer_ok(status) is ok


# -- probe schedule --------------------------------------------------------------------------


@pytest.mark.parametrize("rand", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("failures", [0, 1])
def test_first_probe_is_immediate(failures: int, rand: float) -> None:
    assert CONFIG.probe_delay(failures, rand) == 0.0


@pytest.mark.parametrize(
    ("failures", "ceiling"),
    # base 0.5 doubling: 0.5, 1, 2, 4, then the cap of 8 for good.
    [(2, 0.5), (3, 1.0), (4, 2.0), (5, 4.0), (6, 8.0), (7, 8.0), (20, 8.0), (60, 8.0)],
)
def test_probe_delay_bounds(failures: int, ceiling: float) -> None:
    """Equal jitter: rand=0 gives half the ceiling, rand=1 the ceiling, anything between lies
    in the upper half."""
    assert CONFIG.probe_delay(failures, 0.0) == pytest.approx(ceiling / 2)
    assert CONFIG.probe_delay(failures, 1.0) == pytest.approx(ceiling)
    rng = random.Random(failures)
    for _ in range(200):
        delay = CONFIG.probe_delay(failures, rng.random())
        assert ceiling / 2 <= delay <= ceiling


def test_probe_delay_matches_docstring_formula() -> None:
    """``base * 2**(k-1)`` after the k-th failed probe (failures = k + 1: the ejection counts)."""
    for k in range(1, 12):
        expected = min(CONFIG.probe_backoff_cap, CONFIG.probe_backoff_base * 2 ** (k - 1))
        assert CONFIG.probe_delay(k + 1, 1.0) == pytest.approx(expected)


def test_probe_delay_never_exceeds_cap_for_realistic_streaks() -> None:
    config = HealthConfig()  # cap 60 s
    for failures in range(1, 1000):
        assert 0.0 <= config.probe_delay(failures, 1.0) <= 60.0


def test_probe_delay_survives_a_node_dead_for_a_day() -> None:
    assert HealthConfig().probe_delay(1026, 1.0) <= 60.0


def test_probe_finished_survives_a_very_long_outage() -> None:
    h = health(A, B, config=HealthConfig())
    h.eject(A, now=0.0, rand=0.5, reason="refused")
    now = 0.0
    for _ in range(1100):
        assert h.claim_probe(A)
        h.probe_finished(A, ok=False, now=now, rand=1.0, error="refused")
        assert h.states[A].next_probe_at - now <= 60.0
        now = h.states[A].next_probe_at


def test_probe_schedule_from_ejection_rand_0() -> None:
    h = health()
    assert h.eject(A, now=100.0, rand=0.0, reason="refused")
    assert h.states[A].next_probe_at == 100.0  # immediate
    expected_waits = [0.25, 0.5, 1.0, 2.0, 4.0, 4.0, 4.0]  # half of 0.5, 1, 2, 4, 8, 8, 8
    now = 100.0
    for wait in expected_waits:
        assert h.due_probes(now) == [A]
        h.probe_finished(A, ok=False, now=now, rand=0.0, error="refused")
        assert h.states[A].next_probe_at - now == pytest.approx(wait)
        # Not due a hair before its time, due exactly at it.
        assert h.due_probes(now + wait - 1e-6) == []
        now += wait


def test_probe_schedule_from_ejection_rand_1() -> None:
    h = health()
    h.eject(A, now=0.0, rand=1.0, reason="refused")
    assert h.states[A].next_probe_at == 0.0
    now = 0.0
    for wait in [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]:
        assert h.due_probes(now) == [A]
        h.probe_finished(A, ok=False, now=now, rand=1.0, error="refused")
        assert h.states[A].next_probe_at == pytest.approx(now + wait)
        now += wait


# -- ejection and re-admission ---------------------------------------------------------------


def test_all_alive_at_start() -> None:
    h = health()
    assert h.live_nodes() == [A, B, C]
    assert h.nodes == (A, B, C)
    assert h.seeds == (A, B, C)
    assert all(s.alive and s.failures == 0 and s.seed for s in h.states.values())
    assert h.next_probe_at() is None
    assert h.due_probes(1e9) == []


def test_eject_on_first_failure() -> None:
    h = health()
    assert h.eject(B, now=5.0, rand=0.5, reason="connection refused") is True
    state = h.states[B]
    assert not state.alive
    assert (state.failures, state.ejections, state.last_error) == (1, 1, "connection refused")
    assert h.live_nodes() == [A, C]
    assert h.next_probe_at() == 5.0


def test_eject_of_an_ejected_node_is_neither_a_new_ejection_nor_a_new_failure() -> None:
    """The calls in flight when a node goes down all fail: one observation. Counting each
    would push the next probe out by a doubling per call."""
    h = health()
    h.eject(B, now=5.0, rand=0.5, reason="refused")
    assert h.eject(B, now=6.0, rand=0.5, reason="reset") is False
    state = h.states[B]
    assert (state.failures, state.ejections, state.last_error) == (1, 1, "reset")
    assert state.next_probe_at == 5.0  # the schedule is the prober's, not moved by callers


def test_eject_unknown_node_is_a_no_op() -> None:
    h = health(A, B)
    assert h.eject(C, now=0.0, rand=0.5, reason="x") is False
    assert set(h.states) == {A, B}


def test_success_does_not_readmit() -> None:
    """A call that was in flight when the node got ejected and then succeeded is not a probe."""
    h = health()
    h.eject(A, now=0.0, rand=0.5, reason="refused")
    h.record_success(A)
    assert not h.states[A].alive
    assert h.states[A].failures == 1
    assert A not in h.live_nodes()


def test_only_a_successful_probe_readmits() -> None:
    h = health()
    h.eject(A, now=0.0, rand=0.5, reason="refused")
    assert h.due_probes(0.0) == [A]
    assert h.probe_finished(A, ok=False, now=0.1, rand=0.5, error="refused") is False
    assert not h.states[A].alive
    assert h.due_probes(10.0) == [A]
    assert h.probe_finished(A, ok=True, now=10.0, rand=0.5) is True
    state = h.states[A]
    assert state.alive and not state.probing
    assert (state.failures, state.last_error, state.last_probe_ok, state.last_probe_at) == (
        0,
        None,
        True,
        10.0,
    )
    assert state.ejections == 1
    assert h.live_nodes() == [A, B, C]
    assert h.next_probe_at() is None


def test_successful_probe_of_alive_node_is_not_a_readmission() -> None:
    h = health()
    assert h.probe_finished(A, ok=True, now=1.0, rand=0.5) is False
    assert h.states[A].alive


def test_probe_finished_unknown_node() -> None:
    h = health(A, B)
    assert h.probe_finished(C, ok=True, now=1.0, rand=0.5) is False
    assert h.probe_finished(C, ok=False, now=1.0, rand=0.5, error="x") is False
    assert C not in h.states


def test_failed_probe_records_error_and_time() -> None:
    h = health()
    h.eject(A, now=0.0, rand=0.5, reason="refused")
    h.due_probes(0.0)
    h.probe_finished(A, ok=False, now=0.2, rand=0.5, error="status 503")
    state = h.states[A]
    assert (state.last_error, state.last_probe_ok, state.last_probe_at) == (
        "status 503",
        False,
        0.2,
    )
    assert state.failures == 2
    assert not state.probing


def test_reejection_after_readmission_starts_the_schedule_over() -> None:
    h = health()
    h.eject(A, now=0.0, rand=1.0, reason="refused")
    fail_probes(h, A, 4, now=0.0, rand=1.0)
    assert h.states[A].failures == 5
    assert h.claim_probe(A)
    h.probe_finished(A, ok=True, now=50.0, rand=1.0)
    assert h.eject(A, now=60.0, rand=1.0, reason="refused")
    assert h.states[A].failures == 1
    assert h.states[A].ejections == 2
    assert h.states[A].next_probe_at == 60.0  # immediate again


# -- due_probes / claim_probe / next_probe_at ------------------------------------------------


def test_due_probes_marks_probing_and_never_returns_a_node_twice() -> None:
    h = health()
    h.eject(A, now=0.0, rand=0.5, reason="x")
    h.eject(B, now=0.0, rand=0.5, reason="x")
    assert h.due_probes(0.0) == [A, B]
    assert h.states[A].probing and h.states[B].probing
    for now in (0.0, 1.0, 1e6):
        assert h.due_probes(now) == []
    assert h.next_probe_at() is None  # nothing waiting: both are being probed


def test_due_probes_only_returns_due_nodes() -> None:
    h = health()
    h.eject(A, now=0.0, rand=1.0, reason="x")
    h.eject(B, now=0.0, rand=1.0, reason="x")
    fail_probes(h, B, 2, now=0.0, rand=1.0)  # B next at 0 + 1.0
    assert h.due_probes(0.5) == [A]
    assert h.due_probes(0.99) == []
    assert h.due_probes(1.0) == [B]


def test_claim_probe_is_exclusive() -> None:
    h = health()
    h.eject(A, now=0.0, rand=0.5, reason="x")
    assert h.claim_probe(A) is True
    assert h.claim_probe(A) is False
    assert h.due_probes(100.0) == []  # the background prober does not take it either
    h.probe_finished(A, ok=False, now=1.0, rand=0.5, error="x")
    assert h.claim_probe(A) is True


def test_claim_probe_loses_to_due_probes() -> None:
    h = health()
    h.eject(A, now=0.0, rand=0.5, reason="x")
    assert h.due_probes(0.0) == [A]
    assert h.claim_probe(A) is False


def test_claim_probe_unknown_node() -> None:
    assert health(A).claim_probe(B) is False


def test_next_probe_at_is_the_earliest_unclaimed() -> None:
    h = health()
    assert h.next_probe_at() is None
    h.eject(A, now=10.0, rand=1.0, reason="x")
    h.eject(B, now=3.0, rand=1.0, reason="x")
    assert h.next_probe_at() == 3.0
    assert h.claim_probe(B)
    assert h.next_probe_at() == 10.0
    h.probe_finished(B, ok=False, now=4.0, rand=1.0, error="x")  # next at 4.5
    assert h.next_probe_at() == 4.5
    h.probe_finished(B, ok=True, now=5.0, rand=1.0)
    assert h.next_probe_at() == 10.0


# -- most_promising --------------------------------------------------------------------------


def test_most_promising_prefers_fewest_failures_then_earliest_probe() -> None:
    h = health(A, B, C, D)
    for node in (A, B, C, D):
        h.eject(node, now=0.0, rand=1.0, reason="x")
    fail_probes(h, A, 3, now=0.0, rand=1.0)  # failures 4
    fail_probes(h, B, 1, now=5.0, rand=1.0)  # failures 2, next at 5.5
    fail_probes(h, C, 1, now=2.0, rand=1.0)  # failures 2, next at 2.5
    fail_probes(h, D, 2, now=0.0, rand=1.0)  # failures 3
    assert h.most_promising() == C
    assert h.most_promising([C]) == B
    assert h.most_promising([B, C]) == D
    assert h.most_promising([B, C, D]) == A


def test_most_promising_with_everything_excluded_considers_all() -> None:
    h = health(A, B)
    h.eject(A, now=0.0, rand=1.0, reason="x")
    h.eject(B, now=0.0, rand=1.0, reason="x")
    fail_probes(h, A, 1, now=0.0, rand=1.0)
    assert h.most_promising([A, B]) == B


def test_most_promising_tie_on_failures_earliest_probe_wins() -> None:
    h = health(A, B)
    h.eject(A, now=7.0, rand=0.5, reason="x")
    h.eject(B, now=3.0, rand=0.5, reason="x")
    assert h.most_promising() == B


# -- pick ------------------------------------------------------------------------------------


def test_pick_round_robin_in_order() -> None:
    h = health()
    assert [h.pick() for _ in range(7)] == [A, B, C, A, B, C, A]


@pytest.mark.parametrize("n_nodes", [1, 2, 3, 4, 7])
def test_pick_counts_are_equal_without_exclude(n_nodes: int) -> None:
    nodes = [NodeConfig("http", "h", 9200 + i) for i in range(n_nodes)]
    h = NodeHealth(nodes, CONFIG)
    counts = Counter(h.pick() for _ in range(n_nodes * 250))
    assert counts == dict.fromkeys(nodes, 250)


@pytest.mark.parametrize("n_excluded", [1, 2])
def test_pick_counts_are_equal_with_exclude(n_excluded: int) -> None:
    nodes = [NodeConfig("http", "h", 9200 + i) for i in range(5)]
    h = NodeHealth(nodes, CONFIG)
    excluded = nodes[1 : 1 + n_excluded]
    eligible = [n for n in nodes if n not in excluded]
    counts = Counter(h.pick(excluded) for _ in range(len(eligible) * 300))
    assert counts == dict.fromkeys(eligible, 300)


def test_pick_skips_ejected_and_counts_stay_equal() -> None:
    h = health(A, B, C, D)
    h.eject(B, now=0.0, rand=0.5, reason="x")
    counts = Counter(h.pick() for _ in range(900))
    assert counts == {A: 300, C: 300, D: 300}
    counts = Counter(h.pick([A]) for _ in range(900))
    assert counts == {C: 450, D: 450}


def test_pick_excludes_even_a_prefix_of_the_order() -> None:
    h = health()
    for _ in range(10):
        assert h.pick([A, B]) == C


def test_pick_falls_back_to_excluded_live_nodes() -> None:
    """``exclude`` is a preference: with no other live node, a tried one is better than none."""
    h = health()
    h.eject(C, now=0.0, rand=0.5, reason="x")
    counts = Counter(h.pick([A, B]) for _ in range(100))
    assert counts == {A: 50, B: 50}


def test_pick_returns_none_when_all_ejected() -> None:
    h = health()
    for node in (A, B, C):
        h.eject(node, now=0.0, rand=0.5, reason="x")
    assert h.pick() is None
    assert h.pick([A]) is None
    assert h.live_nodes() == []


def test_pick_returns_readmitted_node_again() -> None:
    h = health(A, B)
    h.eject(A, now=0.0, rand=0.5, reason="x")
    assert {h.pick() for _ in range(4)} == {B}
    h.claim_probe(A)
    h.probe_finished(A, ok=True, now=1.0, rand=0.5)
    assert Counter(h.pick() for _ in range(4)) == {A: 2, B: 2}


def test_pick_fair_when_first_attempts_and_retries_interleave() -> None:
    """The docstring's promise, "skipping one does not double the load of its neighbour", in
    the simplest sequential workload: A is alive but answers 429 to everything, and every call
    that lands on A retries once elsewhere (``pick(exclude=[A])``)."""
    h = health()
    attempts: Counter[NodeConfig] = Counter()
    for _ in range(3000):
        node = h.pick()
        assert node is not None
        attempts[node] += 1
        if node == A:
            retry = h.pick([A])
            assert retry is not None
            attempts[retry] += 1
    assert attempts[B] == pytest.approx(attempts[C], rel=0.1)


# -- hedge losses ----------------------------------------------------------------------------


def test_hedge_losses_eject_after_threshold_in_a_row() -> None:
    h = health()
    for _ in range(HEDGE_LOSSES_TO_EJECT - 1):
        assert h.hedge_lost(A, now=1.0, rand=0.5) is False
        assert h.states[A].alive
    assert h.hedge_lost(A, now=2.0, rand=0.5) is True
    state = h.states[A]
    assert not state.alive
    assert state.hedge_losses == 0
    assert (state.failures, state.ejections) == (1, 1)
    assert "overtaken by 3 hedges" in (state.last_error or "")
    assert state.next_probe_at == 2.0


def test_hedge_loss_streak_resets_on_success() -> None:
    h = health()
    for _ in range(10):
        for _ in range(HEDGE_LOSSES_TO_EJECT - 1):
            assert h.hedge_lost(A, now=1.0, rand=0.5) is False
        h.record_success(A)
        assert h.states[A].hedge_losses == 0
    assert h.states[A].alive


def test_hedge_lost_on_ejected_or_unknown_node() -> None:
    h = health(A, B)
    h.eject(A, now=0.0, rand=0.5, reason="x")
    for _ in range(5):
        assert h.hedge_lost(A, now=1.0, rand=0.5) is False
    assert h.states[A].hedge_losses == 0
    assert h.states[A].failures == 1
    assert h.hedge_lost(C, now=1.0, rand=0.5) is False


def test_record_success_resets_failures_of_alive_node_and_ignores_unknown() -> None:
    h = health(A, B)
    h.states[A].failures = 3  # e.g. left by an earlier caller's bookkeeping
    h.states[A].hedge_losses = 2
    h.record_success(A)
    assert (h.states[A].failures, h.states[A].hedge_losses) == (0, 0)
    h.record_success(C)  # no error
    assert C not in h.states


# -- replace_nodes ---------------------------------------------------------------------------


def test_replace_nodes_keeps_state_of_known_nodes() -> None:
    h = health(A, B, C)
    h.eject(B, now=0.0, rand=0.5, reason="refused")
    h.states[A].in_flight = 2
    b_state = h.states[B]
    added, removed = h.replace_nodes([B, D, A, D])
    assert (added, removed) == ([D], [C])
    assert h.nodes == (B, D, A)
    assert h.states[B] is b_state and not b_state.alive and b_state.failures == 1
    assert h.states[A].in_flight == 2
    assert h.states[D].alive and not h.states[D].seed
    assert C not in h.states
    assert h.live_nodes() == [D, A]


def test_replace_nodes_readding_a_seed_marks_it_seed_with_fresh_state() -> None:
    h = health(A, B)
    h.eject(A, now=0.0, rand=0.5, reason="x")
    h.replace_nodes([B, C])
    assert A not in h.states
    added, removed = h.replace_nodes([A, B, C])
    assert (added, removed) == ([A], [])
    assert h.states[A].seed and h.states[A].alive and h.states[A].failures == 0
    assert h.seeds == (A, B)


def test_replace_nodes_refuses_an_empty_set() -> None:
    h = health(A, B)
    with pytest.raises(ValueError, match="empty"):
        h.replace_nodes([])
    with pytest.raises(ValueError):
        h.replace_nodes(iter(()))
    assert h.nodes == (A, B)
    assert set(h.states) == {A, B}


def test_replace_nodes_unchanged_set() -> None:
    h = health(A, B)
    assert h.replace_nodes((A, B)) == ([], [])
    assert h.nodes == (A, B)


def test_pick_after_replace_rotates_over_the_new_set() -> None:
    h = health(A, B)
    h.replace_nodes([C, D, A])
    assert Counter(h.pick() for _ in range(300)) == {C: 100, D: 100, A: 100}


def test_removed_node_is_ignored_everywhere() -> None:
    h = health(A, B)
    h.replace_nodes([B])
    assert h.eject(A, now=0.0, rand=0.5, reason="x") is False
    assert h.hedge_lost(A, now=0.0, rand=0.5) is False
    assert h.claim_probe(A) is False
    assert h.probe_finished(A, ok=True, now=0.0, rand=0.5) is False
    h.record_success(A)
    assert list(h.states) == [B]


# -- snapshot --------------------------------------------------------------------------------

SNAPSHOT_KEYS = {
    "node",
    "state",
    "consecutive_failures",
    "ejections",
    "in_flight",
    "probes",
    "last_error",
    "last_probe_ago",
    "last_probe_ok",
    "next_probe_in",
    "seed",
}


def test_snapshot_of_fresh_node() -> None:
    rows = health(A, B).snapshot(10.0)
    assert [r["node"] for r in rows] == ["http://10.0.0.1:9200", "http://10.0.0.2:9200"]
    assert set(rows[0]) == SNAPSHOT_KEYS
    assert rows[0] == {
        "node": "http://10.0.0.1:9200",
        "state": "alive",
        "consecutive_failures": 0,
        "ejections": 0,
        "in_flight": 0,
        "last_error": None,
        "last_probe_ago": None,
        "last_probe_ok": None,
        "next_probe_in": None,
        "probes": 0,
        "seed": True,
    }


def test_snapshot_through_ejection_probe_and_readmission() -> None:
    h = health(A, B)
    h.eject(A, now=10.0, rand=1.0, reason="connection refused")
    row = h.snapshot(10.0)[0]
    assert row["state"] == "ejected"
    assert (row["consecutive_failures"], row["ejections"]) == (1, 1)
    assert row["last_error"] == "connection refused"
    assert row["next_probe_in"] == 0.0
    assert h.due_probes(10.0) == [A]
    assert h.snapshot(10.0)[0]["state"] == "probing"
    h.probe_finished(A, ok=False, now=11.0, rand=1.0, error="status 503")  # next at 11.5
    row = h.snapshot(11.25)[0]
    assert row["state"] == "ejected"
    assert row["next_probe_in"] == pytest.approx(0.25)
    assert row["last_probe_ago"] == pytest.approx(0.25)
    assert row["last_probe_ok"] is False
    assert row["last_error"] == "status 503"
    assert h.snapshot(20.0)[0]["next_probe_in"] == 0.0  # overdue shows 0, not negative
    h.claim_probe(A)
    h.probe_finished(A, ok=True, now=21.0, rand=1.0)
    row = h.snapshot(24.0)[0]
    assert row["state"] == "alive"
    assert row["next_probe_in"] is None
    assert row["last_probe_ago"] == 3.0
    assert row["last_probe_ok"] is True
    assert row["last_error"] is None
    assert row["ejections"] == 1


def test_snapshot_follows_node_order_and_seed_flags() -> None:
    h = health(A, B)
    h.replace_nodes([C, A])
    h.states[C].in_flight = 4
    rows = h.snapshot(0.0)
    assert [(r["node"], r["seed"], r["in_flight"]) for r in rows] == [
        (C.url, False, 4),
        (A.url, True, 0),
    ]


# -- a randomized walk over the whole state machine ------------------------------------------


def test_random_walk_invariants() -> None:
    """Random ejections, probes, successes and hedge losses keep the books consistent."""
    rng = random.Random(20240601)
    nodes = [NodeConfig("http", "h", 9200 + i) for i in range(4)]
    h = NodeHealth(nodes, CONFIG)
    now = 0.0
    for step in itertools.count():
        if step == 5000:
            break
        now += rng.random()
        node = rng.choice(nodes)
        action = rng.randrange(5)
        state = h.states[node]
        was_alive = state.alive
        if action == 0:
            assert h.eject(node, now=now, rand=rng.random(), reason="x") is was_alive
        elif action == 1:
            for due in h.due_probes(now):
                assert h.states[due].probing and not h.states[due].alive
                ok = rng.random() < 0.3
                assert h.probe_finished(due, ok=ok, now=now, rand=rng.random()) is ok
        elif action == 2:
            h.record_success(node)
            assert state.alive is was_alive
        elif action == 3:
            h.hedge_lost(node, now=now, rand=rng.random())
        else:
            h.pick([node])
        for s in h.states.values():
            assert s.probing <= (not s.alive)
            assert 0 <= s.hedge_losses < HEDGE_LOSSES_TO_EJECT
            if not s.alive:
                assert s.failures >= 1
                assert s.next_probe_at <= now + CONFIG.probe_backoff_cap
        live = h.live_nodes()
        picked = h.pick()
        assert (picked is None) == (not live)
        assert picked is None or picked in live


def test_probes_are_counted_per_node_and_in_all() -> None:
    """Whoever runs a probe (the background prober or a caller), claiming it counts it: the
    numbers ``Client.stats()`` and ``nodes_status()`` show."""
    h = health(A, B)
    h.eject(A, now=0.0, rand=1.0, reason="x")
    h.eject(B, now=0.0, rand=1.0, reason="x")
    assert h.due_probes(0.0) == [A, B]
    h.probe_finished(A, ok=False, now=0.1, rand=1.0)  # next at 0.6
    assert h.claim_due_probe(0.5) is None
    assert h.probing_node() == B
    assert h.next_scheduled_probe() == (A, pytest.approx(0.6))
    assert h.claim_due_probe(0.6) == A
    assert h.claim_due_probe(0.6) is None  # claimed: nobody else runs it
    assert (h.states[A].probes, h.states[B].probes, h.probes_sent) == (2, 1, 3)
    assert [row["probes"] for row in h.snapshot(0.6)] == [2, 1]
