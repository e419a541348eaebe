"""Logs, traces and metrics of a client: the :class:`Observability` settings, and the
instruments they install on the client's tracer (see ``sturdysearch._core.observe``).

``Client(urls, observability=Observability(slow_call=2.0))``. The defaults already do the right
thing: records under the ``sturdysearch`` logger tree at sensible levels, OpenTelemetry spans
and metrics when ``opentelemetry-api`` is installed and the application configured a provider
(nothing at all otherwise), the W3C ``traceparent`` on every attempt, and the trace id as
``X-Opaque-Id`` so that the server's slow logs and ``_tasks`` lead back to the trace.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sturdysearch._core.timeouts import check_seconds
from sturdysearch.errors import ConfigError

if TYPE_CHECKING:
    from sturdysearch._core.events import Tracer

__all__ = ["Observability"]


@dataclass(frozen=True, slots=True)
class Observability:
    """How a client reports what it does. Validated at construction."""

    opentelemetry: bool | None = None
    """``None``: spans and metrics when ``opentelemetry-api`` is installed (the ``otel`` extra)
    and a provider is configured, nothing otherwise; ``False``: never; ``True``: required
    (a :class:`~sturdysearch.errors.ConfigError` when the package is missing)."""
    tracer_provider: Any = None
    """An OpenTelemetry ``TracerProvider`` to use instead of the global one."""
    meter_provider: Any = None
    """An OpenTelemetry ``MeterProvider`` to use instead of the global one."""
    slow_call: float | None = None
    """Seconds: a call that takes longer is logged at WARNING on ``sturdysearch.transport``
    (endpoint, path, node, attempts, status, duration, opaque id, trace id). ``None``: off."""
    opaque_id: str | Callable[[], str | None] | None = None
    """The ``X-Opaque-Id`` of every call: a fixed string (the service's name: the servers
    deduplicate deprecation warnings per value), or a function called per call. A call's own
    ``headers={"X-Opaque-Id": ...}`` wins over it."""
    opaque_id_from_trace: bool = True
    """Without ``opaque_id``, send the active trace's id as ``X-Opaque-Id`` when there is one."""
    dead_letter_log_interval: float = 60.0
    """Seconds between the WARNING summaries a ``BulkIndexer`` logs while it dead-letters
    documents (one more summary is logged when it closes)."""

    def __post_init__(self) -> None:
        if self.opentelemetry not in (None, True, False):
            raise ConfigError(f"opentelemetry={self.opentelemetry!r} must be None, True or False")
        if self.slow_call is not None:
            check_seconds("slow_call", self.slow_call)
        check_seconds("dead_letter_log_interval", self.dead_letter_log_interval)
        if isinstance(self.opaque_id, str):
            if not self.opaque_id or any(c in self.opaque_id for c in "\r\n"):
                raise ConfigError("opaque_id must be a non-empty string without line breaks")
        elif self.opaque_id is not None and not callable(self.opaque_id):
            raise ConfigError(
                f"opaque_id={self.opaque_id!r} must be a string, a function returning one, or None"
            )
        if self.opentelemetry is True and not otel_installed():
            raise ConfigError(
                "opentelemetry=True needs the OpenTelemetry API: pip install 'sturdysearch[otel]'"
            )
        if (self.tracer_provider is not None or self.meter_provider is not None) and (
            self.opentelemetry is False
        ):
            raise ConfigError("a tracer_provider/meter_provider was given with opentelemetry=False")

    def wants_otel(self) -> bool:
        if self.opentelemetry is False:
            return False
        return otel_installed()


def otel_installed() -> bool:
    try:
        return importlib.util.find_spec("opentelemetry.trace") is not None
    except (ImportError, ValueError):  # a parent blocked or half-imported
        return False


def install(
    observability: Observability,
    tracer: Tracer,
    pool_stats: Callable[[], dict[str, dict[str, int]]],
) -> None:
    """Put the instruments ``observability`` asks for on ``tracer``."""
    from sturdysearch.observability.logs import CallLogger, OpaqueIds

    tracer.dead_letter_log_interval = observability.dead_letter_log_interval

    if observability.wants_otel():
        from sturdysearch.observability.otel import OpenTelemetryInstrument

        tracer.instrument(OpenTelemetryInstrument(observability, pool_stats))
    if callable(observability.opaque_id):
        tracer.instrument(OpaqueIds(observability.opaque_id))
    tracer.instrument(CallLogger(tracer, observability.slow_call))
