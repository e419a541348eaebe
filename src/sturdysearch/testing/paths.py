"""Where the harness keeps things between runs."""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path

SYSTEM_CACHE_DIR = Path("/var/cache/sturdysearch")


def cache_root(env: Mapping[str, str] | None = None) -> Path:
    """The per-user cache: ``$STURDY_CACHE_DIR``, else ``$XDG_CACHE_HOME/sturdysearch``.

    Falls back to ``~/.cache/sturdysearch`` per the XDG base-directory spec, which says a
    relative ``XDG_CACHE_HOME`` must be ignored.
    """
    environ = os.environ if env is None else env
    override = environ.get("STURDY_CACHE_DIR")
    if override:
        return Path(override)
    xdg = environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "sturdysearch"


def traversable_by(path: Path, uid: int, gid: int) -> bool:
    """Whether every existing ancestor of ``path`` lets ``uid`` look inside it.

    Used to decide whether the unprivileged node user can read files under the caller's cache
    (root's home is usually 0700). Supplementary groups are ignored, which errs on the side of
    "not traversable" and merely costs a copy elsewhere.
    """
    if uid == 0:
        return True
    current = path.absolute()
    for directory in (current, *current.parents):
        try:
            info = directory.stat()
        except FileNotFoundError:
            continue
        except OSError:
            return False
        if info.st_uid == uid:
            allowed = bool(info.st_mode & stat.S_IXUSR)
        elif info.st_gid == gid:
            allowed = bool(info.st_mode & stat.S_IXGRP)
        else:
            allowed = bool(info.st_mode & stat.S_IXOTH)
        if not allowed:
            return False
    return True
