"""Log summaries for error messages, and sweeping working directories of dead runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sturdysearch.testing import logs, processes, workdirs
from sturdysearch.testing.node_user import NodeUser
from sturdysearch.testing.specs import ServerSpec


def test_summary_drops_jvm_flag_dumps_and_keeps_earlier_errors() -> None:
    text = "\n".join(
        [
            "starting",
            "Error occurred during initialization of VM",
            *[f"     bool Flag{i}   = true   {{product}} {{default}}" for i in range(300)],
            *[f"line {i}" for i in range(50)],
        ]
    )
    summary = logs.summarize(text, lines=10).splitlines()
    assert summary[0] == "Error occurred during initialization of VM"
    assert summary[1] == "[...]"
    assert summary[2:] == [f"line {i}" for i in range(40, 50)]
    assert logs.summarize("a\nb", lines=10) == "a\nb"


def test_read_tail_text(tmp_path: Path) -> None:
    path = tmp_path / "log"
    path.write_bytes(b"x" * 100 + b"\nend\n")
    assert logs.read_tail_text(path, limit=4) == "end\n"
    assert logs.read_tail_text(tmp_path / "missing") == ""


def current_user() -> NodeUser:
    return NodeUser("me", os.geteuid(), os.getegid())


def test_sweep_removes_only_dead_unreferenced_workdirs(tmp_path: Path, monkeypatch: object) -> None:
    monkeypatch.setattr(workdirs.tempfile, "gettempdir", lambda: str(tmp_path))  # type: ignore[attr-defined]
    spec = ServerSpec.parse("opensearch:2.19.6")
    mine = workdirs.make_workdir(spec, current_user())
    assert json.loads((mine / workdirs.OWNER_FILE).read_text())["pid"] == os.getpid()

    dead_owner = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    stale = tmp_path / "sturdysearch-opensearch-2.19.6-stale"
    stale.mkdir()
    (stale / workdirs.OWNER_FILE).write_text(
        json.dumps({"pid": int(dead_owner.stdout), "start_ticks": 1})
    )
    referenced = tmp_path / "sturdysearch-opensearch-2.19.6-detached"
    referenced.mkdir()
    (referenced / workdirs.OWNER_FILE).write_text(json.dumps({"pid": 1, "start_ticks": -1}))
    holder = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(30)", str(referenced / "node-0")]
    )
    foreign = tmp_path / "sturdysearch-something-else"
    foreign.mkdir()
    try:
        assert processes.pid_alive(holder.pid)
        removed = workdirs.sweep_stale_workdirs(tmp_path)
    finally:
        holder.kill()
        holder.wait()
    assert removed == [stale]
    assert mine.exists() and referenced.exists() and foreign.exists()
