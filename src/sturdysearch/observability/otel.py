"""OpenTelemetry spans and metrics, following the semantic conventions for Elasticsearch client
calls (https://opentelemetry.io/docs/specs/semconv/database/elasticsearch/).

* A span per call (kind CLIENT), named ``{endpoint id} {index}`` (``search logs``) with
  ``db.system.name`` (``elasticsearch`` or ``opensearch``), ``db.operation.name`` (the endpoint
  id), ``db.collection.name`` (the index), ``db.operation.parameter.<part>`` (the path parts),
  ``http.request.method``, ``server.address``/``server.port`` and ``url.full`` of the node that
  answered, ``db.response.status_code``, ``error.type``, and the attempt and retry counts.
* A child span per attempt (kind CLIENT, named after the HTTP method), whose context travels to
  the server as ``traceparent``/``tracestate`` through the configured propagator;
  ``http.request.resend_count`` on retries, ``sturdysearch.hedge`` on a hedged one,
  ``sturdysearch.attempt.outcome`` ``cancelled`` for a hedged race's loser.
* A span per bulk batch (``bulk.batch``), the parent of its request's span, with the item
  counts by outcome.
* Metrics: ``db.client.operation.duration`` (s), ``sturdysearch.client.attempts`` by outcome,
  ``sturdysearch.client.retries``, ``sturdysearch.client.ejections``,
  ``sturdysearch.client.readmissions``, ``db.client.connection.count`` by state (idle/used)
  and ``sturdysearch.bulk.items`` by outcome.

Only ``opentelemetry-api`` is needed. Until the application configures a provider the
instrument reports itself disabled and the client builds nothing per call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from opentelemetry import metrics, propagate, trace
from opentelemetry.metrics import _internal as _metrics_internal
from opentelemetry.trace import SpanKind, Status, StatusCode

from sturdysearch._core.observe import AttemptRecord, BatchScope, CallScope

if TYPE_CHECKING:
    from sturdysearch._core.events import Event
    from sturdysearch.observability import Observability

SCOPE_NAME = "sturdysearch"
SCOPE_VERSION = "0.1.0"

#: Bucket boundaries the database conventions recommend for ``db.client.operation.duration``.
DURATION_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0)


def _global_set(module: Any, name: str) -> bool:
    """Whether the application installed a global provider: the API's own global, read
    without creating anything (the public getter would build a proxy and read the
    environment on every call)."""
    return getattr(module, name, None) is not None


class OpenTelemetryInstrument:
    """Traces and metrics of one client."""

    def __init__(
        self,
        observability: Observability,
        pool_stats: Callable[[], dict[str, dict[str, int]]],
    ) -> None:
        self._tracer_provider = observability.tracer_provider
        self._meter_provider = observability.meter_provider
        self._opaque_from_trace = (
            observability.opaque_id is None and observability.opaque_id_from_trace
        )
        self._pool_stats = pool_stats
        self._tracer: trace.Tracer | None = None
        self._meters: _Meters | None = None

    # -- is anybody listening ---------------------------------------------------------------

    def enabled(self) -> bool:
        if self._tracer is None and (
            self._tracer_provider is not None or _global_set(trace, "_TRACER_PROVIDER")
        ):
            # A provider, once set, stays: from then on this costs an attribute read per call.
            provider = self._tracer_provider or trace.get_tracer_provider()
            self._tracer = provider.get_tracer(SCOPE_NAME, SCOPE_VERSION)
        if self._meters is None and (
            self._meter_provider is not None or _global_set(_metrics_internal, "_METER_PROVIDER")
        ):
            provider = self._meter_provider or metrics.get_meter_provider()
            self._meters = _Meters(provider.get_meter(SCOPE_NAME, SCOPE_VERSION), self)
        return self._tracer is not None or self._meters is not None

    # -- calls --------------------------------------------------------------------------------

    @staticmethod
    def _system(scope: CallScope) -> str:
        return "opensearch" if scope.flavor == "opensearch" else "elasticsearch"

    def call_started(self, scope: CallScope) -> None:
        tracer = self._tracer
        if tracer is None:
            return
        op = scope.operation
        index = op.index
        attributes: dict[str, Any] = {
            "db.system.name": self._system(scope),
            "db.operation.name": op.name,
            "http.request.method": scope.spec.method,
        }
        if index is not None:
            attributes["db.collection.name"] = index
        if scope.cluster is not None:
            attributes["db.namespace"] = scope.cluster
        for key, value in op.parts:
            attributes[f"db.operation.parameter.{key}"] = value
        context = None
        if scope.parent is not None:
            batch_span = scope.parent.state.get(self)
            if batch_span is not None:
                context = trace.set_span_in_context(batch_span)
        span = tracer.start_span(
            f"{op.name} {index}" if index else op.name,
            context=context,
            kind=SpanKind.CLIENT,
            attributes=attributes,
        )
        scope.state[self] = span
        ids = span.get_span_context()
        if ids.is_valid:
            scope.trace_id = format(ids.trace_id, "032x")
            scope.span_id = format(ids.span_id, "016x")
            if self._opaque_from_trace and scope.opaque_id is None:
                scope.opaque_id = scope.trace_id

    def attempt_started(self, scope: CallScope, attempt: AttemptRecord) -> None:
        tracer = self._tracer
        call_span = scope.state.get(self)
        if tracer is None or call_span is None:
            return
        node = attempt.node
        attributes: dict[str, Any] = {
            "http.request.method": scope.spec.method,
            "server.address": node.host,
            "server.port": node.port,
            "url.full": node.url + scope.spec.target,
        }
        if attempt.number > 1:
            attributes["http.request.resend_count"] = attempt.number - 1
        if attempt.hedge:
            attributes["sturdysearch.hedge"] = True
        span = tracer.start_span(
            scope.spec.method,
            context=trace.set_span_in_context(call_span),
            kind=SpanKind.CLIENT,
            attributes=attributes,
        )
        attempt.state[self] = span
        propagate.inject(attempt.headers, context=trace.set_span_in_context(span))

    def attempt_ended(self, scope: CallScope, attempt: AttemptRecord) -> None:
        meters = self._meters
        if meters is not None:
            meters.attempts.add(
                1, {"db.system.name": self._system(scope), "outcome": attempt.outcome}
            )
        span = attempt.state.get(self)
        if span is None:
            call_span = scope.state.get(self)
            if call_span is None or self._tracer is None:
                return
            # failed before anything was sent (no connection): still an attempt of the call
            span = self._tracer.start_span(
                scope.spec.method,
                context=trace.set_span_in_context(call_span),
                kind=SpanKind.CLIENT,
                attributes={
                    "http.request.method": scope.spec.method,
                    "server.address": attempt.node.host,
                    "server.port": attempt.node.port,
                },
            )
        if attempt.status is not None:
            span.set_attribute("http.response.status_code", attempt.status)
        if attempt.outcome == "cancelled":
            span.set_attribute("sturdysearch.attempt.outcome", "cancelled")
        elif attempt.error is not None:
            span.set_attribute("error.type", _error_type(attempt.error, attempt.status))
            span.record_exception(attempt.error)
            span.set_status(Status(StatusCode.ERROR, type(attempt.error).__name__))
        span.end()

    def call_ended(self, scope: CallScope) -> None:
        attributes = self._metric_attributes(scope)
        meters = self._meters
        if meters is not None:
            meters.duration.record(scope.duration, attributes)
        span = scope.state.get(self)
        if span is None:
            return
        last = scope.attempts[-1] if scope.attempts else None
        answered = next(
            (a for a in reversed(scope.attempts) if a.outcome == "ok"),
            last,
        )
        if answered is not None:
            span.set_attribute("server.address", answered.node.host)
            span.set_attribute("server.port", answered.node.port)
            span.set_attribute("url.full", answered.node.url + scope.spec.target)
        if scope.status is not None:
            span.set_attribute("db.response.status_code", str(scope.status))
        span.set_attribute("sturdysearch.attempts", len(scope.attempts))
        span.set_attribute("sturdysearch.retries", scope.retries)
        if scope.error is not None:
            span.set_attribute("error.type", attributes["error.type"])
            span.record_exception(scope.error)
            span.set_status(Status(StatusCode.ERROR, str(scope.error)[:200]))
        span.end()

    def _metric_attributes(self, scope: CallScope) -> dict[str, Any]:
        attributes: dict[str, Any] = {
            "db.system.name": self._system(scope),
            "db.operation.name": scope.operation.name,
        }
        if scope.status is not None:
            attributes["db.response.status_code"] = str(scope.status)
        if scope.error is not None:
            attributes["error.type"] = _error_type(scope.error, scope.status)
        if scope.attempts:
            attributes["server.address"] = scope.attempts[-1].node.host
            attributes["server.port"] = scope.attempts[-1].node.port
        return attributes

    # -- bulk ---------------------------------------------------------------------------------

    def batch_started(self, batch: BatchScope) -> None:
        if self._tracer is None:
            return
        batch.state[self] = self._tracer.start_span(
            "bulk.batch",
            kind=SpanKind.INTERNAL,
            attributes={
                "db.operation.name": "bulk",
                "db.operation.batch.size": batch.actions,
                "sturdysearch.bulk.kind": batch.kind,
                "sturdysearch.bulk.bytes": batch.nbytes,
            },
        )

    def batch_ended(self, batch: BatchScope) -> None:
        result = batch.result
        meters = self._meters
        if meters is not None:
            for outcome in ("succeeded", "retried", "dead_lettered"):
                count = result.get(outcome) or 0
                if count:
                    meters.bulk_items.add(count, {"outcome": outcome})
        span = batch.state.get(self)
        if span is None:
            return
        for key in ("succeeded", "retried", "dead_lettered", "outcome"):
            value = result.get(key)
            if value is not None:
                span.set_attribute(f"sturdysearch.bulk.{key}", value)
        error = result.get("error")
        if error:
            span.set_attribute("error.type", str(error))
            span.set_status(Status(StatusCode.ERROR, str(error)))
        span.end()

    # -- rare events --------------------------------------------------------------------------

    def event(self, event: Event) -> None:
        meters = self._meters
        if meters is None:
            return
        node = event.fields.get("node")
        if event.name == "node.ejected":
            meters.ejections.add(1, {"sturdysearch.node": str(node)})
        elif event.name == "node.readmitted":
            meters.readmissions.add(1, {"sturdysearch.node": str(node)})
        elif event.name == "request.retry":
            meters.retries.add(1, {"error.type": str(event.fields.get("error"))})

    def pool_counts(self) -> dict[str, dict[str, int]]:
        return self._pool_stats()

    def connection_counts(self) -> Iterable[tuple[int, dict[str, Any]]]:
        for node, counts in self._pool_stats().items():
            yield counts.get("idle", 0), {"state": "idle", "db.client.connection.pool.name": node}
            yield counts.get("in_use", 0), {"state": "used", "db.client.connection.pool.name": node}


def _error_type(error: BaseException, status: int | None) -> str:
    """``error.type``: the status code for an answer the server refused (as the conventions
    ask), else the client's error class."""
    if status is not None and status >= 400:
        return str(status)
    return type(error).__name__


class _Meters:
    def __init__(self, meter: metrics.Meter, owner: OpenTelemetryInstrument) -> None:
        self.duration = meter.create_histogram(
            "db.client.operation.duration",
            unit="s",
            description="Duration of database client operations.",
            explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS),
        )
        self.attempts = meter.create_counter(
            "sturdysearch.client.attempts", unit="{attempt}", description="Attempts by outcome."
        )
        self.retries = meter.create_counter(
            "sturdysearch.client.retries", unit="{retry}", description="Retries granted."
        )
        self.ejections = meter.create_counter(
            "sturdysearch.client.ejections", unit="{ejection}", description="Nodes ejected."
        )
        self.readmissions = meter.create_counter(
            "sturdysearch.client.readmissions",
            unit="{readmission}",
            description="Ejected nodes back in rotation.",
        )
        self.bulk_items = meter.create_counter(
            "sturdysearch.bulk.items", unit="{item}", description="Bulk items by outcome."
        )

        def observe(options: metrics.CallbackOptions) -> Iterable[metrics.Observation]:
            for value, attributes in owner.connection_counts():
                yield metrics.Observation(value, attributes)

        meter.create_observable_up_down_counter(
            "db.client.connection.count",
            callbacks=[observe],
            unit="{connection}",
            description="Connections open to each node, by state.",
        )

        def totals(key: str) -> Callable[[metrics.CallbackOptions], Iterable[metrics.Observation]]:
            def observe_total(options: metrics.CallbackOptions) -> Iterable[metrics.Observation]:
                for node, counts in owner.pool_counts().items():
                    yield metrics.Observation(
                        counts.get(key, 0), {"db.client.connection.pool.name": node}
                    )

            return observe_total

        meter.create_observable_counter(
            "sturdysearch.client.connections.opened",
            callbacks=[totals("opened")],
            unit="{connection}",
            description="Connections opened to each node since the client started.",
        )
        meter.create_observable_counter(
            "sturdysearch.client.pool.waits",
            callbacks=[totals("waits")],
            unit="{wait}",
            description="Checkouts that waited for a free pooled connection.",
        )
