"""Opening a dead-letter file to replay, for both drivers' ``replay_dead_letters``."""

from __future__ import annotations

import os
import time
from typing import BinaryIO

from sturdysearch.errors import ConfigError


def open_replay(
    path: str | os.PathLike[str], dead_letter: str | os.PathLike[str] | None
) -> tuple[str, str, BinaryIO]:
    """``(source path, the replay's own dead-letter file, the source opened for reading)``.

    What still fails goes to ``dead_letter``, by default ``<path>.replay-<UTC time>.jsonl``,
    never back into ``path``: a replay that appended to the file it reads would read its own
    failures again."""
    source = os.fspath(path)
    if dead_letter is None:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        dead_letter = f"{source}.replay-{stamp}.jsonl"
    target = os.fspath(dead_letter)
    if os.path.abspath(target) == os.path.abspath(source):
        raise ConfigError("the replay's dead-letter file must not be the file being replayed")
    return source, target, open(source, "rb")  # the caller closes it
