"""Ctrl-C during a bulk load: the first stops reading, the second aborts.

A load interrupted by ``KeyboardInterrupt`` at a random point leaves nobody knowing what was
indexed. So while a load runs, SIGINT gets its own handler: the first one sets a flag that the
reading loop checks (and ends a read blocked on a pipe, see ``inputs.Watch``), and the load then
finishes what it holds and reports, as a normal run does, where to resume. The second one
raises ``KeyboardInterrupt`` to abort, and puts the previous handler back, so a third one acts
as it always does. The handler is installed only for the load and restored after it.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType
from typing import Any

from sturdysearch.cli.inputs import StopReading, Watch


class Interrupts:
    """``with Interrupts(watch) as interrupts:`` around a load; ``interrupts.count`` says how
    many Ctrl-C came. Outside the main thread (where Python cannot set handlers), or where SIGINT
    is ignored (``nohup``), nothing is installed."""

    def __init__(self, watch: Watch) -> None:
        self.watch = watch
        self.count = 0
        self._previous: Any = None
        self._installed = False

    @property
    def stop_requested(self) -> bool:
        return self.count > 0

    def __enter__(self) -> Interrupts:
        if threading.current_thread() is not threading.main_thread():
            return self
        previous = signal.getsignal(signal.SIGINT)
        if previous is signal.SIG_IGN:
            return self
        self._previous = previous if previous is not None else signal.default_int_handler
        signal.signal(signal.SIGINT, self._handle)
        self._installed = True
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._restore()

    def _restore(self) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
            self._installed = False

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.count += 1
        if self.count == 1:
            self.watch.stopped = True
            if self.watch.waiting:
                raise StopReading
            return
        self._restore()
        raise KeyboardInterrupt
