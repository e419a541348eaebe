"""Per-cluster working directories (config, data, logs) under the temp directory.

A cluster normally deletes its directory when it stops. When the process that started it is
SIGKILLed, the kernel still kills the nodes but nobody deletes the files; the next cluster
started on the machine sweeps such leftovers. A directory is stale only when the process that
created it is gone *and* no live process mentions it on its command line (the nodes of a
``sturdysearch cluster start`` outlive their creator on purpose).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from sturdysearch.testing import processes
from sturdysearch.testing.node_user import NodeUser
from sturdysearch.testing.paths import traversable_by
from sturdysearch.testing.specs import ServerSpec

PREFIX = "sturdysearch-"
OWNER_FILE = "owner.json"


def workdir_base(user: NodeUser) -> Path:
    """The temp directory, unless the node user cannot reach it (e.g. TMPDIR under /root)."""
    base = Path(tempfile.gettempdir())
    if not user.is_current and not traversable_by(base, user.uid, user.gid):
        base = Path("/tmp")
    return base


def make_workdir(spec: ServerSpec, user: NodeUser) -> Path:
    workdir = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{spec.id}-", dir=workdir_base(user)))
    me = processes.read_process(os.getpid())
    owner = {"pid": me.pid if me else 0, "start_ticks": me.start_ticks if me else 0}
    (workdir / OWNER_FILE).write_text(json.dumps(owner), encoding="utf-8")
    return workdir


def sweep_stale_workdirs(base: Path) -> list[Path]:
    """Deletes leftover working directories; returns the ones removed."""
    candidates = [p for p in base.glob(f"{PREFIX}*") if (p / OWNER_FILE).is_file()]
    if not candidates:
        return []
    live = processes.list_processes()
    removed = []
    for workdir in candidates:
        if _owner_alive(workdir, live):
            continue
        marker = str(workdir)
        if any(marker in arg for process in live for arg in process.cmdline):
            continue
        shutil.rmtree(workdir, ignore_errors=True)
        removed.append(workdir)
    return removed


def _owner_alive(workdir: Path, live: list[processes.ProcessInfo]) -> bool:
    try:
        owner = json.loads((workdir / OWNER_FILE).read_text(encoding="utf-8"))
        pid, ticks = int(owner["pid"]), int(owner["start_ticks"])
    except (OSError, ValueError, KeyError, TypeError):
        return True  # unreadable: not ours to judge
    return any(p.pid == pid and p.start_ticks == ticks and not p.is_zombie for p in live)
