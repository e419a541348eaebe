"""The retry policy (``sturdysearch._core.retry``): a pure decision table plus full-jitter backoff."""

from __future__ import annotations

import itertools
import random

import pytest

from sturdysearch._core.retry import (
    REJECTED_BEFORE_WORK,
    RETRY_STATUSES,
    Decision,
    Failure,
    RetryPolicy,
)
from sturdysearch.errors import ConfigError

POLICY = RetryPolicy(max_attempts=3, backoff_base=0.1, backoff_cap=1.0)
ROOMY = 1000.0  # plenty of time left


def decide(
    failure: Failure,
    *,
    attempt: int = 1,
    idempotent: bool = True,
    remaining: float = ROOMY,
    rand: float = 0.5,
    policy: RetryPolicy = POLICY,
) -> Decision:
    return policy.decide(
        failure, attempt=attempt, idempotent=idempotent, remaining=remaining, rand=rand
    )


def expected_retry(kind: str, sent: bool, status: int | None, idempotent: bool) -> bool:
    """The rules, written out independently of the implementation."""
    if kind == "tls":
        return False
    if kind == "status":
        if status in (429, 503):
            return True
        if status in (408, 502, 504):
            return idempotent
        return False
    if kind == "connect":
        return True
    # io
    return idempotent or not sent


STATUSES = [400, 401, 403, 404, 408, 409, 413, 429, 500, 501, 502, 503, 504, 599]


@pytest.mark.parametrize(
    ("kind", "sent", "status"),
    [
        ("tls", False, None),
        ("tls", True, None),
        ("connect", False, None),
        ("io", True, None),
        ("io", False, None),
        *[("status", True, s) for s in STATUSES],
    ],
)
@pytest.mark.parametrize("idempotent", [True, False])
@pytest.mark.parametrize("attempt", [1, 2, 3, 4])
def test_decision_table(
    kind: str, sent: bool, status: int | None, idempotent: bool, attempt: int
) -> None:
    d = decide(Failure(kind, sent=sent, status=status), attempt=attempt, idempotent=idempotent)
    want = expected_retry(kind, sent, status, idempotent) and attempt < POLICY.max_attempts
    assert d.retry is want
    if d.retry:
        assert 0 <= d.delay <= POLICY.backoff_cap
        assert d.reason == ""
    else:
        assert d.delay == 0.0
        assert d.reason  # always says why


@pytest.mark.parametrize("idempotent", [True, False])
def test_tls_never_retried(idempotent: bool) -> None:
    d = decide(Failure("tls", sent=False), idempotent=idempotent)
    assert not d.retry
    assert "TLS" in d.reason


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 413, 500, 501])
@pytest.mark.parametrize("idempotent", [True, False])
def test_final_statuses_never_retried(status: int, idempotent: bool) -> None:
    d = decide(Failure("status", sent=True, status=status), idempotent=idempotent)
    assert not d.retry
    assert f"status {status} is final" == d.reason


@pytest.mark.parametrize("status", sorted(REJECTED_BEFORE_WORK))
def test_429_503_retried_even_when_not_idempotent(status: int) -> None:
    assert decide(Failure("status", sent=True, status=status), idempotent=False).retry


@pytest.mark.parametrize("status", [408, 502, 504])
def test_502_504_408_only_when_idempotent(status: int) -> None:
    assert decide(Failure("status", sent=True, status=status), idempotent=True).retry
    d = decide(Failure("status", sent=True, status=status), idempotent=False)
    assert not d.retry
    assert "non-idempotent" in d.reason


def test_io_failure_only_when_idempotent() -> None:
    assert decide(Failure("io", sent=True), idempotent=True).retry
    d = decide(Failure("io", sent=True), idempotent=False)
    assert not d.retry
    assert "not idempotent" in d.reason


@pytest.mark.parametrize("idempotent", [True, False])
def test_connect_failure_always_retried(idempotent: bool) -> None:
    assert decide(Failure("connect", sent=False), idempotent=idempotent).retry


def test_constants() -> None:
    assert frozenset({408, 429, 502, 503, 504}) == RETRY_STATUSES
    assert frozenset({429, 503}) == REJECTED_BEFORE_WORK


@pytest.mark.parametrize("max_attempts", [1, 2, 3, 5, 20])
def test_stops_at_max_attempts(max_attempts: int) -> None:
    policy = RetryPolicy(max_attempts=max_attempts)
    failure = Failure("connect", sent=False)
    results = [decide(failure, attempt=a, policy=policy).retry for a in range(1, max_attempts + 2)]
    assert results == [True] * (max_attempts - 1) + [False, False]
    assert (
        f"{max_attempts} attempts made"
        == decide(failure, attempt=max_attempts, policy=policy).reason
    )


def test_custom_retry_statuses() -> None:
    policy = RetryPolicy(retry_statuses=frozenset({500}))
    assert decide(Failure("status", sent=True, status=500), policy=policy).retry
    assert not decide(Failure("status", sent=True, status=503), policy=policy).retry
    # 500 is not "rejected before work": not for a non-idempotent request.
    assert not decide(
        Failure("status", sent=True, status=500), idempotent=False, policy=policy
    ).retry


# -- backoff -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base", "cap"), [(0.05, 5.0), (0.1, 1.0), (1.0, 1.0), (0.001, 0.5), (2.0, 60.0)]
)
@pytest.mark.parametrize("attempt", range(1, 21))
def test_backoff_full_jitter_bounds(base: float, cap: float, attempt: int) -> None:
    policy = RetryPolicy(max_attempts=20, backoff_base=base, backoff_cap=cap)
    ceiling = min(cap, base * 2 ** (attempt - 1))
    assert policy.backoff(attempt, 0.0) == 0.0
    assert policy.backoff(attempt, 1.0) == pytest.approx(ceiling)
    assert policy.backoff(attempt, 0.5) == pytest.approx(ceiling / 2)
    rng = random.Random(attempt)
    for _ in range(50):
        assert 0.0 <= policy.backoff(attempt, rng.random()) <= ceiling


def test_backoff_sequence() -> None:
    policy = RetryPolicy(max_attempts=10, backoff_base=0.1, backoff_cap=1.0)
    assert [policy.backoff(a, 1.0) for a in range(1, 7)] == pytest.approx(
        [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    )


def test_backoff_is_float() -> None:
    assert isinstance(RetryPolicy(backoff_base=1, backoff_cap=2).backoff(1, 1), float)


@pytest.mark.parametrize("rand", [0.0, 0.3, 1.0])
def test_decision_delay_is_the_backoff(rand: float) -> None:
    d = decide(Failure("connect", sent=False), attempt=2, rand=rand)
    assert d.delay == pytest.approx(POLICY.backoff(2, rand))


@pytest.mark.parametrize(
    ("retry_after", "rand", "delay"),
    [
        (2.0, 0.0, 2.0),  # Retry-After raises the delay
        (2.0, 1.0, 2.0),
        (0.01, 1.0, 0.1),  # but never lowers the backoff
        (0.0, 0.5, 0.05),
        (7.5, 0.5, 7.5),  # even above the cap
    ],
)
def test_retry_after_raises_delay(retry_after: float, rand: float, delay: float) -> None:
    failure = Failure("status", sent=True, status=429, retry_after=retry_after)
    d = decide(failure, attempt=1, rand=rand)
    assert d.retry
    assert d.delay == pytest.approx(delay)


@pytest.mark.parametrize(
    ("retry_after", "rand", "remaining", "retry"),
    [
        (None, 1.0, 0.1, False),  # backoff 0.1 == remaining
        (None, 1.0, 0.1000001, True),
        (None, 0.0, 0.0, False),  # nothing left at all
        (None, 0.0, -1.0, False),
        (None, 0.0, 1e-9, True),
        (5.0, 0.0, 5.0, False),  # Retry-After == remaining
        (5.0, 0.0, 4.0, False),
        (5.0, 0.0, 5.5, True),
    ],
)
def test_no_retry_when_delay_reaches_deadline(
    retry_after: float | None, rand: float, remaining: float, retry: bool
) -> None:
    failure = Failure("status", sent=True, status=503, retry_after=retry_after)
    d = decide(failure, attempt=1, rand=rand, remaining=remaining)
    assert d.retry is retry
    if not retry:
        assert "deadline" in d.reason


def test_dataclasses_are_frozen() -> None:
    with pytest.raises(AttributeError):
        POLICY.max_attempts = 9  # type: ignore[misc]
    with pytest.raises(AttributeError):
        Failure("io", sent=True).sent = False  # type: ignore[misc]


# -- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize("max_attempts", [0, -1, 21, 100, 1.5, "3", None])
def test_bad_max_attempts(max_attempts: object) -> None:
    with pytest.raises(ConfigError, match="max_attempts"):
        RetryPolicy(max_attempts=max_attempts)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("base", "cap"),
    [(0.0, 1.0), (-0.1, 1.0), (2.0, 1.0), (float("nan"), 1.0), (0.1, float("nan"))],
)
def test_bad_backoff(base: float, cap: float) -> None:
    with pytest.raises(ConfigError, match=r"backoff_(base|cap)"):
        RetryPolicy(backoff_base=base, backoff_cap=cap)


@pytest.mark.parametrize("max_attempts", [1, 20])
def test_max_attempts_bounds_accepted(max_attempts: int) -> None:
    assert RetryPolicy(max_attempts=max_attempts).max_attempts == max_attempts


def test_one_attempt_turns_retries_off() -> None:
    policy = RetryPolicy(max_attempts=1)
    for kind, status in itertools.product(["connect", "io", "status"], [None, 503]):
        assert not decide(Failure(kind, sent=False, status=status), policy=policy).retry


def test_bool_max_attempts_refused() -> None:
    with pytest.raises(ConfigError):
        RetryPolicy(max_attempts=True)


def test_infinite_backoff_refused() -> None:
    with pytest.raises(ConfigError):
        RetryPolicy(backoff_base=float("inf"), backoff_cap=float("inf"))
