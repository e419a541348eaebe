"""Timeouts and the per-call deadline.

Three numbers bound every call (all in seconds):

* ``connect`` bounds one TCP connect plus the TLS handshake;
* ``read`` bounds the wait for the response head and every pause between response bytes;
* ``total`` is the call's deadline: it covers the wait for a pooled connection, every attempt and
  every backoff. A server that drips one byte per second keeps each read short, so only the
  deadline stops it; this is the gap the per-socket timeouts of other clients leave open.

``None``, zero, negative, NaN and infinite values are refused: "wait forever" is the bug, not a
setting. Calls that really need long (force-merge, snapshot, reindex without
``wait_for_completion=false``) pass ``long_running=True`` on that call, which lifts the
``MAX_TOTAL`` ceiling for that call only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sturdysearch.errors import ConfigError

DEFAULT_CONNECT = 2.0
DEFAULT_READ = 10.0
DEFAULT_TOTAL = 30.0
#: Per-call deadlines above this need an explicit ``long_running=True`` on the call.
MAX_TOTAL = 300.0
#: Per-call deadline when ``long_running=True`` and ``timeout=`` is not given.
DEFAULT_LONG_RUNNING_TOTAL = 3600.0
#: Hard ceiling even for long-running calls (one day).
MAX_LONG_RUNNING_TOTAL = 86400.0


def check_seconds(name: str, value: object, *, maximum: float | None = None) -> float:
    """Return ``value`` as float seconds, or raise ``ConfigError`` saying how to fix it."""
    if value is None:
        raise ConfigError(
            f"{name}=None would let a call wait forever; give a finite number of seconds "
            f"(e.g. {name}=30)"
        )
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name} must be a number of seconds, got {type(value).__name__}")
    try:
        seconds = float(value)
    except OverflowError:
        raise ConfigError(f"{name} is too large to be a number of seconds") from None
    if math.isnan(seconds) or math.isinf(seconds):
        raise ConfigError(f"{name}={value!r} is not a finite number of seconds")
    if seconds <= 0:
        raise ConfigError(f"{name}={value!r} must be greater than zero")
    if maximum is not None and seconds > maximum:
        raise ConfigError(
            f"{name}={value!r} is above the {maximum:g} s ceiling; for a long admin call pass "
            f"long_running=True on that call"
        )
    return seconds


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Client-wide timeouts, validated at construction."""

    connect: float = DEFAULT_CONNECT
    """TCP connect + TLS handshake, per attempt."""
    read: float = DEFAULT_READ
    """Wait for the response head and between response bytes, per attempt."""
    total: float = DEFAULT_TOTAL
    """Deadline of one call: pool wait, all attempts, all backoff."""

    def __post_init__(self) -> None:
        check_seconds("connect_timeout", self.connect)
        check_seconds("read_timeout", self.read)
        check_seconds("timeout", self.total, maximum=MAX_TOTAL)


def call_budget(timeouts: Timeouts, timeout: float | None, *, long_running: bool = False) -> float:
    """Seconds the call may take: the per-call ``timeout=`` if given, else the client default.

    ``long_running`` lifts the ceiling and, with no ``timeout=``, defaults to an hour.
    """
    if timeout is None:
        return DEFAULT_LONG_RUNNING_TOTAL if long_running else timeouts.total
    if isinstance(timeout, str):
        raise ConfigError(
            f"timeout={timeout!r}: timeout= is this call's client-side deadline in seconds "
            f"(e.g. timeout=30); the server-side timeout is server_timeout={timeout!r}"
        )
    maximum = MAX_LONG_RUNNING_TOTAL if long_running else MAX_TOTAL
    return check_seconds("timeout", timeout, maximum=maximum)


class Deadline:
    """An absolute point on the monotonic clock; the driver passes ``now`` in."""

    __slots__ = ("at", "budget")

    def __init__(self, now: float, budget: float) -> None:
        self.budget = budget
        self.at = now + budget

    def remaining(self, now: float) -> float:
        """Seconds left (may be negative once passed)."""
        return self.at - now

    def expired(self, now: float) -> bool:
        return now >= self.at

    def connect_timeout_for(self, connect: float, now: float) -> float:
        """Timeout for one connect: the smaller of ``connect`` and what is left."""
        return min(connect, self.at - now)

    def read_timeout(self, read: float, now: float) -> float:
        """Timeout for one socket read: the smaller of ``read`` and what is left."""
        return min(read, self.at - now)


def read_wait(now: float, deadline_at: float, quiet_since: float, read_timeout: float) -> float:
    """How long a connection may still wait for the next bytes of an answer: until the call's
    deadline or until the server has been silent for ``read_timeout`` since ``quiet_since``
    (the end of the send, or the last bytes received), whichever comes first. Zero or less:
    the wait is over; :func:`deadline_ends_wait` says which limit ended it. Both drivers'
    connections use it (the blocking one per ``recv``, the asyncio one per timer), so that
    they cut an answer at the same moment for the same reason."""
    remaining = deadline_at - now
    quiet_left = read_timeout - (now - quiet_since)
    return remaining if remaining <= quiet_left else quiet_left


def deadline_ends_wait(
    now: float, deadline_at: float, quiet_since: float, read_timeout: float
) -> bool:
    """Whether the call's deadline (not the read timeout) is what ends, or would end, the wait
    of :func:`read_wait`: a deadline cut is the caller's time running out, a read timeout the
    server's silence."""
    remaining = deadline_at - now
    return remaining <= 0 or remaining <= read_timeout - (now - quiet_since)
