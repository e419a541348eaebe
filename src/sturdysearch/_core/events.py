"""The one trace hook: every attempt, retry, ejection, probe and bulk outcome passes through
:func:`Tracer.emit`.

Structured logs, OpenTelemetry and metrics subscribe here instead of being threaded through the
call paths. With no subscriber and DEBUG logging off, an emit costs one cached level check.
Secrets never reach an event: the fields are node URLs (credential-free), methods, paths,
statuses, durations and error classes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger("sturdysearch")
logger.addHandler(logging.NullHandler())


@dataclass(frozen=True, slots=True)
class Event:
    """``name`` is dotted (``request.attempt``, ``node.ejected``); ``fields`` are plain values."""

    name: str
    fields: dict[str, Any] = field(default_factory=dict)


Listener = Callable[[Event], None]


class Tracer:
    """Fan-out of events to listeners and to the ``sturdysearch`` logger at DEBUG."""

    __slots__ = ("_listeners",)

    def __init__(self) -> None:
        self._listeners: tuple[Listener, ...] = ()

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Add ``listener``; returns a function that removes it."""
        self._listeners = (*self._listeners, listener)

        def unsubscribe() -> None:
            self._listeners = tuple(x for x in self._listeners if x is not listener)

        return unsubscribe

    @property
    def active(self) -> bool:
        """Whether anyone listens; lets callers skip building expensive fields."""
        return bool(self._listeners) or logger.isEnabledFor(logging.DEBUG)

    def emit(self, name: str, **fields: Any) -> None:
        debug = logger.isEnabledFor(logging.DEBUG)
        if not debug and not self._listeners:
            return
        event = Event(name, fields)
        if debug:
            logger.debug("%s %s", name, fields, extra={"sturdysearch_event": event})
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:  # a broken listener must not break the call it observes
                logger.exception("event listener %r failed on %s", listener, name)
