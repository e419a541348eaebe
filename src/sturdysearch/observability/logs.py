"""Call-level log records: one DEBUG record per call, a WARNING for a slow one; and the
per-call ``X-Opaque-Id`` function.

Attempt, retry, ejection and bulk records come from the tracer's events
(``sturdysearch._core.events``); this instrument adds what only the end of a call knows: how
long it took in all, over how many attempts, and how it ended.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from sturdysearch._core.observe import AttemptRecord, BatchScope, CallScope

if TYPE_CHECKING:
    from sturdysearch._core.events import Tracer

transport_logger = logging.getLogger("sturdysearch.transport")


def call_fields(scope: CallScope) -> dict[str, object]:
    """The structured fields of a finished call (never bodies, headers or credentials)."""
    spec = scope.spec
    last = scope.attempts[-1] if scope.attempts else None
    fields: dict[str, object] = {
        "endpoint": scope.endpoint,
        "method": spec.method,
        "path": spec.path,
        "status": scope.status,
        "attempts": len(scope.attempts),
        "retries": scope.retries,
        "duration_ms": round(scope.duration * 1000, 3),
    }
    if last is not None:
        fields["node"] = last.node.url
    if scope.error is not None:
        fields["error_type"] = type(scope.error).__name__
    for key in ("opaque_id", "trace_id", "span_id"):
        value = getattr(scope, key)
        if value is not None:
            fields[key] = value
    return fields


class CallLogger:
    """Slow calls at WARNING (as the ``request.slow`` event), every call at DEBUG."""

    def __init__(self, tracer: Tracer, slow_call: float | None) -> None:
        self._tracer = tracer
        self._slow = slow_call

    def enabled(self) -> bool:
        return self._slow is not None or transport_logger.isEnabledFor(logging.DEBUG)

    def call_started(self, scope: CallScope) -> None:
        pass

    def attempt_started(self, scope: CallScope, attempt: AttemptRecord) -> None:
        pass

    def attempt_ended(self, scope: CallScope, attempt: AttemptRecord) -> None:
        pass

    def call_ended(self, scope: CallScope) -> None:
        if self._slow is not None and scope.duration >= self._slow:
            fields = call_fields(scope)
            self._tracer.emit("request.slow", threshold_ms=self._slow * 1000, **fields)
            return
        if transport_logger.isEnabledFor(logging.DEBUG):
            fields = call_fields(scope)
            outcome = "failed with " + str(fields["error_type"]) if scope.error else "ok"
            transport_logger.debug(
                "%s %s %s: %s after %d attempt(s), %.1f ms",
                scope.endpoint,
                scope.spec.method,
                scope.spec.path,
                outcome,
                len(scope.attempts),
                scope.duration * 1000,
                extra=fields,
            )

    def batch_started(self, batch: BatchScope) -> None:
        pass

    def batch_ended(self, batch: BatchScope) -> None:
        pass


class OpaqueIds:
    """``X-Opaque-Id`` from the user's function, called once per call."""

    def __init__(self, make: Callable[[], str | None]) -> None:
        self._make = make

    def enabled(self) -> bool:
        return True

    def call_started(self, scope: CallScope) -> None:
        value = self._make()
        if value is not None:
            text = str(value)
            if "\r" in text or "\n" in text:
                raise ValueError("the opaque_id function returned a value with a line break")
            scope.opaque_id = text

    def attempt_started(self, scope: CallScope, attempt: AttemptRecord) -> None:
        pass

    def attempt_ended(self, scope: CallScope, attempt: AttemptRecord) -> None:
        pass

    def call_ended(self, scope: CallScope) -> None:
        pass

    def batch_started(self, batch: BatchScope) -> None:
        pass

    def batch_ended(self, batch: BatchScope) -> None:
        pass
