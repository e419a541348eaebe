"""What a load shows while it runs, on stderr (stdout holds only the summary, for scripts).

Three kinds, chosen by :func:`display_for`:

* a rich progress bar on one line, sized to the terminal (``loading ━━━━ 45% 12.3 MB
  1,234 ok 5 dead 0:00:12``), when stderr is a terminal and rich (the ``cli`` extra) is
  installed;
* plain lines, one when the load starts and one every :data:`PLAIN_INTERVAL` seconds, when
  stderr is not a terminal (a log file, CI) or rich is missing: the command works without the
  extra rather than fail on an import;
* nothing but messages with ``--no-progress``.

Every kind prints messages (``note``) the same way, above the bar when there is one, and takes
the indexer's stats from its threads (``stats``) and the bytes read from the main thread
(``advance``). ``final`` shows the end state once more, so that the last frame and the summary
printed after it agree.
"""

from __future__ import annotations

import sys
import threading
import time
from types import TracebackType
from typing import Any

PLAIN_INTERVAL = 10.0
"""Seconds between two plain progress lines."""


def _size(n: float) -> str:
    """Bytes in decimal units, as rich shows them (``12.3 MB``)."""
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1000
    return f"{n:,.1f} TB"  # not reached


def _clock(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


class Display:
    """No progress, only messages (``--no-progress``); the base of the others."""

    def __init__(self, what: str, total: int | None) -> None:
        self.what = what
        self.total = total
        self.read = 0
        self.ok = 0
        self.dead = 0
        self.started = time.monotonic()
        self._lock = threading.Lock()

    def __enter__(self) -> Display:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def begin(self, message: str) -> None:
        """Say that the load started (and how to stop it)."""

    def note(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    def advance(self, nbytes: int) -> None:
        self.read += nbytes

    def stats(self, stats: Any) -> None:
        with self._lock:
            self.ok = max(self.ok, stats.succeeded)
            self.dead = max(self.dead, stats.dead_lettered)

    def final(self, stats: Any) -> None:
        with self._lock:
            self.ok = stats.succeeded
            self.dead = stats.dead_lettered


class PlainDisplay(Display):
    """Plain lines on stderr: one at the start, then one every ``PLAIN_INTERVAL`` seconds."""

    def __init__(self, what: str, total: int | None) -> None:
        super().__init__(what, total)
        self._next = self.started + PLAIN_INTERVAL

    def begin(self, message: str) -> None:
        self.note(message)

    def line(self) -> str:
        read = _size(self.read)
        if self.total:
            read = f"{self.read * 100 // self.total}% of {_size(self.total)}"
        elapsed = _clock(time.monotonic() - self.started)
        return f"{self.what}: {read} read, {self.ok:,} ok, {self.dead:,} dead, {elapsed}"

    def _tick(self) -> None:
        now = time.monotonic()
        with self._lock:
            if now < self._next:
                return
            self._next = now + PLAIN_INTERVAL
        self.note(self.line())

    def advance(self, nbytes: int) -> None:
        super().advance(nbytes)
        self._tick()

    def stats(self, stats: Any) -> None:
        super().stats(stats)
        self._tick()


class RichDisplay(Display):
    """A one-line rich progress bar on stderr, as wide as the terminal."""

    def __init__(self, what: str, total: int | None) -> None:
        super().__init__(what, total)
        from rich.console import Console
        from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn
        from rich.text import Text

        display = self

        class Elapsed(ProgressColumn):
            """The time since the load started, until ``final`` (rich's own column stops
            when the input is read, while the indexer still has documents to send)."""

            def render(self, task: Task) -> Text:
                end = display.ended if display.ended is not None else time.monotonic()
                return Text(_clock(end - display.started), style="progress.elapsed")

        self.ended: float | None = None
        self._console = Console(stderr=True)
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(bar_width=None),
            TextColumn("{task.fields[percent]}"),
            TextColumn("{task.fields[size]}"),
            TextColumn("[green]{task.fields[ok]:,} ok"),
            TextColumn("[red]{task.fields[dead]:,} dead"),
            Elapsed(),
            console=self._console,
            expand=True,
            transient=False,
        )
        self._task = self._progress.add_task(
            what, total=total, percent="", size=_size(0), ok=0, dead=0
        )

    def __enter__(self) -> RichDisplay:
        self._progress.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._progress.__exit__(exc_type, exc, tb)

    def note(self, message: str) -> None:
        self._progress.console.print(message, markup=False, highlight=False)

    def _fields(self) -> dict[str, Any]:
        percent = f"{self.read * 100 // self.total:>3}%" if self.total else ""
        return {"percent": percent, "size": _size(self.read), "ok": self.ok, "dead": self.dead}

    def advance(self, nbytes: int) -> None:
        super().advance(nbytes)
        self._progress.update(self._task, completed=self.read, **self._fields())

    def stats(self, stats: Any) -> None:
        super().stats(stats)
        self._progress.update(self._task, **self._fields())

    def final(self, stats: Any) -> None:
        super().final(stats)
        self.ended = time.monotonic()
        self._progress.update(self._task, completed=self.read, **self._fields())
        self._progress.refresh()


def display_for(what: str, total: int | None, *, progress: bool) -> Display:
    """The display for this run: none with ``progress=False``, else a bar on a terminal when
    rich is installed, plain lines otherwise."""
    if not progress:
        return Display(what, total)
    if sys.stderr.isatty():
        try:
            return RichDisplay(what, total)
        except ImportError:
            pass  # no cli extra: plain lines instead of a bar
    return PlainDisplay(what, total)
