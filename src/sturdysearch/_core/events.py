"""The one trace hook: every attempt, retry, ejection, probe and bulk outcome passes through
:func:`Tracer.emit`, and every call through the :class:`Tracer`'s instruments.

Two kinds of subscribers plug in here instead of being threaded through the call paths:

* listeners (:meth:`Tracer.subscribe`) receive every :class:`Event`;
* instruments (:meth:`Tracer.instrument`, see :mod:`sturdysearch._core.observe`) receive a
  scope per call, attempt and bulk batch, which spans and metrics need.

Events also become log records under the ``sturdysearch`` logger tree, at the level their name
says (:data:`LEVELS`): a retry is INFO, an ejection WARNING, an attempt DEBUG, so that a
healthy steady state logs nothing above DEBUG. Each record carries the event's fields as
attributes (``node``, ``method``, ``path``, ``status``, ``attempt``, ``duration_ms``,
``error_type``...) for :class:`sturdysearch.logging.JsonFormatter`. With no subscriber and the
frequent events' level (DEBUG) off, an emit costs one cached level check.

Secrets never reach an event: the fields are node URLs (credential-free), methods, paths,
statuses, durations and error classes.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sturdysearch._core.observe import BatchScope, CallScope, Instrument

if TYPE_CHECKING:
    from sturdysearch._core.request import RequestSpec

logger = logging.getLogger("sturdysearch")
logger.addHandler(logging.NullHandler())

#: The loggers events go to, by the first part of their name.
LOGGERS = {
    "request": logging.getLogger("sturdysearch.transport"),
    "retry": logging.getLogger("sturdysearch.transport"),
    "node": logging.getLogger("sturdysearch.nodes"),
    "nodes": logging.getLogger("sturdysearch.nodes"),
    "bulk": logging.getLogger("sturdysearch.bulk"),
}

#: Events logged above DEBUG. Everything else (attempts, probes, hedges, batches) is DEBUG.
LEVELS = {
    "request.retry": logging.INFO,
    "request.slow": logging.WARNING,
    "retry.budget_exhausted": logging.WARNING,
    "node.ejected": logging.WARNING,
    "node.readmitted": logging.INFO,
    "nodes.sniffed": logging.INFO,
    "bulk.dead_letter_summary": logging.WARNING,
    "bulk.unanswered": logging.WARNING,
    "bulk.aborted": logging.ERROR,
}


@dataclass(frozen=True, slots=True)
class Event:
    """``name`` is dotted (``request.attempt``, ``node.ejected``); ``fields`` are plain values."""

    name: str
    fields: dict[str, Any] = field(default_factory=dict)


Listener = Callable[[Event], None]


def describe(event: Event) -> str:
    """The sentence an event is logged with (for a program that shows events itself, as the
    command line does on stderr)."""
    return _message(event.name, event.fields)


def _message(name: str, f: dict[str, Any]) -> str:
    """The human sentence of an event; the fields stay on the record for machines."""
    node = f.get("node")
    if name == "request.attempt":
        ms = f.get("duration", 0.0) * 1000
        return (
            f"{f.get('method')} {f.get('path')} on {node}: attempt {f.get('attempt')} "
            f"{f.get('outcome')} (status {f.get('status')}, {ms:.1f} ms)"
        )
    if name == "request.retry":
        return (
            f"{f.get('method')} {f.get('path')}: attempt {f.get('attempt')} on {node} failed "
            f"with {f.get('error')}; retrying in {f.get('delay', 0.0):.3g} s"
        )
    if name == "retry.budget_exhausted":
        return (
            f"{f.get('path')}: not retried after a failure on {node}: the retry budget is spent "
            f"({f.get('denied')} retries denied so far); the cluster is struggling"
        )
    if name == "node.ejected":
        live = f.get("live")
        if live == 0:
            then = "no node is live now: calls wait for the probes"
        elif live is None:
            then = "calls go to the other nodes"
        else:
            then = f"calls go to the {live} live node{'s' if live != 1 else ''} left"
        return (
            f"node {node} ejected after {f.get('reason')}; {then}, and it is probed with "
            "backoff until it answers"
        )
    if name == "node.readmitted":
        return f"node {node} answers again and is back in rotation"
    if name == "node.probe":
        result = "ok" if f.get("ok") else f"failed: {f.get('error')}"
        return f"probe of {node} ({f.get('by')}) {result}"
    if name == "nodes.sniffed":
        return f"sniffing: nodes added {f.get('added')}, removed {f.get('removed')}"
    if name == "request.slow":
        return (
            f"slow call: {f.get('endpoint')} {f.get('method')} {f.get('path')} took "
            f"{f.get('duration_ms', 0.0):.0f} ms (threshold {f.get('threshold_ms', 0.0):.0f} ms, "
            f"{f.get('attempts')} attempt(s), status {f.get('status')})"
        )
    if name == "bulk.dead_letter_summary":
        when = "in all, at close" if f.get("closing") else f"(total {f.get('total')})"
        return (
            f"bulk: {f.get('count')} document(s) dead-lettered {when}, written to "
            f"{f.get('file')}; first reasons: {'; '.join(f.get('reasons') or [])}"
        )
    if name == "bulk.unanswered":
        return (
            f"bulk: no answer from the cluster ({f.get('error')}: {f.get('message')}); the load "
            f"stops unless one comes within {f.get('abort_after', 0.0):g} s (abort_after)"
        )
    if name == "bulk.aborted":
        return (
            f"bulk: the load stopped: {f.get('reason')}; what it held is dead-lettered in "
            f"{f.get('file')}"
        )
    shown = " ".join(f"{k}={v}" for k, v in f.items())
    return f"{name} {shown}" if shown else name


#: Event fields copied onto log records under these attribute names.
_RECORD_FIELDS = {
    "node": "node",
    "method": "method",
    "path": "path",
    "endpoint": "endpoint",
    "status": "status",
    "attempt": "attempt",
    "outcome": "outcome",
    "error": "error_type",
    "opaque_id": "opaque_id",
    "trace_id": "trace_id",
    "span_id": "span_id",
}


def record_extra(event: Event) -> dict[str, Any]:
    """The ``extra=`` of an event's log record: the curated fields, and the event itself."""
    f = event.fields
    extra: dict[str, Any] = {"sturdysearch_event": event}
    for key, attr in _RECORD_FIELDS.items():
        value = f.get(key)
        if value is not None:
            extra[attr] = value
    if "duration" in f and f["duration"] is not None:
        extra["duration_ms"] = round(f["duration"] * 1000, 3)
    elif "duration_ms" in f:
        extra["duration_ms"] = f["duration_ms"]
    if "reason" in f and "error_type" not in extra:
        extra["error_type"] = f["reason"]
    return extra


def current_trace_ids() -> dict[str, str]:
    """``trace_id``/``span_id`` of the OpenTelemetry span active here, if OpenTelemetry is in
    use (already imported: a log record never imports it) and a span is recording."""
    otel_trace = sys.modules.get("opentelemetry.trace")
    if otel_trace is None:
        return {}
    try:
        context = otel_trace.get_current_span().get_span_context()
    except Exception:  # a broken or foreign module: no ids rather than no log record
        return {}
    if not context.is_valid:
        return {}
    return {
        "trace_id": format(context.trace_id, "032x"),
        "span_id": format(context.span_id, "016x"),
    }


class Tracer:
    """Fan-out of events to listeners, instruments and the ``sturdysearch`` loggers; the
    factory of call and batch scopes."""

    __slots__ = ("_instruments", "_listeners", "cluster", "dead_letter_log_interval", "flavor")

    def __init__(self) -> None:
        self._listeners: tuple[Listener, ...] = ()
        self._instruments: tuple[Instrument, ...] = ()
        self.flavor: str | None = None
        """The detected server flavor (the client sets it), for operation names."""
        self.cluster: str | None = None
        """The detected cluster name (the client sets it), for ``db.namespace``."""
        self.dead_letter_log_interval = 60.0
        """Seconds between a bulk load's dead-letter WARNING summaries (``Observability``)."""

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Add ``listener``; returns a function that removes it."""
        self._listeners = (*self._listeners, listener)

        def unsubscribe() -> None:
            self._listeners = tuple(x for x in self._listeners if x is not listener)

        return unsubscribe

    def instrument(self, instrument: Instrument) -> Callable[[], None]:
        """Add ``instrument``; returns a function that removes it."""
        self._instruments = (*self._instruments, instrument)

        def remove() -> None:
            self._instruments = tuple(x for x in self._instruments if x is not instrument)

        return remove

    @property
    def instruments(self) -> tuple[Instrument, ...]:
        return self._instruments

    @property
    def active(self) -> bool:
        """Whether anyone listens to the frequent (DEBUG) events; lets callers skip building
        their fields. Rare events (retries, ejections) are emitted regardless."""
        return bool(self._listeners) or logger.isEnabledFor(logging.DEBUG)

    def call_scope(
        self, spec: RequestSpec, now: float, parent: BatchScope | None = None
    ) -> CallScope | None:
        """The scope of a call starting now, or ``None`` when no instrument is enabled."""
        enabled = self._enabled()
        if not enabled:
            return None
        return CallScope(spec, now, enabled, self.flavor, parent, self.cluster)

    def batch_scope(self, *, kind: str, actions: int, nbytes: int, now: float) -> BatchScope | None:
        """The scope of a bulk request about to be sent, or ``None`` (nobody instruments)."""
        enabled = self._enabled()
        if not enabled:
            return None
        return BatchScope(enabled, kind=kind, actions=actions, nbytes=nbytes, started=now)

    def _enabled(self) -> list[Instrument]:
        """The instruments that want this call (or batch); empty at the cost of one check when
        there are none."""
        instruments = self._instruments
        if not instruments:
            return []
        return [i for i in instruments if i.enabled()]

    def emit(self, name: str, **fields: Any) -> None:
        level = LEVELS.get(name, logging.DEBUG)
        target = LOGGERS.get(name.split(".", 1)[0], logger)
        logs = target.isEnabledFor(level)
        if not logs and not self._listeners and not self._instruments:
            return
        event = Event(name, fields)
        if logs:
            extra = record_extra(event)
            if "trace_id" not in extra:
                extra.update(current_trace_ids())
            target.log(level, "%s", _message(name, fields), extra=extra)
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:  # a broken listener must not break the call it observes
                logger.exception("event listener %r failed on %s", listener, name)
        for instrument in self._instruments:
            hook = getattr(instrument, "event", None)
            if hook is not None:
                try:
                    hook(event)
                except Exception:
                    logger.exception("instrument %r failed on %s", instrument, name)
