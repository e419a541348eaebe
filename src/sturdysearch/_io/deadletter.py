"""The dead-letter file: append-only JSON lines, private to its owner, synced on close.

Each group of records is handed to the kernel with ``os.write`` as soon as it exists (no
user-space buffer that a crash would lose); ``close()`` fsyncs. A write that fails (disk full,
file system read-only, quota) raises ``OSError`` to the indexer, which stops taking documents.
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading
from datetime import datetime, timezone


def default_path(index: str | None) -> str:
    """``<index>-dead-letters-<UTC time>-<pid>.jsonl`` in the working directory."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    name = (index or "bulk").replace("/", "_").replace(",", "_").replace("*", "_")
    return f"{name}-dead-letters-{stamp}-{os.getpid()}.jsonl"


class DeadLetterFile:
    """Opens (creating with mode 0600, or appending to) ``path`` at once, so that a path that
    cannot be written fails before any document is taken. Thread-safe."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._lock = threading.Lock()
        flags = os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC
        try:
            self._fd = os.open(self.path, flags | os.O_CREAT | os.O_EXCL, 0o600)
            self._created = True
        except FileExistsError:
            self._fd = os.open(self.path, flags)
            self._created = False
        self.records = 0
        self.closed = False

    def write(self, records: list[bytes]) -> None:
        """Append the records (each a JSON line with its newline); raises ``OSError``."""
        data = memoryview(b"".join(records))
        with self._lock:
            if self.closed:
                raise OSError(errno.EBADF, "the dead-letter file is closed", self.path)
            while data:
                written = os.write(self._fd, data)
                data = data[written:]
            self.records += len(records)

    def close(self) -> None:
        """fsync and close. A file this object created and never wrote to is removed, so that a
        clean run leaves nothing behind. Raises ``OSError`` if the data could not be synced."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
            try:
                if self.records:
                    try:
                        os.fsync(self._fd)
                    except OSError as exc:
                        if exc.errno != errno.EINVAL:  # a pipe or device cannot be synced
                            raise
            finally:
                os.close(self._fd)
            if self._created and not self.records:
                with contextlib.suppress(OSError):
                    os.unlink(self.path)
