"""A JSON log formatter with Elastic Common Schema field names, for logs shipped to
Elasticsearch or OpenSearch::

    handler = logging.StreamHandler()
    handler.setFormatter(sturdysearch.logging.JsonFormatter())
    logging.getLogger("sturdysearch").addHandler(handler)

One JSON object per line: ``@timestamp``, ``log.level``, ``message``, ``ecs.version``, then
``log.logger``, ``log.origin``, ``process``, ``error`` (from ``exc_info``), and the structured
fields sturdysearch puts on its records in ECS terms: ``http.request.method``, ``url.path``,
``http.response.status_code``, ``server.address``/``server.port`` (the node),
``event.action`` (the event name), ``event.duration`` (nanoseconds), ``error.type``,
``http.request.id`` (the ``X-Opaque-Id``), ``trace.id``/``span.id``; the rest under
``sturdysearch.*``. Other ``extra=`` fields of the application's own records are kept under
their names. It works for any logger, not only sturdysearch's.

Nothing secret is on sturdysearch's records (no bodies, headers or credentials); this formatter
adds nothing but what the record carries.
"""

from __future__ import annotations

import logging
import traceback
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

import orjson

__all__ = ["ECS_VERSION", "JsonFormatter"]

ECS_VERSION = "8.11.0"

#: Attributes every ``LogRecord`` has: not extras.
_STANDARD = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys() | {"message", "asctime", "taskName"}
)

#: sturdysearch's record fields, in ECS terms.
_ECS = {
    "method": ("http", "request", "method"),
    "path": ("url", "path"),
    "status": ("http", "response", "status_code"),
    "error_type": ("error", "type"),
    "opaque_id": ("http", "request", "id"),
    "trace_id": ("trace", "id"),
    "span_id": ("span", "id"),
    "endpoint": ("sturdysearch", "endpoint"),
    "attempt": ("sturdysearch", "attempt"),
    "attempts": ("sturdysearch", "attempts"),
    "retries": ("sturdysearch", "retries"),
    "outcome": ("sturdysearch", "outcome"),
    "duration_ms": ("sturdysearch", "duration_ms"),
}


def _put(doc: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    target = doc
    for key in path[:-1]:
        inner = target.get(key)
        if not isinstance(inner, dict):
            inner = {}
            target[key] = inner
        target = inner
    target[path[-1]] = value


class JsonFormatter(logging.Formatter):
    """ECS JSON, one object per line. ``extra_fields`` adds constant fields to every record
    (``{"service.name": "checkout"}``; dotted names nest)."""

    def __init__(self, *, extra_fields: dict[str, Any] | None = None) -> None:
        super().__init__()
        self._constant = dict(extra_fields or {})

    def format(self, record: logging.LogRecord) -> str:
        return orjson.dumps(self.document(record), default=str).decode()

    def document(self, record: logging.LogRecord) -> dict[str, Any]:
        """The record as an ECS document (a dict), before serialization."""
        stamp = datetime.fromtimestamp(record.created, tz=timezone.utc)
        doc: dict[str, Any] = {
            "@timestamp": stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "log.level": record.levelname.lower(),
            "message": record.getMessage(),
            "ecs.version": ECS_VERSION,
        }
        _put(doc, ("log", "logger"), record.name)
        _put(doc, ("log", "origin", "function"), record.funcName)
        _put(doc, ("log", "origin", "file", "name"), record.filename)
        _put(doc, ("log", "origin", "file", "line"), record.lineno)
        _put(doc, ("process", "pid"), record.process)
        _put(doc, ("process", "thread", "name"), record.threadName)
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            _put(doc, ("error", "type"), type(exc).__name__)
            _put(doc, ("error", "message"), str(exc))
            _put(doc, ("error", "stack_trace"), "".join(traceback.format_exception(exc)))
        event = getattr(record, "sturdysearch_event", None)
        if event is not None:
            _put(doc, ("event", "action"), event.name)
            _put(doc, ("event", "dataset"), "sturdysearch")
        for key, value in vars(record).items():
            if key in _STANDARD or key == "sturdysearch_event" or value is None:
                continue
            if key == "node":
                self._node(doc, str(value))
            elif key == "duration_ms":
                _put(doc, ("event", "duration"), int(float(value) * 1_000_000))
                _put(doc, _ECS[key], value)
            elif key in _ECS:
                _put(doc, _ECS[key], value)
            else:
                _put(doc, tuple(key.split(".")), value)
        for key, value in self._constant.items():
            _put(doc, tuple(key.split(".")), value)
        return doc

    @staticmethod
    def _node(doc: dict[str, Any], url: str) -> None:
        _put(doc, ("sturdysearch", "node"), url)
        try:
            parts = urlsplit(url)
            if parts.hostname:
                _put(doc, ("server", "address"), parts.hostname)
            if parts.port:
                _put(doc, ("server", "port"), parts.port)
        except ValueError:
            pass
