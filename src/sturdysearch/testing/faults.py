"""What can go wrong between a client and a node, as values a test hands to `FaultProxy`.

A `Fault` is an immutable description; the proxy keeps the mutable part (how many
applications are left, the random generator) per installation, so one `Fault` value can be
reused across tests and proxies without one run consuming another's budget.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

__all__ = ["Fault", "FaultKind"]


class FaultKind(enum.Enum):
    """The failure modes the proxy can produce; each maps to a real-world incident."""

    BLACKHOLE = "blackhole"
    DROP_ANSWER = "drop_answer"
    LATENCY = "latency"
    DRIP = "drip"
    RESET_MID_RESPONSE = "reset_mid_response"
    TRUNCATE = "truncate"
    RESET_AFTER_REQUEST = "reset_after_request"
    RESET_BEFORE_REQUEST = "reset_before_request"
    STATUS = "status"
    REFUSE = "refuse"
    RANDOM = "random"


def _check_non_negative(name: str, value: float) -> None:
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")


@dataclass(frozen=True, kw_only=True)
class Fault:
    """One fault, built with the class methods (`Fault.latency(0.2)`, ...), never directly.

    Per-request faults are decided when a request head arrives, so switching faults while a
    response is in flight never changes what that response suffers. `times()` and
    `matching()` return narrowed copies and can be chained in either order.
    """

    kind: FaultKind
    delay: float = 0.0
    interval: float = 0.0
    chunk: int = 1
    after_bytes: int = 0
    status_code: int = 503
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None
    reset_probability: float = 0.0
    seed: int | None = None
    close_existing: bool = True
    limit: int | None = None
    method: str | None = None
    path_prefix: str | None = None
    path_regex: str | None = None

    # -- constructors -------------------------------------------------------------------

    @classmethod
    def blackhole(cls) -> Fault:
        """Accept and read requests but never answer: the client's read timeout must fire."""
        return cls(kind=FaultKind.BLACKHOLE)

    @classmethod
    def drop_answer(cls) -> Fault:
        """Forward the request to the server, which acts on it and answers, and lose the
        answer: the client hears nothing until it gives up. Every answer lost, as in a network
        partition after the request went out; unlike ``blackhole`` the server sees (and counts)
        every request."""
        return cls(kind=FaultKind.DROP_ANSWER)

    @classmethod
    def latency(cls, delay: float) -> Fault:
        """Hold each response head back for `delay` seconds, then forward normally."""
        _check_non_negative("delay", delay)
        return cls(kind=FaultKind.LATENCY, delay=delay)

    @classmethod
    def drip(cls, interval: float, chunk: int = 1) -> Fault:
        """Forward the response `chunk` bytes at a time, waiting `interval` between pieces.

        This defeats per-recv socket timeouts, so only a total deadline can catch it.
        """
        _check_non_negative("interval", interval)
        if chunk < 1:
            raise ValueError(f"chunk must be >= 1, got {chunk!r}")
        return cls(kind=FaultKind.DRIP, interval=interval, chunk=chunk)

    @classmethod
    def reset_mid_response(cls, after_bytes: int) -> Fault:
        """Forward the first `after_bytes` bytes of the response (head included), then RST.

        If the response is shorter, it is forwarded whole and the connection is reset after it.
        """
        _check_non_negative("after_bytes", after_bytes)
        return cls(kind=FaultKind.RESET_MID_RESPONSE, after_bytes=after_bytes)

    @classmethod
    def truncate(cls, after_bytes: int) -> Fault:
        """Forward the first `after_bytes` bytes of the response, then close cleanly (FIN).

        The client sees a body shorter than its framing promised, with no error from TCP.
        If the response is shorter, it is forwarded whole and the connection closed after it.
        """
        _check_non_negative("after_bytes", after_bytes)
        return cls(kind=FaultKind.TRUNCATE, after_bytes=after_bytes)

    @classmethod
    def reset_after_request(cls) -> Fault:
        """Forward the request and let the server answer, then RST before any response byte.

        The proxy waits for the server's response head, so when the client sees the reset
        the request has certainly taken effect: the case that makes blind retries unsafe.
        """
        return cls(kind=FaultKind.RESET_AFTER_REQUEST)

    @classmethod
    def reset_before_request(cls) -> Fault:
        """RST as soon as the request head arrives; the server never sees the request."""
        return cls(kind=FaultKind.RESET_BEFORE_REQUEST)

    @classmethod
    def status(
        cls,
        status_code: int,
        *,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        body: bytes | None = None,
    ) -> Fault:
        """Answer with a canned response without contacting the server.

        Without `body`, a small Elasticsearch-shaped JSON error is sent, because clients
        parse error bodies and an empty one would test a path real nodes never take.
        """
        if not 100 <= status_code <= 999:
            raise ValueError(f"status_code must be a 3-digit HTTP status, got {status_code!r}")
        pairs: tuple[tuple[str, str], ...]
        if headers is None:
            pairs = ()
        elif isinstance(headers, Mapping):
            pairs = tuple((str(k), str(v)) for k, v in headers.items())
        else:
            pairs = tuple((str(k), str(v)) for k, v in headers)
        for name, value in pairs:
            if any(c in name + value for c in "\r\n") or not name or ":" in name:
                raise ValueError(f"invalid header {name!r}: {value!r}")
        return cls(kind=FaultKind.STATUS, status_code=status_code, headers=pairs, body=body)

    @classmethod
    def refuse(cls, *, close_existing: bool = True) -> Fault:
        """Stop listening, so new connections get ECONNREFUSED, as when a node is down.

        With `close_existing` (the default) open client connections are closed too, as a
        dying process would; otherwise they keep passing traffic through.
        """
        return cls(kind=FaultKind.REFUSE, close_existing=close_existing)

    @classmethod
    def random(cls, reset_probability: float, *, seed: int | None = None) -> Fault:
        """Reset each request with `reset_probability`, half before and half after forwarding.

        Meant for leak and chaos tests; a `seed` makes a failing run reproducible.
        """
        if not 0.0 <= reset_probability <= 1.0:
            raise ValueError(f"reset_probability must be in [0, 1], got {reset_probability!r}")
        return cls(kind=FaultKind.RANDOM, reset_probability=reset_probability, seed=seed)

    # -- narrowing ----------------------------------------------------------------------

    def times(self, n: int) -> Fault:
        """Apply to the next `n` matching requests only, then behave as pass-through."""
        if n < 0:
            raise ValueError(f"times() needs n >= 0, got {n!r}")
        if self.kind is FaultKind.REFUSE:
            raise ValueError("refuse() acts on the listener, it cannot be limited per request")
        return replace(self, limit=n)

    def matching(
        self,
        *,
        method: str | None = None,
        path_prefix: str | None = None,
        path_regex: str | None = None,
    ) -> Fault:
        """Apply only to requests with this method and/or whose target matches.

        `path_prefix` is compared with the request target as sent (query string included);
        `path_regex` is searched anywhere in it, for paths like `/{index}/_bulk`.
        """
        if self.kind is FaultKind.REFUSE:
            raise ValueError("refuse() acts on the listener, it cannot match requests")
        if path_regex is not None:
            re.compile(path_regex)
        return replace(
            self,
            method=method.upper() if method is not None else self.method,
            path_prefix=path_prefix if path_prefix is not None else self.path_prefix,
            path_regex=path_regex if path_regex is not None else self.path_regex,
        )

    def matches(self, method: str, target: str) -> bool:
        """Whether this fault's filter selects a request; counts nothing."""
        if self.method is not None and method.upper() != self.method:
            return False
        if self.path_prefix is not None and not target.startswith(self.path_prefix):
            return False
        return self.path_regex is None or re.search(self.path_regex, target) is not None
