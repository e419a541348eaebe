"""The retry budget (``sturdysearch._core.budget``): a token bucket bounding extra load."""

from __future__ import annotations

import math
import random

import pytest

from sturdysearch._core.budget import BudgetConfig, RetryBudget
from sturdysearch.errors import ConfigError

# -- configuration ---------------------------------------------------------------------------


def test_defaults() -> None:
    budget = RetryBudget()
    assert budget.config == BudgetConfig(ratio=0.1, max_tokens=10.0, initial_tokens=10.0)
    assert budget.balance == 10.0
    assert (budget.granted, budget.denied) == (0, 0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"ratio": -0.01},
        {"ratio": 1.01},
        {"ratio": float("nan")},
        {"ratio": float("inf")},
        {"max_tokens": -1.0, "initial_tokens": 0.0},
        {"max_tokens": float("nan")},
        {"initial_tokens": -1.0},
        {"initial_tokens": 11.0},  # above the default max_tokens of 10
        {"max_tokens": 2.0, "initial_tokens": 3.0},
        {"initial_tokens": float("nan")},
    ],
)
def test_config_rejects(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        BudgetConfig(**kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"ratio": 0.0},
        {"ratio": 1.0},
        {"max_tokens": 0.0, "initial_tokens": 0.0},
        {"max_tokens": 5.0, "initial_tokens": 5.0},
        {"max_tokens": 5.0, "initial_tokens": 0.0},
    ],
)
def test_config_accepts_bounds(kwargs: dict[str, float]) -> None:
    BudgetConfig(**kwargs)


def test_config_error_says_what_to_fix() -> None:
    with pytest.raises(ConfigError, match="ratio"):
        BudgetConfig(ratio=2.0)
    with pytest.raises(ConfigError, match="initial_tokens <= max_tokens"):
        BudgetConfig(max_tokens=1.0, initial_tokens=2.0)


# -- the bucket ------------------------------------------------------------------------------


def test_initial_tokens_allow_a_burst_then_deny() -> None:
    budget = RetryBudget(BudgetConfig(ratio=0.5, max_tokens=10.0, initial_tokens=3.0))
    assert budget.balance == 3.0
    assert [budget.try_withdraw() for _ in range(5)] == [True, True, True, False, False]
    assert (budget.granted, budget.denied) == (3, 2)
    assert budget.balance == 0.0


def test_withdraw_needs_a_whole_token() -> None:
    budget = RetryBudget(BudgetConfig(ratio=0.25, max_tokens=10.0, initial_tokens=0.0))
    for _ in range(3):
        budget.deposit()
    assert budget.balance == 0.75
    assert budget.try_withdraw() is False
    assert budget.balance == 0.75  # a denial costs nothing
    budget.deposit()
    assert budget.try_withdraw() is True
    assert budget.balance == 0.0
    assert (budget.granted, budget.denied) == (1, 1)


def test_deposit_is_capped_at_max_tokens() -> None:
    budget = RetryBudget(BudgetConfig(ratio=0.3, max_tokens=2.0, initial_tokens=1.5))
    for _ in range(100):
        budget.deposit()
    assert budget.balance == 2.0
    assert [budget.try_withdraw() for _ in range(3)] == [True, True, False]


def test_ratio_zero_never_refills() -> None:
    budget = RetryBudget(BudgetConfig(ratio=0.0, max_tokens=10.0, initial_tokens=2.0))
    for _ in range(1000):
        budget.deposit()
    assert [budget.try_withdraw() for _ in range(3)] == [True, True, False]


def test_empty_budget_denies_everything() -> None:
    budget = RetryBudget(BudgetConfig(ratio=0.0, max_tokens=0.0, initial_tokens=0.0))
    for _ in range(10):
        budget.deposit()
        assert budget.try_withdraw() is False
    assert (budget.granted, budget.denied) == (0, 10)


def test_ratio_one_allows_one_retry_per_call() -> None:
    budget = RetryBudget(BudgetConfig(ratio=1.0, max_tokens=1.0, initial_tokens=0.0))
    for _ in range(50):
        budget.deposit()
        assert budget.try_withdraw() is True
        assert budget.try_withdraw() is False
    assert (budget.granted, budget.denied) == (50, 50)


def test_ten_percent_in_steady_state() -> None:
    """With the default ratio, a drained bucket refills one retry per ~10 calls (never more)."""
    budget = RetryBudget()
    while budget.try_withdraw():
        pass
    granted_before = budget.granted
    for _ in range(10_000):
        budget.deposit()
        budget.try_withdraw()
    extra = budget.granted - granted_before
    assert 990 <= extra <= 1000


# -- the bound, property-style ---------------------------------------------------------------


@pytest.mark.parametrize("seed", range(12))
def test_retries_bounded_by_ratio_times_calls_plus_max_tokens(seed: int) -> None:
    """Over any run, retries granted <= ratio * calls + max_tokens (module docstring); more
    precisely <= ratio * calls + initial_tokens, and the balance stays in [0, max_tokens]."""
    rng = random.Random(seed)
    max_tokens = rng.choice([0.0, 1.0, 2.5, 10.0, 50.0])
    config = BudgetConfig(
        ratio=rng.choice([0.0, 0.01, 0.1, 0.2, 1 / 3, 0.5, 1.0, rng.random()]),
        max_tokens=max_tokens,
        initial_tokens=rng.uniform(0.0, max_tokens),
    )
    budget = RetryBudget(config)
    calls = 0
    retry_pressure = rng.choice([0.05, 0.5, 2.0, 10.0])  # retries wanted per call, on average
    for _ in range(20_000):
        if rng.random() < 1 / (1 + retry_pressure):
            budget.deposit()
            calls += 1
        else:
            budget.try_withdraw()
        assert -1e-9 <= budget.balance <= config.max_tokens
        bound = config.ratio * calls + config.initial_tokens
        assert budget.granted <= bound + 1e-6
        assert budget.granted <= config.ratio * calls + config.max_tokens + 1e-6
    assert budget.granted + budget.denied == 20_000 - calls


@pytest.mark.parametrize("seed", range(4))
def test_bound_holds_over_every_window(seed: int) -> None:
    """Over any stretch of time, retries in any window <= ratio * calls in it + max_tokens."""
    rng = random.Random(1000 + seed)
    config = BudgetConfig(ratio=0.1, max_tokens=5.0, initial_tokens=5.0)
    budget = RetryBudget(config)
    events: list[str] = []  # "c" (call) or "r" (granted retry)
    for _ in range(3000):
        # Alternate between healthy stretches and retry storms.
        storm = (len(events) // 400) % 2 == 1
        if rng.random() < (0.3 if storm else 0.9):
            budget.deposit()
            events.append("c")
        elif budget.try_withdraw():
            events.append("r")
    prefix_calls = [0]
    prefix_retries = [0]
    for event in events:
        prefix_calls.append(prefix_calls[-1] + (event == "c"))
        prefix_retries.append(prefix_retries[-1] + (event == "r"))
    n = len(events)
    for start in range(0, n, 7):
        for end in range(start, n + 1, 13):
            calls = prefix_calls[end] - prefix_calls[start]
            retries = prefix_retries[end] - prefix_retries[start]
            assert retries <= config.ratio * calls + config.max_tokens + 1e-6


def test_counters_count_every_decision() -> None:
    rng = random.Random(7)
    budget = RetryBudget(BudgetConfig(ratio=0.2, max_tokens=3.0, initial_tokens=1.0))
    decisions = []
    for _ in range(500):
        if rng.random() < 0.5:
            budget.deposit()
        else:
            decisions.append(budget.try_withdraw())
    assert budget.granted == decisions.count(True)
    assert budget.denied == decisions.count(False)
    assert math.isfinite(budget.balance)


def test_budgets_are_independent() -> None:
    one, two = RetryBudget(), RetryBudget()
    while one.try_withdraw():
        pass
    assert two.balance == 10.0
    assert two.try_withdraw()
