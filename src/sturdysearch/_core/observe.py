"""What an instrument sees of a call, its attempts and a bulk batch; no I/O, no clock.

Logs, OpenTelemetry and metrics need more than the flat events of :mod:`._core.events`: a span
opens when a call starts and closes when it ends, a child span per attempt, and the attempt's
trace context travels to the server in its headers. So an instrument implements
:class:`Instrument`, registers with the client's :class:`~sturdysearch._core.events.Tracer`,
and the transport (``_core/driver.py``, shared by both drivers) hands it a :class:`CallScope` at
each step. A call nobody instruments has no scope: the transport checks one attribute.

Instruments are asked :meth:`Instrument.enabled` per call, so that one whose backend is absent
or unconfigured (OpenTelemetry without a provider, DEBUG logging off) costs one check. A failing
instrument is logged and otherwise ignored: observing a call must never break it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from sturdysearch._core.operation import Operation, identify

if TYPE_CHECKING:
    from sturdysearch._core.nodes import NodeConfig
    from sturdysearch._core.request import RequestSpec

logger = logging.getLogger("sturdysearch")


class Instrument(Protocol):
    """One backend: structured logs, OpenTelemetry traces and metrics, a user's own."""

    def enabled(self) -> bool:
        """Whether this call is worth observing (checked per call: keep it cheap)."""

    def call_started(self, scope: CallScope) -> None: ...

    def attempt_started(self, scope: CallScope, attempt: AttemptRecord) -> None:
        """The attempt is about to be written; headers put in ``attempt.headers`` are sent."""

    def attempt_ended(self, scope: CallScope, attempt: AttemptRecord) -> None: ...

    def call_ended(self, scope: CallScope) -> None: ...

    def batch_started(self, batch: BatchScope) -> None: ...

    def batch_ended(self, batch: BatchScope) -> None: ...


class AttemptRecord:
    """One attempt of a call, on one node."""

    __slots__ = (
        "duration",
        "error",
        "headers",
        "hedge",
        "node",
        "number",
        "outcome",
        "sent",
        "started",
        "state",
        "status",
    )

    def __init__(self, node: NodeConfig, number: int, started: float, *, hedge: bool) -> None:
        self.node = node
        self.number = number
        self.started = started
        self.hedge = hedge
        self.sent = False
        self.outcome = ""
        """``ok``, the error class name, or ``cancelled`` (a hedged race's loser)."""
        self.status: int | None = None
        self.error: BaseException | None = None
        self.duration = 0.0
        self.headers: dict[str, str] = {}
        self.state: dict[object, Any] = {}
        """Per instrument (keyed by the instrument): its span, say."""


class CallScope:
    """One call from start to end, as the instruments see it."""

    __slots__ = (
        "_open",
        "attempts",
        "cluster",
        "duration",
        "error",
        "flavor",
        "instruments",
        "opaque_id",
        "operation",
        "parent",
        "retries",
        "span_id",
        "spec",
        "started",
        "state",
        "status",
        "trace_id",
    )

    def __init__(
        self,
        spec: RequestSpec,
        started: float,
        instruments: Sequence[Instrument],
        flavor: str | None,
        parent: BatchScope | None,
        cluster: str | None = None,
    ) -> None:
        self.spec = spec
        self.started = started
        self.instruments = instruments
        self.flavor = flavor
        """``elasticsearch``/``opensearch`` once the client has detected the server."""
        self.cluster = cluster
        """The cluster's name, once detected (``db.namespace``)."""
        self.parent = parent
        self.operation: Operation = identify(spec.method, spec.path, flavor) or Operation(
            f"{spec.method} {spec.path.split('?', 1)[0]}"
        )
        self.attempts: list[AttemptRecord] = []
        self._open: dict[NodeConfig, AttemptRecord] = {}
        self.retries = 0
        self.status: int | None = None
        self.error: BaseException | None = None
        self.duration = 0.0
        self.opaque_id: str | None = None
        """The ``X-Opaque-Id`` sent with every attempt (an instrument may set it)."""
        self.trace_id: str | None = None
        self.span_id: str | None = None
        """The call's span, hex, when a tracing instrument made one (for log records)."""
        self.state: dict[object, Any] = {}
        for instrument in instruments:
            _safely(instrument.call_started, self)

    @property
    def endpoint(self) -> str:
        return self.operation.name

    def attempt_sent(self, node: NodeConfig, number: int, now: float) -> dict[str, str]:
        """An attempt is about to be written to ``node``: the headers the instruments add."""
        attempt = self._open.get(node)
        if attempt is None:
            attempt = self._begin(node, number, now)
        attempt.sent = True
        for instrument in self.instruments:
            _safely(instrument.attempt_started, self, attempt)
        if self.opaque_id is not None:
            attempt.headers.setdefault("x-opaque-id", self.opaque_id)
        return attempt.headers

    def _begin(self, node: NodeConfig, number: int, now: float) -> AttemptRecord:
        attempt = AttemptRecord(node, number, now, hedge=bool(self._open))
        self._open[node] = attempt
        self.attempts.append(attempt)
        return attempt

    def attempt_done(
        self,
        node: NodeConfig,
        number: int,
        *,
        started: float,
        now: float,
        status: int | None,
        error: BaseException | None,
        outcome: str | None = None,
    ) -> None:
        attempt = self._open.pop(node, None)
        if attempt is None:  # failed before a byte was written (no connection, say)
            attempt = AttemptRecord(node, number, started, hedge=False)
            self.attempts.append(attempt)
        attempt.status = status
        attempt.error = error
        attempt.outcome = outcome or ("ok" if error is None else type(error).__name__)
        attempt.duration = now - attempt.started
        for instrument in self.instruments:
            _safely(instrument.attempt_ended, self, attempt)

    def retried(self) -> None:
        self.retries += 1

    def ended(self, now: float, status: int | None, error: BaseException | None) -> None:
        for node, attempt in list(self._open.items()):  # a hedged race's loser, say
            self.attempt_done(
                node,
                attempt.number,
                started=attempt.started,
                now=now,
                status=None,
                error=None,
                outcome="cancelled",
            )
        self.status = status
        self.error = error
        self.duration = now - self.started
        for instrument in self.instruments:
            _safely(instrument.call_ended, self)


class BatchScope:
    """One bulk request of a ``BulkIndexer``, from the moment it is sent until its items are
    settled (after the call itself has ended: the answer is read afterwards)."""

    __slots__ = (
        "actions",
        "duration",
        "instruments",
        "kind",
        "nbytes",
        "result",
        "started",
        "state",
    )

    def __init__(
        self,
        instruments: Sequence[Instrument],
        *,
        kind: str,
        actions: int,
        nbytes: int,
        started: float,
    ) -> None:
        self.instruments = instruments
        self.kind = kind
        self.actions = actions
        self.nbytes = nbytes
        self.started = started
        self.duration = 0.0
        self.result: dict[str, Any] = {}
        """The ``bulk.batch`` event's fields: outcome, succeeded, retried, dead_lettered..."""
        self.state: dict[object, Any] = {}
        for instrument in instruments:
            _safely(instrument.batch_started, self)

    def ended(self, now: float, result: dict[str, Any]) -> None:
        self.duration = now - self.started
        self.result = result
        for instrument in self.instruments:
            _safely(instrument.batch_ended, self)


def _safely(hook: Any, *args: Any) -> None:
    try:
        hook(*args)
    except Exception:  # an instrument must not break the call it observes
        logger.exception("instrument hook %r failed", hook)
