"""Condensing node output into something worth putting in an exception message.

A plain tail is often useless: when the JVM options parser fails it prints the whole
``-XX:+PrintFlagsFinal`` table (hundreds of lines) after the actual error. So the summary drops
such noise and puts the error-looking lines first.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

_READ_BYTES = 256 * 1024
_FLAG_DUMP_RE = re.compile(r"^\s*\w+\s+\w+\s+=.*\{[^}]*\}\s*(\{[^}]*\})?\s*$")
_ERROR_RE = re.compile(r"(Exception|Error|ERROR|FATAL|fatal|refused|denied)")


def read_tail_text(path: Path, limit: int = _READ_BYTES) -> str:
    """The last ``limit`` bytes of a file as text ('' if it cannot be read)."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - limit))
            return handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def summarize(text: str, lines: int = 40, error_lines: int = 15) -> str:
    """The last ``lines`` meaningful lines, preceded by earlier error lines they would miss."""
    kept = [line for line in text.splitlines() if not _FLAG_DUMP_RE.match(line)]
    tail = kept[-lines:]
    earlier = [line for line in kept[:-lines] if _ERROR_RE.search(line)][-error_lines:]
    if earlier:
        return "\n".join([*earlier, "[...]", *tail])
    return "\n".join(tail)
