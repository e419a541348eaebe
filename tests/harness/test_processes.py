"""Process handling without servers: spawning, group termination, parent-death signal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from sturdysearch.testing import processes
from sturdysearch.testing.node_user import resolve_node_user


def wait_until(condition: object, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def spawn_sleep(tmp_path: Path, die_with_parent: bool = True) -> subprocess.Popen[bytes]:
    with (tmp_path / "out.log").open("ab") as output:
        return processes.spawn(
            ["/bin/sh", "-c", "sleep 60 & exec sleep 61"],
            env={"PATH": "/usr/bin:/bin"},
            cwd=tmp_path,
            output=output,
            user=resolve_node_user(),
            die_with_parent=die_with_parent,
        )


def test_spawn_runs_unprivileged_in_own_group_and_terminate_reaps_all(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    popen = spawn_sleep(tmp_path)
    assert wait_until(lambda: len(processes.processes_in_group(popen.pid)) == 2)
    members = processes.processes_in_group(popen.pid)
    assert os.getpgid(popen.pid) == popen.pid
    assert os.getsid(popen.pid) == popen.pid
    for member in members:
        assert os.stat(f"/proc/{member.pid}").st_uid != 0
    processes.terminate_groups([(popen.pid, popen)], grace=5.0)
    assert popen.returncode is not None
    assert processes.processes_in_group(popen.pid) == []
    assert not any(processes.pid_alive(m.pid) for m in members)


def test_sigkill_when_sigterm_is_ignored(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    log = tmp_path / "out.log"
    with log.open("ab") as output:
        popen = processes.spawn(
            ["/bin/sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.1; done"],
            env={"PATH": "/usr/bin:/bin"},
            cwd=Path("/"),
            output=output,
            user=resolve_node_user(),
            die_with_parent=True,
        )
    assert wait_until(lambda: b"ready" in log.read_bytes())  # the trap is in place
    started = time.monotonic()
    processes.terminate_groups([(popen.pid, popen)], grace=0.5)
    assert time.monotonic() - started < 10
    assert popen.returncode == -signal.SIGKILL


_CHILD_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from sturdysearch.testing import processes
    from sturdysearch.testing.node_user import resolve_node_user
    popen = processes.spawn(
        ["/bin/sleep", "120"], env={}, cwd=Path("/"), output=open("/dev/null", "wb"),
        user=resolve_node_user(), die_with_parent=sys.argv[1] == "1",
    )
    print(popen.pid, flush=True)
    time.sleep(120)
    """
)


@pytest.mark.parametrize("die_with_parent", [True, False])
def test_parent_death(die_with_parent: bool) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", _CHILD_SCRIPT, "1" if die_with_parent else "0"],
        stdout=subprocess.PIPE,
    )
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    try:
        assert processes.pid_alive(child)
        parent.kill()  # SIGKILL: no atexit, no signal handler - only the kernel can help
        parent.wait()
        # Surviving is checked over a shorter window than dying needs: it is the negative case.
        died = wait_until(lambda: not processes.pid_alive(child), 5.0 if die_with_parent else 1.5)
        assert died is die_with_parent
    finally:
        if processes.pid_alive(child):
            os.kill(child, signal.SIGKILL)


def test_read_process_and_main_class_matching() -> None:
    me = processes.read_process(os.getpid())
    assert me is not None and me.pid == os.getpid() and not me.is_zombie
    assert processes.read_process(2**22 + 12345) is None
    info = processes.ProcessInfo(1, 0, 1, "S", 0, ("java", "-m", "org.es.server/org.X.Main"))
    assert processes.runs_main_class(info, "org.X.Main")
    assert not processes.runs_main_class(info, "org.X.Other")


_REAPER_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from sturdysearch.testing import processes
    from sturdysearch.testing.node_user import resolve_node_user
    # No parent-death signal: only the reaper (atexit / SIGTERM handler) can stop this one.
    popen = processes.spawn(
        ["/bin/sleep", "120"], env={}, cwd=Path("/"), output=open("/dev/null", "wb"),
        user=resolve_node_user(), die_with_parent=False,
    )

    class Member:
        def emergency_stop(self):
            processes.terminate_groups([(popen.pid, popen)], grace=5.0)
            Path(sys.argv[1]).write_text("stopped")

    processes.REAPER.register(Member())
    print(popen.pid, flush=True)
    if sys.argv[2] == "exit":
        sys.exit(3)
    time.sleep(120)
    """
)


@pytest.mark.parametrize("how", ["sigterm", "exit"])
def test_reaper_stops_registered_members(tmp_path: Path, how: str) -> None:
    marker = tmp_path / "marker"
    parent = subprocess.Popen(
        [sys.executable, "-c", _REAPER_SCRIPT, str(marker), how], stdout=subprocess.PIPE
    )
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    try:
        if how == "sigterm":
            parent.send_signal(signal.SIGTERM)
        parent.wait(timeout=30)
        assert parent.returncode == (-signal.SIGTERM if how == "sigterm" else 3)
        assert marker.read_text() == "stopped"
        assert not processes.pid_alive(child)
    finally:
        parent.kill()
        parent.wait()
        if processes.pid_alive(child):
            os.kill(child, signal.SIGKILL)
