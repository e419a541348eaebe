"""One call across its attempts (``sturdysearch._core.plan``): node choice, ejection, retries,
the budget, probes by callers, the in-flight books, and the events on the way.

The drivers' loop is replayed by hand with explicit ``now`` and ``rand``; no sockets, no
clocks, no sleeps.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from sturdysearch._core.budget import BudgetConfig, RetryBudget
from sturdysearch._core.events import Event, Tracer
from sturdysearch._core.health import (
    DEADLINE_CUTS_TO_EJECT,
    HEDGE_LOSSES_TO_EJECT,
    HealthConfig,
    NodeHealth,
)
from sturdysearch._core.nodes import NodeConfig
from sturdysearch._core.plan import CallPlan, Choice, ejects, hedge_node
from sturdysearch._core.request import RequestSpec
from sturdysearch._core.retry import RetryPolicy
from sturdysearch._core.timeouts import Deadline
from sturdysearch.errors import (
    ApiError,
    AuthenticationError,
    AuthorizationError,
    BadRequestError,
    ConflictError,
    ConnectionError,
    ConnectTimeout,
    DeadlineExceeded,
    MalformedResponseError,
    NoLiveNodesError,
    NotFoundError,
    PayloadTooLargeError,
    ReadTimeout,
    ServerError,
    SturdySearchError,
    TLSError,
    TooManyRequestsError,
)

A, B, C = (NodeConfig("http", f"10.0.0.{i}", 9200) for i in range(1, 4))
MAY_OR_MAY_NOT = "may or may not have been applied"
GET = RequestSpec("GET", "/idx/_search", idempotent=True)
POST = RequestSpec("POST", "/idx/_doc", body=b"{}", idempotent=False)
HEALTH = HealthConfig(probe_timeout=1.0, probe_backoff_base=0.5, probe_backoff_cap=8.0)
RETRY = RetryPolicy(max_attempts=3, backoff_base=0.05, backoff_cap=1.0)
EMPTY = BudgetConfig(ratio=0.0, max_tokens=0.0, initial_tokens=0.0)


@dataclass
class Rig:
    """One client's shared state, plus the events it emitted."""

    health: NodeHealth
    budget: RetryBudget
    tracer: Tracer = field(default_factory=Tracer)
    events: list[Event] = field(default_factory=list)
    retry: RetryPolicy = RETRY

    def __post_init__(self) -> None:
        self.tracer.subscribe(self.events.append)

    def plan(self, spec: RequestSpec = GET, *, now: float = 0.0, budget: float = 30.0) -> CallPlan:
        return CallPlan(
            spec,
            Deadline(now, budget),
            retry=self.retry,
            budget=self.budget,
            health=self.health,
            guard=contextlib.nullcontext(),
            tracer=self.tracer,
        )

    def names(self) -> list[str]:
        return [e.name for e in self.events]

    def named(self, name: str) -> list[dict[str, Any]]:
        return [e.fields for e in self.events if e.name == name]

    def in_flight(self) -> dict[NodeConfig, int]:
        return {n: s.in_flight for n, s in self.health.states.items()}

    def idle(self) -> bool:
        return all(s.in_flight == 0 for s in self.health.states.values())


def rig(
    *nodes: NodeConfig,
    budget: BudgetConfig | None = None,
    retry: RetryPolicy = RETRY,
) -> Rig:
    return Rig(NodeHealth(nodes or (A, B, C), HEALTH), RetryBudget(budget), retry=retry)


def refused() -> ConnectionError:
    return ConnectionError("connection refused", node="n", request_sent=False)


def reset_after_send() -> ConnectionError:
    return ConnectionError("connection reset", node="n", request_sent=True)


def eject_all(r: Rig, *, now: float = 0.0, probe_failures: int = 0) -> None:
    """Eject every node; with ``probe_failures``, also fail that many probes (rand=1)."""
    for node in r.health.nodes:
        r.health.eject(node, now=now, rand=1.0, reason="setup")
        for _ in range(probe_failures):
            assert r.health.claim_probe(node)
            r.health.probe_finished(node, ok=False, now=now, rand=1.0, error="setup")


# -- ejects() ------------------------------------------------------------------------------


EJECTING: list[Callable[[], SturdySearchError]] = [
    refused,
    reset_after_send,
    lambda: ConnectTimeout("connect timed out", node="n"),
    lambda: ReadTimeout("no data", node="n"),
    lambda: MalformedResponseError("truncated", node="n", status=200),
    lambda: ServerError(502),
    lambda: ServerError(503),
    lambda: ServerError(504),
    lambda: ApiError(503),
]
NOT_EJECTING: list[Callable[[], SturdySearchError]] = [
    lambda: TooManyRequestsError(429),
    lambda: ServerError(500),
    lambda: ServerError(501),
    lambda: BadRequestError(400),
    lambda: AuthenticationError(401),
    lambda: AuthorizationError(403),
    lambda: NotFoundError(404),
    lambda: ApiError(408),
    lambda: ConflictError(409),
    lambda: PayloadTooLargeError(413),
    lambda: TLSError("certificate verify failed", node="n"),
    lambda: DeadlineExceeded("deadline", node="n", request_sent=False),
    lambda: DeadlineExceeded("deadline", node="n", request_sent=True),
    lambda: NoLiveNodesError("none"),
]


def _ids(makers: list[Callable[[], SturdySearchError]]) -> list[str]:
    out = []
    for make in makers:
        exc = make()
        status = getattr(exc, "status", None)
        out.append(f"{type(exc).__name__}-{status}" if status else type(exc).__name__)
    return out


@pytest.mark.parametrize("make", EJECTING, ids=_ids(EJECTING))
def test_ejects_true(make: Callable[[], SturdySearchError]) -> None:
    assert ejects(make()) is True


@pytest.mark.parametrize("make", NOT_EJECTING, ids=_ids(NOT_EJECTING))
def test_ejects_false(make: Callable[[], SturdySearchError]) -> None:
    assert ejects(make()) is False


@pytest.mark.parametrize("make", EJECTING, ids=_ids(EJECTING))
def test_failed_ejects_the_node(make: Callable[[], SturdySearchError]) -> None:
    r = rig()
    plan = r.plan()
    node = plan.choose(0.0).node
    with contextlib.suppress(SturdySearchError):
        plan.failed(node, make(), 1.0, 0.5)
    state = r.health.states[node]
    assert not state.alive
    assert state.ejections == 1
    assert node not in r.health.live_nodes()
    live = len(r.health.live_nodes())
    assert live == len(r.health.nodes) - 1
    assert r.named("node.ejected") == [
        {"node": node.url, "reason": type(make()).__name__, "live": live}
    ]
    assert r.idle()


@pytest.mark.parametrize("make", [lambda: ServerError(503), lambda: TooManyRequestsError(429)])
@pytest.mark.parametrize("late", [0.0, 5.0])
def test_server_answer_at_the_deadline_keeps_its_type(
    make: Callable[[], SturdySearchError], late: float
) -> None:
    """A retryable status with no time left for the retry is still the server's answer."""
    r = rig()
    plan = r.plan(GET, now=0.0, budget=30.0)
    exc = make()
    with pytest.raises(type(exc)) as info:
        plan.failed(plan.choose(0.0).node, exc, 30.0 + late, 0.5)
    assert info.value is exc
    assert r.idle()


@pytest.mark.parametrize("make", NOT_EJECTING, ids=_ids(NOT_EJECTING))
@pytest.mark.parametrize("spec", [GET, POST], ids=["idempotent", "not-idempotent"])
def test_failed_keeps_the_node(make: Callable[[], SturdySearchError], spec: RequestSpec) -> None:
    r = rig()
    plan = r.plan(spec)
    node = plan.choose(0.0).node
    with contextlib.suppress(SturdySearchError):
        plan.failed(node, make(), 1.0, 0.5)
    assert r.health.states[node].alive
    assert r.health.states[node].failures == 0
    assert "node.ejected" not in r.names()
    assert r.idle()


# -- choose ----------------------------------------------------------------------------------


def test_choose_picks_live_nodes_and_counts_attempts() -> None:
    r = rig()
    plan = r.plan()
    choice = plan.choose(0.0)
    assert choice == Choice(choice.node)
    assert not choice.probe_first and not choice.await_probe
    assert plan.attempt == 1
    assert r.health.states[choice.node].in_flight == 1
    plan.succeeded(choice.node)
    assert r.idle()


def test_choose_never_picks_an_ejected_node() -> None:
    r = rig()
    r.health.eject(B, now=0.0, rand=0.5, reason="x")
    for _ in range(30):
        plan = r.plan()
        node = plan.choose(0.0).node
        assert node != B
        plan.succeeded(node)


def test_retry_excludes_tried_nodes() -> None:
    """A 429 does not eject, but the retry still goes elsewhere."""
    r = rig()
    plan = r.plan()
    tried = []
    for attempt in range(1, 4):
        node = plan.choose(0.0).node
        assert node not in tried
        tried.append(node)
        if attempt < 3:
            delay = plan.failed(node, TooManyRequestsError(429), 0.0, 0.0)
            assert delay == 0.0
    assert sorted(tried, key=lambda n: n.host) == [A, B, C]
    assert plan.tried == tried[:2]
    assert all(s.alive for s in r.health.states.values())


def test_retry_goes_back_to_a_tried_node_when_it_is_the_only_live_one() -> None:
    r = rig(A, B)
    r.health.eject(B, now=0.0, rand=0.5, reason="x")
    plan = r.plan()
    assert plan.choose(0.0).node == A
    plan.failed(A, TooManyRequestsError(429), 0.0, 0.0)
    assert plan.choose(0.0).node == A
    assert plan.attempt == 2


def test_retries_after_ejections_spread_over_the_rest() -> None:
    r = rig()
    plan = r.plan()
    first = plan.choose(0.0).node
    plan.failed(first, refused(), 0.0, 0.0)
    second = plan.choose(0.0).node
    assert second != first
    plan.failed(second, refused(), 0.0, 0.0)
    third = plan.choose(0.0).node
    assert third not in (first, second)
    plan.succeeded(third)
    assert r.idle()
    assert r.health.live_nodes() == [third]


# -- retries and the budget ------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [refused, lambda: ConnectTimeout("connect timed out", node="n")],
    ids=["refused", "connect-timeout"],
)
@pytest.mark.parametrize("spec", [GET, POST], ids=["idempotent", "not-idempotent"])
def test_not_sent_failures_draw_on_the_budget(
    make: Callable[[], SturdySearchError], spec: RequestSpec
) -> None:
    """Nothing reached a server, but in an outage these retries are all the traffic there is:
    uncharged, they would side-step the budget exactly when it matters."""
    r = rig(budget=BudgetConfig(ratio=0.0, max_tokens=5.0, initial_tokens=2.0))
    plan = r.plan(spec)
    for _ in range(2):
        node = plan.choose(0.0).node
        delay = plan.failed(node, make(), 0.0, 0.5)
        assert 0.0 <= delay <= RETRY.backoff_cap
    assert (r.budget.granted, r.budget.denied, r.budget.balance) == (2, 0, 0.0)
    assert len(r.named("request.retry")) == 2


@pytest.mark.parametrize(
    "make",
    [refused, lambda: ConnectTimeout("connect timed out", node="n")],
    ids=["refused", "connect-timeout"],
)
def test_not_sent_failures_with_an_empty_budget_fail_fast(
    make: Callable[[], SturdySearchError],
) -> None:
    r = rig(budget=EMPTY)
    plan = r.plan()
    node = plan.choose(0.0).node
    exc = make()
    with pytest.raises(SturdySearchError) as info:
        plan.failed(node, exc, 0.0, 0.5)
    assert info.value is exc
    assert (r.budget.granted, r.budget.denied) == (0, 1)
    assert r.named("retry.budget_exhausted") == [{"node": node.url, "path": GET.path, "denied": 1}]
    assert "request.retry" not in r.names()


SENT_RETRYABLE: list[Callable[[], SturdySearchError]] = [
    reset_after_send,
    lambda: ReadTimeout("no data", node="n"),
    lambda: MalformedResponseError("truncated", node="n"),
    lambda: TooManyRequestsError(429),
    lambda: ServerError(502),
    lambda: ServerError(503),
    lambda: ServerError(504),
    lambda: ApiError(408),
]


@pytest.mark.parametrize("make", SENT_RETRYABLE, ids=_ids(SENT_RETRYABLE))
def test_sent_failures_withdraw_from_the_budget(make: Callable[[], SturdySearchError]) -> None:
    r = rig(budget=BudgetConfig(ratio=0.0, max_tokens=5.0, initial_tokens=2.0))
    plan = r.plan()
    node = plan.choose(0.0).node
    plan.failed(node, make(), 0.0, 0.5)
    assert (r.budget.granted, r.budget.denied, r.budget.balance) == (1, 0, 1.0)


@pytest.mark.parametrize("make", SENT_RETRYABLE, ids=_ids(SENT_RETRYABLE))
def test_empty_budget_fails_fast_with_the_original_error(
    make: Callable[[], SturdySearchError],
) -> None:
    r = rig(budget=EMPTY)
    plan = r.plan()
    node = plan.choose(0.0).node
    exc = make()
    with pytest.raises(SturdySearchError) as info:
        plan.failed(node, exc, 0.0, 0.5)
    assert info.value is exc
    assert r.budget.denied == 1
    assert r.named("retry.budget_exhausted") == [{"node": node.url, "path": GET.path, "denied": 1}]
    assert "request.retry" not in r.names()
    assert plan.history == []
    assert r.idle()


def test_budget_exhaustion_on_a_later_attempt_keeps_the_history() -> None:
    r = rig(budget=BudgetConfig(ratio=0.0, max_tokens=1.0, initial_tokens=1.0))
    plan = r.plan()
    first_exc, second_exc = ReadTimeout("slow 1", node="a"), ReadTimeout("slow 2", node="b")
    plan.failed(plan.choose(0.0).node, first_exc, 0.0, 0.5)
    with pytest.raises(ReadTimeout) as info:
        plan.failed(plan.choose(0.0).node, second_exc, 0.0, 0.5)
    assert info.value is second_exc
    assert info.value.errors == (first_exc,)
    assert (r.budget.granted, r.budget.denied) == (1, 1)


def test_each_call_deposits_once() -> None:
    r = rig(budget=BudgetConfig(ratio=0.5, max_tokens=10.0, initial_tokens=2.0))
    plan = r.plan()
    assert r.budget.balance == 2.5
    for _ in range(2):  # attempts do not deposit; each retry withdraws
        plan.failed(plan.choose(0.0).node, refused(), 0.0, 0.5)
    assert r.budget.balance == 0.5
    r.plan()
    assert r.budget.balance == 1.0


def test_retry_delay_is_the_policy_backoff() -> None:
    r = rig()
    plan = r.plan()
    assert plan.failed(plan.choose(0.0).node, refused(), 0.0, 1.0) == pytest.approx(0.05)
    assert plan.failed(plan.choose(0.0).node, refused(), 0.0, 1.0) == pytest.approx(0.1)


def test_retry_after_is_honoured() -> None:
    r = rig()
    plan = r.plan()
    exc = TooManyRequestsError(429, headers={"retry-after": "2"})
    assert plan.failed(plan.choose(0.0).node, exc, 0.0, 0.0) == 2.0


def test_spec_retry_policy_overrides_the_clients() -> None:
    r = rig()
    plan = r.plan(RequestSpec("GET", "/", idempotent=True, retry=RetryPolicy(max_attempts=1)))
    exc = refused()
    with pytest.raises(ConnectionError) as info:
        plan.failed(plan.choose(0.0).node, exc, 0.0, 0.5)
    assert info.value is exc


# -- the error the caller sees ---------------------------------------------------------------


def test_attempts_exhausted_raises_the_last_error_with_history() -> None:
    r = rig()
    plan = r.plan()
    errs = [refused(), refused(), refused()]
    for exc in errs[:2]:
        plan.failed(plan.choose(0.0).node, exc, 0.0, 0.5)
    with pytest.raises(ConnectionError) as info:
        plan.failed(plan.choose(0.0).node, errs[2], 0.0, 0.5)
    assert info.value is errs[2]
    assert info.value.errors == tuple(errs[:2])
    assert plan.attempt == 3
    assert r.idle()
    assert r.health.live_nodes() == []


@pytest.mark.parametrize(
    "make",
    [
        lambda: BadRequestError(400),
        lambda: NotFoundError(404),
        lambda: ConflictError(409),
        lambda: ServerError(500),
        lambda: TLSError("bad certificate", node="n"),
    ],
    ids=["400", "404", "409", "500", "tls"],
)
def test_final_failures_are_raised_at_once(make: Callable[[], SturdySearchError]) -> None:
    r = rig()
    plan = r.plan()
    exc = make()
    with pytest.raises(SturdySearchError) as info:
        plan.failed(plan.choose(0.0).node, exc, 0.0, 0.5)
    assert info.value is exc
    assert "request.retry" not in r.names()
    assert r.budget.granted == r.budget.denied == 0
    assert r.idle()


def test_no_node_left_on_a_retry_raises_the_last_real_error() -> None:
    """A refusal on the only live node, the other one ejected: the retry runs the refused
    node's due probe (the first after an ejection is immediate), and when no further probe is
    due within the deadline the caller sees the refusal (not ``NoLiveNodesError``), with the
    reason appended."""
    r = rig(A, B)
    r.health.eject(B, now=0.0, rand=1.0, reason="x")
    r.health.claim_probe(B)
    r.health.probe_finished(B, ok=False, now=0.0, rand=1.0, error="x")  # next probe at 0.5
    plan = r.plan()
    assert plan.choose(0.1).node == A
    exc = refused()
    plan.failed(A, exc, 0.1, 0.0)
    choice = plan.choose(0.1)
    assert choice == Choice(A, probe_first=True)  # A's schedule says now; B's says 0.5
    plan.probe_done(A, ok=False, now=0.15, rand=1.0, error="refused again")
    with pytest.raises(ConnectionError) as info:
        plan.choose(0.15)
    assert info.value is exc
    assert not isinstance(info.value, NoLiveNodesError)
    assert (
        "no other node is live (every node is ejected and the probe of http://10.0.0.1:9200 "
        "failed: refused again; the next probe is due in 0.35 s)"
    ) in str(info.value)
    assert info.value.errors == ()
    assert r.idle()


def test_no_node_left_after_several_failures_attaches_the_earlier_ones() -> None:
    r = rig(A, B)
    plan = r.plan(budget=0.5)
    first, second = ServerError(503), refused()
    assert plan.failed(plan.choose(0.0).node, first, 0.0, 0.0) == 0.0
    assert plan.failed(plan.choose(0.0).node, second, 0.0, 0.0) == 0.0
    for _ in range(2):  # both nodes' first probes are due at once
        choice = plan.choose(0.1)
        assert choice.probe_first
        plan.probe_done(choice.node, ok=False, now=0.1, rand=1.0, error="refused")
    with pytest.raises(ConnectionError) as info:
        plan.choose(0.1)  # next probes at 0.6, after the deadline
    assert info.value is second
    assert info.value.errors == (first,)


def test_no_live_nodes_error_only_without_any_attempt() -> None:
    r = rig()
    eject_all(r, probe_failures=1)  # next probes at 0.5
    plan = r.plan(budget=0.3)
    with pytest.raises(NoLiveNodesError, match=r"the next probe \(.*\) is due in 0\.4 s") as info:
        plan.choose(0.1)
    assert info.value.next_probe_in == pytest.approx(0.4)
    assert plan.attempt == 0
    assert not any(s.probing for s in r.health.states.values())
    assert r.idle()


def test_no_time_left_to_probe_raises_no_live_nodes_at_once() -> None:
    r = rig()
    eject_all(r, probe_failures=1)
    plan = r.plan(now=0.0, budget=1.0)
    with pytest.raises(NoLiveNodesError, match="leaves no time to probe"):
        plan.choose(0.995)
    assert plan.attempt == 0
    assert not any(s.probing for s in r.health.states.values())


def test_api_error_as_last_error_is_raised_unchanged_when_no_node_is_left() -> None:
    r = rig(A)
    plan = r.plan(budget=0.5)
    exc = ServerError(503, reason="unavailable")
    plan.failed(plan.choose(0.0).node, exc, 0.0, 0.0)
    choice = plan.choose(0.1)
    assert choice.probe_first and choice.node == A
    plan.probe_done(A, ok=False, now=0.1, rand=1.0, error="status 503")
    with pytest.raises(ServerError) as info:
        plan.choose(0.1)
    assert info.value is exc
    assert str(info.value) == "503 error: unavailable"


# -- non-idempotent requests -----------------------------------------------------------------

MAYBE_APPLIED: list[Callable[[], SturdySearchError]] = [
    reset_after_send,
    lambda: ReadTimeout("no data", node="n"),
    lambda: MalformedResponseError("truncated", node="n"),
    lambda: DeadlineExceeded("deadline", node="n", request_sent=True),
]


@pytest.mark.parametrize("make", MAYBE_APPLIED, ids=_ids(MAYBE_APPLIED))
def test_non_idempotent_sent_failures_are_never_retried(
    make: Callable[[], SturdySearchError],
) -> None:
    r = rig()
    plan = r.plan(POST)
    exc = make()
    with pytest.raises(SturdySearchError) as info:
        plan.failed(plan.choose(0.0).node, exc, 0.0, 0.5)
    assert info.value is exc
    assert MAY_OR_MAY_NOT in str(info.value)
    assert "request.retry" not in r.names()
    assert r.budget.granted == r.budget.denied == 0
    assert r.idle()


@pytest.mark.parametrize("make", MAYBE_APPLIED, ids=_ids(MAYBE_APPLIED))
def test_idempotent_errors_carry_no_warning(make: Callable[[], SturdySearchError]) -> None:
    r = rig(budget=EMPTY)
    plan = r.plan(GET)
    with pytest.raises(SturdySearchError) as info:
        plan.failed(plan.choose(0.0).node, make(), 0.0, 0.5)
    assert MAY_OR_MAY_NOT not in str(info.value)


def test_non_idempotent_not_sent_is_retried_and_final_error_has_no_warning() -> None:
    r = rig()
    plan = r.plan(POST)
    plan.failed(plan.choose(0.0).node, refused(), 0.0, 0.5)
    plan.failed(plan.choose(0.0).node, refused(), 0.0, 0.5)
    with pytest.raises(ConnectionError) as info:
        plan.failed(plan.choose(0.0).node, refused(), 0.0, 0.5)
    assert MAY_OR_MAY_NOT not in str(info.value)
    assert len(info.value.errors) == 2


@pytest.mark.parametrize("status", [502, 504])
def test_non_idempotent_gateway_errors_are_not_retried(status: int) -> None:
    r = rig()
    plan = r.plan(POST)
    exc = ServerError(status)
    with pytest.raises(ServerError) as info:
        plan.failed(plan.choose(0.0).node, exc, 0.0, 0.5)
    assert info.value is exc


@pytest.mark.parametrize("status", [429, 503])
def test_non_idempotent_rejected_before_work_is_retried(status: int) -> None:
    r = rig()
    plan = r.plan(POST)
    exc = TooManyRequestsError(status) if status == 429 else ServerError(status)
    assert plan.failed(plan.choose(0.0).node, exc, 0.0, 0.0) == 0.0
    assert r.budget.granted == 1


# -- the deadline ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "sent"),
    [
        (refused, False),
        (lambda: ConnectTimeout("connect timed out", node="n"), False),
        (reset_after_send, True),
        (lambda: ReadTimeout("no data", node="n"), True),
    ],
    ids=["refused", "connect-timeout", "reset", "read-timeout"],
)
@pytest.mark.parametrize("late", [0.0, 5.0])
def test_deadline_passed_raises_deadline_exceeded_with_request_sent(
    make: Callable[[], SturdySearchError], sent: bool, late: float
) -> None:
    r = rig()
    plan = r.plan(GET, now=0.0, budget=30.0)
    exc = make()
    with pytest.raises(DeadlineExceeded) as info:
        plan.failed(plan.choose(0.0).node, exc, 30.0 + late, 0.5)
    err = info.value
    assert err.request_sent is sent
    assert err.__cause__ is exc
    assert err.errors == (exc,)
    assert "deadline of 30 s passed after 1 attempt(s)" in str(err)
    assert MAY_OR_MAY_NOT not in str(err)
    assert r.idle()


def test_deadline_passed_on_non_idempotent_sent_request_warns() -> None:
    r = rig()
    plan = r.plan(POST, budget=10.0)
    with pytest.raises(DeadlineExceeded) as info:
        plan.failed(plan.choose(0.0).node, ReadTimeout("no data", node="n"), 10.0, 0.5)
    assert info.value.request_sent is True
    assert MAY_OR_MAY_NOT in str(info.value)


@pytest.mark.parametrize("sent", [False, True])
def test_deadline_exceeded_from_the_driver_passes_through(sent: bool) -> None:
    r = rig()
    plan = r.plan()
    earlier = refused()
    plan.failed(plan.choose(0.0).node, earlier, 0.0, 0.5)
    exc = DeadlineExceeded("the call's deadline passed", node="n", request_sent=sent)
    with pytest.raises(DeadlineExceeded) as info:
        plan.failed(plan.choose(0.0).node, exc, 30.0, 0.5)
    assert info.value is exc
    assert info.value.request_sent is sent
    assert info.value.errors == (earlier,)
    assert r.idle()


def test_no_time_for_the_backoff_raises_the_original_error() -> None:
    r = rig()
    plan = r.plan(budget=1.0)
    exc = refused()
    with pytest.raises(ConnectionError) as info:
        # backoff at rand=1 is 0.05 s; only 0.01 s left
        plan.failed(plan.choose(0.0).node, exc, 0.99, 1.0)
    assert info.value is exc


@pytest.mark.parametrize(
    "make",
    [lambda: NotFoundError(404), lambda: ConflictError(409), lambda: BadRequestError(400)],
    ids=["404", "409", "400"],
)
def test_final_answer_at_the_deadline_is_not_replaced(
    make: Callable[[], SturdySearchError],
) -> None:
    r = rig()
    plan = r.plan(budget=30.0)
    exc = make()
    with pytest.raises(SturdySearchError) as info:
        plan.failed(plan.choose(0.0).node, exc, 30.0, 0.5)
    assert info.value is exc


# -- probes run by callers -------------------------------------------------------------------


def test_all_ejected_and_due_the_call_probes_the_most_promising() -> None:
    r = rig()
    eject_all(r, now=0.0)
    r.health.claim_probe(A)
    r.health.probe_finished(A, ok=False, now=0.0, rand=0.0, error="x")  # A: 2 failures
    plan = r.plan()
    choice = plan.choose(0.0)
    assert choice == Choice(B, probe_first=True)
    assert r.health.states[B].probing
    assert plan.attempt == 0  # a probe is not an attempt of the call
    assert (r.health.states[B].probes, r.health.probes_sent) == (1, 2)
    assert r.idle()  # nothing in flight until the probe says so


def test_caller_probe_success_readmits_and_counts_in_flight() -> None:
    r = rig()
    eject_all(r)
    plan = r.plan()
    node = plan.choose(0.0).node
    plan.probe_done(node, ok=True, now=0.2, rand=0.5, error=None)
    state = r.health.states[node]
    assert state.alive and not state.probing and state.in_flight == 0
    assert r.named("node.probe") == [
        {"node": node.url, "ok": True, "by": "caller", "error": None, "probes": 1}
    ]
    assert r.named("node.readmitted") == [{"node": node.url}]
    assert plan.choose(0.2) == Choice(node)
    assert state.in_flight == 1 and plan.attempt == 1
    plan.succeeded(node)
    assert r.idle()


def test_caller_probe_failure_reschedules_and_ends_the_call() -> None:
    """A call waits for the next probe, not for the outage to end: once a probe it ran has
    failed it fails, saying when the next one is due."""
    r = rig(A)
    eject_all(r)
    plan = r.plan()
    assert plan.choose(0.0) == Choice(A, probe_first=True)
    plan.probe_done(A, ok=False, now=0.2, rand=1.0, error="connection refused")
    state = r.health.states[A]
    assert not state.alive and not state.probing
    assert state.failures == 2
    assert state.next_probe_at == pytest.approx(0.7)
    assert r.named("node.probe") == [
        {"node": A.url, "ok": False, "by": "caller", "error": "connection refused", "probes": 1}
    ]
    assert "node.readmitted" not in r.names()
    with pytest.raises(NoLiveNodesError, match=r"probe of .* failed: connection refused; the next"):
        plan.choose(0.2)
    assert r.idle()


def test_caller_probe_failure_on_a_retry_raises_the_last_real_error() -> None:
    r = rig(A)
    plan = r.plan(budget=0.5)
    exc = ReadTimeout("no data", node="a")
    plan.failed(plan.choose(0.0).node, exc, 0.0, 0.0)
    choice = plan.choose(0.0)
    assert choice == Choice(A, probe_first=True)
    plan.probe_done(A, ok=False, now=0.1, rand=1.0, error="refused")
    with pytest.raises(ReadTimeout) as info:
        plan.choose(0.1)
    assert info.value is exc
    assert "no other node is live (every node is ejected and the probe of http://10.0.0.1" in str(
        exc
    )


def test_callers_follow_the_shared_schedule_instead_of_probing() -> None:
    """Every node is ejected and no probe is due: no call probes on its own. Calls with time
    wait for the scheduled probe, the others fail at once saying when it is due; at that
    time one call runs it and the rest wait for its outcome: one probe for all of them."""
    r = rig(A)
    eject_all(r, now=0.0, probe_failures=2)  # next probe at 1.0
    sent = r.health.probes_sent
    patient = [r.plan(now=0.0) for _ in range(5)]
    for plan in patient:
        assert plan.choose(0.0) == Choice(A, await_probe=True, until=1.0)
    hurried = r.plan(now=0.0, budget=0.5)
    with pytest.raises(NoLiveNodesError, match=r"due in 1 s, after this call's deadline") as info:
        hurried.choose(0.0)
    assert info.value.next_probe_in == pytest.approx(1.0)
    assert r.health.probes_sent == sent
    assert patient[0].choose(1.0) == Choice(A, probe_first=True)
    for plan in patient[1:]:
        assert plan.choose(1.0) == Choice(A, await_probe=True)
    assert r.health.probes_sent == sent + 1
    patient[0].probe_done(A, ok=True, now=1.1, rand=0.5, error=None)
    for plan in patient:
        assert plan.choose(1.1) == Choice(A)
        plan.succeeded(A)
    assert r.idle()


def test_no_probe_without_time_left() -> None:
    r = rig()
    eject_all(r)
    plan = r.plan(now=0.0, budget=1.0)
    with pytest.raises(NoLiveNodesError, match="leaves no time to probe"):
        plan.choose(0.995)  # 5 ms left: not enough for a probe
    assert not any(s.probing for s in r.health.states.values())


def test_await_a_probe_someone_else_runs_then_use_the_node() -> None:
    r = rig()
    eject_all(r)
    assert r.health.due_probes(0.0) == [A, B, C]  # the background prober has them all
    plan = r.plan()
    choice = plan.choose(0.0)
    assert choice.await_probe and not choice.probe_first
    assert plan.attempt == 0
    assert r.idle()
    r.health.probe_finished(choice.node, ok=True, now=0.1, rand=0.5)
    again = plan.choose(0.1)
    assert again == Choice(choice.node)
    assert plan.attempt == 1
    plan.succeeded(again.node)
    assert r.idle()


def test_awaited_probe_failed_ends_the_call() -> None:
    r = rig(A)
    eject_all(r)
    r.health.due_probes(0.0)
    plan = r.plan()
    assert plan.choose(0.0) == Choice(A, await_probe=True)
    r.health.probe_finished(A, ok=False, now=0.1, rand=1.0, error="x")  # next at 0.6
    with pytest.raises(
        NoLiveNodesError, match=r"the probe failed; the next probe is due in 0\.5 s"
    ):
        plan.choose(0.1)


def test_a_call_waits_for_the_scheduled_probe_then_uses_the_node() -> None:
    r = rig(A)
    r.health.eject(A, now=0.0, rand=0.5, reason="x")
    r.health.due_probes(0.0)
    r.health.probe_finished(A, ok=False, now=0.1, rand=0.0, error="x")  # next at 0.35
    plan = r.plan()
    assert plan.choose(0.1) == Choice(A, await_probe=True, until=pytest.approx(0.35))
    assert plan.choose(0.35) == Choice(A, probe_first=True)
    plan.probe_done(A, ok=True, now=0.4, rand=0.5, error=None)
    assert plan.choose(0.4) == Choice(A)
    assert plan.attempt == 1
    plan.succeeded(A)
    assert r.idle()


def test_a_probe_that_readmitted_a_node_does_not_count_against_the_call() -> None:
    """One node: the call waits for the background probe, which re-admits the node; the retry
    there fails and ejects it again. The call may wait for the next probe instead of ending
    with "the probe failed" (which was not true)."""
    r = rig(A)
    r.health.eject(A, now=0.0, rand=0.5, reason="x")
    r.health.due_probes(0.0)
    plan = r.plan()
    assert plan.choose(0.0).await_probe
    r.health.probe_finished(A, ok=True, now=0.1, rand=0.5)
    assert plan.choose(0.1) == Choice(A)
    delay = plan.failed(A, ConnectionError("reset", request_sent=False), 0.2, 0.0)
    assert delay >= 0
    assert not r.health.states[A].alive
    r.health.due_probes(10.0)  # the background prober claims the next probe
    again = plan.choose(0.2 + delay)
    assert again == Choice(A, await_probe=True)
    r.health.probe_finished(A, ok=False, now=0.3 + delay, rand=0.5, error="refused")
    with pytest.raises(ConnectionError, match="every node is ejected and the probe failed"):
        plan.choose(0.3 + delay)


def test_no_await_when_the_deadline_has_passed() -> None:
    r = rig()
    eject_all(r)
    r.health.due_probes(0.0)
    plan = r.plan(budget=1.0)
    with pytest.raises(NoLiveNodesError):
        plan.choose(1.0)


# -- the in-flight books ---------------------------------------------------------------------


def test_in_flight_after_success() -> None:
    r = rig()
    plan = r.plan()
    node = plan.choose(0.0).node
    assert r.in_flight()[node] == 1
    plan.succeeded(node)
    assert r.idle()


def test_in_flight_after_failures_and_final_failure() -> None:
    r = rig()
    plan = r.plan()
    for _ in range(2):
        node = plan.choose(0.0).node
        plan.failed(node, TooManyRequestsError(429), 0.0, 0.0)
        assert r.idle()
    with pytest.raises(TooManyRequestsError):
        plan.failed(plan.choose(0.0).node, TooManyRequestsError(429), 0.0, 0.0)
    assert r.idle()


def test_in_flight_after_overtaken() -> None:
    r = rig()
    plan = r.plan()
    node = plan.choose(0.0).node
    hedge = hedge_node(r.health, contextlib.nullcontext(), r.budget, node)
    assert hedge is not None and hedge != node
    assert r.in_flight()[hedge] == 1
    plan.overtaken(node, 1.0, 0.5)
    plan.succeeded(hedge)  # the drivers release the hedge's count this way
    assert r.idle()


def test_in_flight_concurrent_calls() -> None:
    r = rig()
    plans = [r.plan() for _ in range(6)]
    nodes = [p.choose(0.0).node for p in plans]
    assert sum(r.in_flight().values()) == 6
    assert set(r.in_flight().values()) == {2}
    for plan, node in zip(plans, nodes, strict=True):
        plan.succeeded(node)
    assert r.idle()


def test_in_flight_on_a_node_removed_mid_call() -> None:
    r = rig()
    plan = r.plan()
    node = plan.choose(0.0).node
    r.health.replace_nodes([n for n in (A, B, C) if n != node])
    plan.succeeded(node)
    other = r.plan()
    n2 = other.choose(0.0).node
    r.health.replace_nodes([n for n in r.health.nodes if n != n2])
    with contextlib.suppress(SturdySearchError):
        other.failed(n2, refused(), 0.0, 0.5)
    assert r.idle()


@pytest.mark.parametrize("seed", range(8))
def test_in_flight_returns_to_zero_on_every_path(seed: int) -> None:
    """Many calls through random outcomes (success, every failure kind, hedge wins, caller
    probes): after each call, nothing is left counted in flight."""
    rng = random.Random(seed)
    r = rig(budget=BudgetConfig(ratio=0.2, max_tokens=3.0, initial_tokens=3.0))
    outcomes: list[Callable[[], SturdySearchError | None]] = [
        lambda: None,
        lambda: None,
        refused,
        reset_after_send,
        lambda: ReadTimeout("x", node="n"),
        lambda: ServerError(503),
        lambda: TooManyRequestsError(429),
        lambda: NotFoundError(404),
        lambda: TLSError("x", node="n"),
        lambda: DeadlineExceeded("x", node="n", request_sent=True),
    ]
    now = 0.0
    for _ in range(300):
        now += rng.random()
        # The background prober's share of the work.
        for node in r.health.due_probes(now):
            r.health.probe_finished(node, ok=rng.random() < 0.5, now=now, rand=rng.random())
        plan = r.plan(rng.choice([GET, POST]), now=now)
        with contextlib.suppress(SturdySearchError):
            while True:
                choice = plan.choose(now)
                node = choice.node
                if choice.await_probe:
                    if choice.until is not None:
                        now = choice.until  # the driver waits until the scheduled probe
                    else:
                        r.health.probe_finished(node, ok=rng.random() < 0.5, now=now, rand=0.5)
                    continue
                if choice.probe_first:
                    ok = rng.random() < 0.5
                    plan.probe_done(node, ok=ok, now=now, rand=rng.random(), error=None)
                    continue
                outcome = rng.choice(outcomes)()
                if outcome is None:
                    hedge = None
                    if rng.random() < 0.3:
                        hedge = hedge_node(r.health, contextlib.nullcontext(), r.budget, node)
                    if hedge is not None and rng.random() < 0.5:
                        plan.overtaken(node, now, rng.random())
                    else:
                        plan.succeeded(node)
                    if hedge is not None:
                        plan.succeeded(hedge)
                    break
                plan.failed(node, outcome, now, rng.random())
        assert r.idle(), r.in_flight()
        assert not any(s.probing for s in r.health.states.values())


# -- hedges ----------------------------------------------------------------------------------


def test_hedge_node_picks_another_live_node_and_spends_a_token() -> None:
    r = rig(budget=BudgetConfig(ratio=0.0, max_tokens=5.0, initial_tokens=2.0))
    for _ in range(10):
        hedge = hedge_node(r.health, contextlib.nullcontext(), r.budget, A)
        if hedge is None:
            break
        assert hedge != A
        assert r.in_flight()[hedge] == 1
        r.health.states[hedge].in_flight -= 1
    assert r.budget.granted == 2
    assert r.budget.denied == 1


def test_hedge_node_none_when_only_the_primary_is_live() -> None:
    r = rig()
    for node in (B, C):
        r.health.eject(node, now=0.0, rand=0.5, reason="x")
    assert hedge_node(r.health, contextlib.nullcontext(), r.budget, A) is None
    assert (r.budget.granted, r.budget.denied) == (0, 0)
    assert r.idle()


def test_hedge_node_none_when_nothing_is_live() -> None:
    r = rig()
    eject_all(r)
    assert hedge_node(r.health, contextlib.nullcontext(), r.budget, A) is None


def test_hedge_node_none_without_budget() -> None:
    r = rig(budget=EMPTY)
    assert hedge_node(r.health, contextlib.nullcontext(), r.budget, A) is None
    assert r.budget.denied == 1
    assert r.idle()


def test_overtaken_three_times_in_a_row_ejects() -> None:
    r = rig(A, B)
    for i in range(HEDGE_LOSSES_TO_EJECT):
        plan = r.plan()
        node = plan.choose(0.0).node
        if node != A:  # keep A as the primary
            plan.succeeded(node)
            plan = r.plan()
            node = plan.choose(0.0).node
        assert node == A
        plan.overtaken(A, float(i), 0.5)
    assert not r.health.states[A].alive
    live = len(r.health.nodes) - 1
    assert r.named("node.ejected") == [
        {"node": A.url, "reason": "overtaken by hedges", "live": live}
    ]
    assert r.idle()


def test_a_success_between_hedge_losses_resets_the_streak() -> None:
    r = rig(A)
    for _ in range(5):
        for _ in range(HEDGE_LOSSES_TO_EJECT - 1):
            plan = r.plan()
            plan.overtaken(plan.choose(0.0).node, 0.0, 0.5)
        plan = r.plan()
        plan.succeeded(plan.choose(0.0).node)
    assert r.health.states[A].alive
    assert "node.ejected" not in r.names()


# -- events ----------------------------------------------------------------------------------


def test_retry_event_fields() -> None:
    r = rig()
    plan = r.plan()
    node = plan.choose(0.0).node
    delay = plan.failed(node, refused(), 0.0, 1.0)
    assert r.events[0].name == "node.ejected"
    assert r.named("request.retry") == [
        {
            "node": node.url,
            "method": "GET",
            "path": "/idx/_search",
            "attempt": 1,
            "delay": delay,
            "error": "ConnectionError",
        }
    ]


def test_event_sequence_of_an_outage_and_recovery() -> None:
    r = rig(A, B)
    plan = r.plan()
    plan.failed(plan.choose(0.0).node, refused(), 0.0, 0.0)
    plan.failed(plan.choose(0.0).node, ServerError(502), 0.0, 0.0)
    choice = plan.choose(0.0)
    assert choice.probe_first
    plan.probe_done(choice.node, ok=True, now=0.1, rand=0.5, error=None)
    assert plan.choose(0.1) == Choice(choice.node)
    plan.succeeded(choice.node)
    assert r.names() == [
        "node.ejected",
        "request.retry",
        "node.ejected",
        "request.retry",
        "node.probe",
        "node.readmitted",
    ]
    assert [f["reason"] for f in r.named("node.ejected")] == ["ConnectionError", "ServerError"]
    assert r.idle()


def test_ejecting_an_already_ejected_node_emits_nothing() -> None:
    r = rig()
    one, two = r.plan(), r.plan()
    n1 = one.choose(0.0).node
    # Pin the second call to the same node.
    two.tried.extend(n for n in r.health.nodes if n != n1)
    n2 = two.choose(0.0).node
    assert n1 == n2
    one.failed(n1, refused(), 0.0, 0.5)
    two.failed(n2, refused(), 0.0, 0.5)
    assert len(r.named("node.ejected")) == 1
    assert r.health.states[n1].failures == 1  # one observation: the probe backoff is not pushed


def test_events_go_to_the_plans_tracer_only() -> None:
    r = rig()
    quiet = Tracer()
    plan = CallPlan(
        GET,
        Deadline(0.0, 30.0),
        retry=RETRY,
        budget=r.budget,
        health=r.health,
        guard=contextlib.nullcontext(),
        tracer=quiet,
    )
    plan.failed(plan.choose(0.0).node, refused(), 0.0, 0.5)
    assert r.events == []


# -- the guard -------------------------------------------------------------------------------


class CountingGuard:
    """A guard that records how often shared state was entered, and checks nesting."""

    def __init__(self) -> None:
        self.entered = 0
        self.depth = 0

    def __enter__(self) -> None:
        assert self.depth == 0, "guard re-entered: a plain Lock would deadlock"
        self.depth += 1
        self.entered += 1

    def __exit__(self, *exc: object) -> None:
        self.depth -= 1


def test_guard_is_taken_and_never_nested() -> None:
    health = NodeHealth((A, B), HEALTH)
    budget = RetryBudget()
    guard = CountingGuard()
    tracer = Tracer()
    seen: list[int] = []
    tracer.subscribe(lambda e: seen.append(guard.depth))
    plan = CallPlan(
        GET,
        Deadline(0.0, 30.0),
        retry=RETRY,
        budget=budget,
        health=health,
        guard=guard,
        tracer=tracer,
    )
    assert guard.entered == 1  # the deposit
    plan.failed(plan.choose(0.0).node, reset_after_send(), 0.0, 0.5)
    plan.failed(plan.choose(0.0).node, refused(), 0.0, 0.5)
    choice = plan.choose(0.0)
    plan.probe_done(choice.node, ok=True, now=0.0, rand=0.5, error=None)
    plan.overtaken(choice.node, 0.0, 0.5)
    assert guard.entered >= 8
    assert guard.depth == 0
    assert seen and set(seen) == {0}, "events must be emitted outside the guard"


# -- races with sniffing ---------------------------------------------------------------------


def test_probe_done_after_the_node_was_sniffed_away() -> None:
    """Seeds given as IPs, sniffing replacing them by published names while a caller probes a
    seed: the probe succeeds, but the node is no longer in the set."""
    r = rig(A, B)
    eject_all(r)
    plan = r.plan()
    choice = plan.choose(0.0)
    assert choice.probe_first
    r.health.replace_nodes([C])  # the sniff, in the background thread / another task
    with contextlib.suppress(SturdySearchError):
        plan.probe_done(choice.node, ok=True, now=0.1, rand=0.5, error=None)


def test_a_probe_that_failed_while_the_call_backed_off_ends_it() -> None:
    """The background prober ran the due probe while this call slept its retry backoff: the
    call has its answer (the node is still down) and does not wait for the next probe."""
    r = rig(A)
    plan = r.plan()
    exc = refused()
    plan.failed(plan.choose(0.0).node, exc, 0.0, 0.5)
    assert r.health.due_probes(0.0) == [A]  # the background prober's
    r.health.probe_finished(A, ok=False, now=0.01, rand=1.0, error="refused")
    with pytest.raises(ConnectionError) as info:
        plan.choose(0.03)
    assert info.value is exc
    later = r.plan(now=0.03)  # a call that starts after that probe still waits for the next
    assert later.choose(0.03) == Choice(A, await_probe=True, until=pytest.approx(0.51))


# -- deadline cuts ---------------------------------------------------------------------------


def _cut(*, unanswered: bool = True) -> DeadlineExceeded:
    return DeadlineExceeded(
        "the call's deadline passed while reading the response",
        node="n",
        request_sent=True,
        unanswered=unanswered,
    )


def test_unanswered_deadline_cuts_in_a_row_eject_the_node() -> None:
    """Callers whose deadline is shorter than the read timeout: one cut says nothing about
    the node, three in a row with not a byte back make it unresponsive (ejected, probed)."""
    r = rig(A)
    for i in range(DEADLINE_CUTS_TO_EJECT):
        plan = r.plan(GET, now=float(i), budget=1.0)
        assert plan.choose(float(i)).node == A
        with pytest.raises(DeadlineExceeded):
            plan.failed(A, _cut(), float(i) + 1.0, 0.5)
        assert plan.ejected_last is (i == DEADLINE_CUTS_TO_EJECT - 1)
    state = r.health.states[A]
    assert not state.alive
    assert "3 calls in a row ran out of time" in (state.last_error or "")
    (ejected,) = r.named("node.ejected")
    assert ejected["reason"] == "calls running out of time without an answer"
    assert r.idle()


def test_deadline_cuts_reset_by_a_success_and_ignore_begun_answers() -> None:
    r = rig(A)
    for _ in range(5):
        for _ in range(DEADLINE_CUTS_TO_EJECT - 1):
            plan = r.plan(GET, budget=1.0)
            plan.choose(0.0)
            with pytest.raises(DeadlineExceeded):
                plan.failed(A, _cut(), 1.0, 0.5)
        plan = r.plan(GET, budget=1.0)
        plan.choose(0.0)
        plan.succeeded(A)  # the streak is over
    # a cut after part of the answer arrived is a slow answer, not silence: never counted
    for _ in range(10):
        plan = r.plan(GET, budget=1.0)
        plan.choose(0.0)
        with pytest.raises(DeadlineExceeded):
            plan.failed(A, _cut(unanswered=False), 1.0, 0.5)
    assert r.health.states[A].alive
    assert r.named("node.ejected") == []
