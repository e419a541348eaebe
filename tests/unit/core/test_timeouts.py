"""Timeouts and the per-call deadline (``sturdysearch._core.timeouts``)."""

from __future__ import annotations

import math

import pytest

from sturdysearch._core.timeouts import (
    DEFAULT_CONNECT,
    DEFAULT_LONG_RUNNING_TOTAL,
    DEFAULT_READ,
    DEFAULT_TOTAL,
    MAX_LONG_RUNNING_TOTAL,
    MAX_TOTAL,
    Deadline,
    Timeouts,
    call_budget,
    check_seconds,
)
from sturdysearch.errors import ConfigError


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "timeout=None would let a call wait forever"),
        (0, "must be greater than zero"),
        (0.0, "must be greater than zero"),
        (-1, "must be greater than zero"),
        (-0.001, "must be greater than zero"),
        (float("nan"), "is not a finite number of seconds"),
        (float("inf"), "is not a finite number of seconds"),
        (float("-inf"), "is not a finite number of seconds"),
        (True, "must be a number of seconds, got bool"),
        (False, "must be a number of seconds, got bool"),
        ("30", "must be a number of seconds, got str"),
        ("30s", "must be a number of seconds, got str"),
        ([30], "must be a number of seconds, got list"),
    ],
)
def test_check_seconds_refuses(value: object, message: str) -> None:
    with pytest.raises(ConfigError, match="timeout") as info:
        check_seconds("timeout", value)
    assert message in str(info.value)


def test_none_message_suggests_a_value() -> None:
    with pytest.raises(ConfigError, match=r"read_timeout=30"):
        check_seconds("read_timeout", None)


@pytest.mark.parametrize(("value", "seconds"), [(1, 1.0), (0.001, 0.001), (30, 30.0), (2.5, 2.5)])
def test_check_seconds_accepts(value: float, seconds: float) -> None:
    out = check_seconds("t", value)
    assert out == seconds
    assert isinstance(out, float)


def test_check_seconds_maximum() -> None:
    assert check_seconds("timeout", 300, maximum=300) == 300.0
    with pytest.raises(ConfigError) as info:
        check_seconds("timeout", 300.5, maximum=300)
    assert "300 s ceiling" in str(info.value)
    assert "long_running=True" in str(info.value)


def test_check_seconds_huge_int() -> None:
    with pytest.raises(ConfigError):
        check_seconds("timeout", 10**400)


def test_timeouts_defaults() -> None:
    t = Timeouts()
    assert (t.connect, t.read, t.total) == (DEFAULT_CONNECT, DEFAULT_READ, DEFAULT_TOTAL)
    assert (DEFAULT_CONNECT, DEFAULT_READ, DEFAULT_TOTAL) == (2.0, 10.0, 30.0)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"connect": 0}, "connect_timeout"),
        ({"connect": None}, "connect_timeout"),
        ({"read": -1}, "read_timeout"),
        ({"read": float("inf")}, "read_timeout"),
        ({"total": None}, "timeout"),
        ({"total": MAX_TOTAL + 1}, "timeout"),
        ({"total": float("nan")}, "timeout"),
    ],
)
def test_timeouts_validation(kwargs: dict[str, object], name: str) -> None:
    with pytest.raises(ConfigError, match=f"^{name}"):
        Timeouts(**kwargs)  # type: ignore[arg-type]


def test_timeouts_total_at_ceiling_accepted() -> None:
    assert Timeouts(total=MAX_TOTAL).total == MAX_TOTAL


def test_timeouts_above_ceiling_message_mentions_long_running() -> None:
    with pytest.raises(ConfigError, match="long_running=True"):
        Timeouts(total=301)


# -- call_budget -------------------------------------------------------------------------------

T = Timeouts(connect=1, read=5, total=20)


@pytest.mark.parametrize(
    ("timeout", "long_running", "budget"),
    [
        (None, False, 20.0),
        (None, True, DEFAULT_LONG_RUNNING_TOTAL),
        (5, False, 5.0),
        (0.25, False, 0.25),
        (MAX_TOTAL, False, MAX_TOTAL),
        (MAX_TOTAL + 1, True, MAX_TOTAL + 1),
        (MAX_LONG_RUNNING_TOTAL, True, MAX_LONG_RUNNING_TOTAL),
        (1, True, 1.0),
    ],
)
def test_call_budget(timeout: float | None, long_running: bool, budget: float) -> None:
    assert call_budget(T, timeout, long_running=long_running) == budget


@pytest.mark.parametrize(
    ("timeout", "long_running", "message"),
    [
        (MAX_TOTAL + 1, False, "long_running=True"),
        (MAX_LONG_RUNNING_TOTAL + 1, True, "86400 s ceiling"),
        (0, False, "greater than zero"),
        (-5, True, "greater than zero"),
        (float("inf"), True, "finite"),
        (True, False, "got bool"),
    ],
)
def test_call_budget_refuses(timeout: object, long_running: bool, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        call_budget(T, timeout, long_running=long_running)  # type: ignore[arg-type]
    assert message in str(info.value)


@pytest.mark.parametrize("value", ["30s", "1m", "5", ""])
def test_call_budget_string_points_to_server_side_params(value: str) -> None:
    with pytest.raises(ConfigError) as info:
        call_budget(T, value)  # type: ignore[arg-type]
    text = str(info.value)
    assert f"timeout={value!r}" in text
    assert "client-side deadline" in text
    assert f"server_timeout={value!r}" in text


# -- Deadline ----------------------------------------------------------------------------------


@pytest.mark.parametrize("now", [0.0, 1000.5, 1e9])
def test_deadline_arithmetic(now: float) -> None:
    d = Deadline(now, 10.0)
    assert d.budget == 10.0
    assert d.at == now + 10.0
    assert d.remaining(now) == 10.0
    assert d.remaining(now + 4) == pytest.approx(6.0)
    assert d.remaining(now + 12) == pytest.approx(-2.0)
    assert not d.expired(now)
    assert not d.expired(now + 9.999)
    assert d.expired(now + 10.0)
    assert d.expired(now + 11)


def test_deadline_bounds_per_socket_timeouts() -> None:
    d = Deadline(100.0, 10.0)
    assert d.connect_timeout_for(2.0, 100.0) == 2.0
    assert d.connect_timeout_for(2.0, 109.0) == pytest.approx(1.0)
    assert d.connect_timeout_for(2.0, 111.0) == pytest.approx(-1.0)
    assert d.read_timeout(5.0, 100.0) == 5.0
    assert d.read_timeout(5.0, 107.5) == pytest.approx(2.5)
    assert d.read_timeout(20.0, 100.0) == 10.0


def test_deadline_values_are_finite() -> None:
    d = Deadline(0.0, DEFAULT_TOTAL)
    assert math.isfinite(d.at)


def test_read_wait_is_the_nearer_of_the_deadline_and_the_read_timeout() -> None:
    from sturdysearch._core.timeouts import deadline_ends_wait, read_wait

    # 10 s read timeout, silent since t=0, deadline at t=30: at t=4 the silence ends first.
    assert read_wait(4.0, 30.0, 0.0, 10.0) == 6.0
    assert not deadline_ends_wait(4.0, 30.0, 0.0, 10.0)
    # Deadline at t=5: it comes first.
    assert read_wait(4.0, 5.0, 0.0, 10.0) == 1.0
    assert deadline_ends_wait(4.0, 5.0, 0.0, 10.0)
    # Over: silence for 10 s (deadline still ahead), then both over (the deadline is named).
    assert read_wait(10.5, 30.0, 0.0, 10.0) < 0
    assert not deadline_ends_wait(10.5, 30.0, 0.0, 10.0)
    assert deadline_ends_wait(31.0, 30.0, 0.0, 10.0)
    # New bytes restart the silence, never the deadline.
    assert read_wait(12.0, 30.0, 11.0, 10.0) == 9.0
    assert read_wait(29.0, 30.0, 28.5, 10.0) == 1.0
