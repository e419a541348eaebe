"""Whether and when to try a failed call again: an immutable policy that computes, never sleeps.

Theory of operation. A failure is classified by *whether the request may have reached a server*
(``Failure.sent``) and by what the server said (``status``). Then:

* not sent (refused, connect timeout, reset before the first byte was written): always safe to
  resend, to another node;
* sent but unanswered (read timeout, reset mid-response, garbage): resend only when the request
  is idempotent, because a create-without-id may already have been indexed;
* a status in ``retry_statuses`` (408, 429, 502, 503, 504): the server refused the work, but a
  POST that creates may still have been partly applied behind a 502/504 proxy; retry when
  idempotent, or for 429/503 which the servers only send before doing the work;
* TLS failures, 4xx other than 408/429, and anything past the deadline: never.

The delay is exponential with full jitter (AWS architecture blog, "Exponential Backoff And
Jitter"): ``uniform(0, min(cap, base * 2**(attempt - 1)))`` after attempt number ``attempt``, raised to the server's ``Retry-After``
when it sent one. The driver supplies the random number and the remaining time, so this module
stays deterministic under test.
"""

from __future__ import annotations

from dataclasses import dataclass

from sturdysearch._core.timeouts import check_seconds
from sturdysearch.errors import ConfigError

#: Statuses that mean "not now" rather than "no".
RETRY_STATUSES = frozenset({408, 429, 502, 503, 504})
#: Statuses the servers send before doing any work, so even a non-idempotent request is safe.
REJECTED_BEFORE_WORK = frozenset({429, 503})


@dataclass(frozen=True, slots=True)
class Failure:
    """What went wrong with one attempt."""

    kind: str
    """``connect`` (not sent), ``io`` (sent, no complete answer), ``tls``, or ``status``."""
    sent: bool
    status: int | None = None
    retry_after: float | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    retry: bool
    delay: float = 0.0
    reason: str = ""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How many attempts, and how long to wait between them."""

    max_attempts: int = 3
    """Attempts in all, the first included; 1 turns retries off."""
    backoff_base: float = 0.05
    """Seconds; the upper bound of the first backoff."""
    backoff_cap: float = 5.0
    """Seconds; the largest backoff, before ``Retry-After``."""
    retry_statuses: frozenset[int] = RETRY_STATUSES

    def __post_init__(self) -> None:
        if (
            isinstance(self.max_attempts, bool)
            or not isinstance(self.max_attempts, int)
            or not 1 <= self.max_attempts <= 20
        ):
            raise ConfigError("max_attempts must be an integer from 1 to 20")
        check_seconds("backoff_base", self.backoff_base)
        check_seconds("backoff_cap", self.backoff_cap)
        if self.backoff_base > self.backoff_cap:
            raise ConfigError("need backoff_base <= backoff_cap")

    def backoff(self, attempt: int, rand: float) -> float:
        """Full-jitter delay before attempt ``attempt + 1`` (``attempt`` counts from 1)."""
        ceiling = min(self.backoff_cap, self.backoff_base * (2 ** (attempt - 1)))
        return float(rand * ceiling)

    def decide(
        self,
        failure: Failure,
        *,
        attempt: int,
        idempotent: bool,
        remaining: float,
        rand: float,
    ) -> Decision:
        """Decide after attempt number ``attempt`` failed with ``failure``."""
        if failure.kind == "tls":
            return Decision(False, reason="TLS failures are not transient")
        if failure.kind == "status":
            status = failure.status
            if status not in self.retry_statuses:
                return Decision(False, reason=f"status {status} is final")
            if not idempotent and status not in REJECTED_BEFORE_WORK:
                return Decision(False, reason=f"status {status} on a non-idempotent request")
        elif failure.sent and not idempotent:
            return Decision(
                False, reason="the request may have reached the server and is not idempotent"
            )
        if attempt >= self.max_attempts:
            return Decision(False, reason=f"{attempt} attempts made")
        delay = self.backoff(attempt, rand)
        if failure.retry_after is not None:
            delay = max(delay, failure.retry_after)
        if delay >= remaining:
            return Decision(False, reason="the deadline does not leave time for the backoff")
        return Decision(True, delay=delay)
