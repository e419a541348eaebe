"""A retry budget: retries may add only a bounded fraction of extra load.

Retries help when failures are rare and independent; when a cluster is overloaded or down they
multiply its load exactly when it can least take it (a retry storm). The budget is a token
bucket in the manner of Finagle's ``RetryBudget`` and gRPC's retry throttling: every call
deposits ``ratio`` tokens, every retry withdraws one, and the balance never exceeds
``max_tokens``. Over any stretch of time the retries sent are therefore at most
``ratio * calls + max_tokens``; the bucket starts with ``initial_tokens`` so that a fresh client
still rides out a single blip.

Every retry is charged, also of a request that never reached a server (connection refused,
connect timeout, no live node): one such retry costs the cluster little, but during an outage
they are all the traffic there is, from every thread, task and indexer worker at once, and a
budget that skips them is side-stepped exactly when it matters (gRPC's retry throttling counts
them too).
"""

from __future__ import annotations

from dataclasses import dataclass

from sturdysearch.errors import ConfigError


@dataclass(frozen=True, slots=True)
class BudgetConfig:
    ratio: float = 0.1
    """Retries allowed per call, on average (0.1 = at most 10% extra load)."""
    max_tokens: float = 10.0
    """Largest balance: the burst of retries allowed after a long healthy stretch."""
    initial_tokens: float = 10.0
    """Balance of a new client."""

    def __post_init__(self) -> None:
        if not 0 <= self.ratio <= 1:
            raise ConfigError(f"retry budget ratio={self.ratio!r} must be between 0 and 1")
        if self.max_tokens < 0 or not 0 <= self.initial_tokens <= self.max_tokens:
            raise ConfigError("need 0 <= initial_tokens <= max_tokens for the retry budget")


class RetryBudget:
    """The bucket itself; callers serialize access (it is a few float operations)."""

    __slots__ = ("_balance", "config", "denied", "granted")

    def __init__(self, config: BudgetConfig | None = None) -> None:
        self.config = config or BudgetConfig()
        self._balance = self.config.initial_tokens
        self.granted = 0
        self.denied = 0

    @property
    def balance(self) -> float:
        return self._balance

    def deposit(self) -> None:
        """Called once per call (not per attempt)."""
        balance = self._balance + self.config.ratio
        self._balance = balance if balance < self.config.max_tokens else self.config.max_tokens

    def try_withdraw(self) -> bool:
        """Take one token for a retry; ``False`` means the budget is spent: fail fast."""
        if self._balance >= 1.0:
            self._balance -= 1.0
            self.granted += 1
            return True
        self.denied += 1
        return False
