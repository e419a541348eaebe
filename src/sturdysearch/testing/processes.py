"""Starting node processes so they cannot outlive us, and stopping them reliably.

Three layers keep test runs from leaking Java processes:

1. every node runs in its own process group (its own session, in fact), so one ``killpg`` reaches
   the launcher script, the JVM it execs, and any JVM that one forks (Elasticsearch 8+ runs the
   server as a child of a small CLI JVM);
2. the launched process gets ``PR_SET_PDEATHSIG = SIGKILL``, so the kernel kills it if we die
   without a chance to clean up (SIGKILL, OOM killer); it is set *after* the uid switch because
   credential changes clear it;
3. ``atexit`` and SIGTERM/SIGHUP handlers stop whatever is still registered.

The parent-death signal fires when the *thread* that spawned the child exits, so nodes that
should die with the process must be started from a long-lived thread (the main thread, in
pytest).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO, Any, Protocol

from sturdysearch.testing.node_user import NodeUser

_PR_SET_PDEATHSIG = 1
_PROC = Path("/proc")


@dataclass(frozen=True)
class ProcessInfo:
    """A snapshot of one process from ``/proc``."""

    pid: int
    ppid: int
    pgid: int
    state: str
    start_ticks: int
    cmdline: tuple[str, ...]

    @property
    def is_zombie(self) -> bool:
        return self.state in ("Z", "X")


def read_process(pid: int) -> ProcessInfo | None:
    """Reads ``/proc/<pid>``; None if the process is gone (or never existed)."""
    try:
        stat_text = (_PROC / str(pid) / "stat").read_text()
        raw_cmdline = (_PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return None
    # The command name may contain spaces and parentheses; fields resume after the last ')'.
    fields = stat_text[stat_text.rfind(")") + 2 :].split()
    cmdline = tuple(part.decode(errors="replace") for part in raw_cmdline.split(b"\0") if part)
    return ProcessInfo(
        pid=pid,
        ppid=int(fields[1]),
        pgid=int(fields[2]),
        state=fields[0],
        start_ticks=int(fields[19]),
        cmdline=cmdline,
    )


def list_processes() -> list[ProcessInfo]:
    found = []
    for entry in _PROC.iterdir():
        if entry.name.isdigit():
            info = read_process(int(entry.name))
            if info is not None:
                found.append(info)
    return found


def processes_in_group(pgid: int) -> list[ProcessInfo]:
    """The live (non-zombie) members of a process group."""
    return [p for p in list_processes() if p.pgid == pgid and not p.is_zombie]


def find_in_group(pgid: int, needle: str) -> ProcessInfo | None:
    """The live member of ``pgid`` having ``needle`` as one whole command-line argument."""
    for process in processes_in_group(pgid):
        if needle in process.cmdline:
            return process
    return None


def runs_main_class(process: ProcessInfo, main_class: str) -> bool:
    """Whether a JVM's command line names ``main_class``, as a plain class or as the
    ``-m module/class`` form Elasticsearch 9 uses."""
    return any(arg == main_class or arg.endswith(f"/{main_class}") for arg in process.cmdline)


def find_jvm(pgid: int, main_class: str) -> ProcessInfo | None:
    for process in processes_in_group(pgid):
        if runs_main_class(process, main_class):
            return process
    return None


def pid_alive(pid: int) -> bool:
    info = read_process(pid)
    return info is not None and not info.is_zombie


def signal_group(pgid: int, signum: int) -> bool:
    """Signals a process group; False if it no longer exists."""
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    return True


def terminate_groups(
    groups: Sequence[tuple[int, subprocess.Popen[bytes] | None]],
    *,
    grace: float,
    kill: bool = False,
) -> None:
    """Stops several process groups at once: SIGTERM (or straight SIGKILL), wait up to
    ``grace`` seconds, then SIGKILL whatever is left.

    Signalling every group before waiting on any lets a whole cluster shut down in parallel.
    Each ``(pgid, leader)`` must be a group we created and still own (its id stays reserved
    while any member lives); ``leader``, if given, is reaped so it does not linger as a zombie.
    """
    if not kill:
        for pgid, _ in groups:
            signal_group(pgid, signal.SIGTERM)
        _wait_all(groups, grace)
    for pgid, _ in groups:
        if processes_in_group(pgid):
            signal_group(pgid, signal.SIGKILL)
    _wait_all(groups, 30.0)
    for _, leader in groups:
        if leader is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                leader.wait(timeout=5.0)


def _wait_all(groups: Sequence[tuple[int, subprocess.Popen[bytes] | None]], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    pending = list(groups)
    while pending:
        for _, leader in pending:
            if leader is not None:
                leader.poll()  # reap, so a dead leader stops counting as a member
        pending = [(pgid, leader) for pgid, leader in pending if processes_in_group(pgid)]
        if not pending or time.monotonic() >= deadline:
            return
        time.sleep(0.1)


def _load_prctl() -> Callable[..., int]:
    libc = ctypes.CDLL(None, use_errno=True)
    prctl: Callable[..., int] = libc.prctl
    return prctl


def _death_signal_preexec(parent_pid: int) -> Callable[[], None]:
    """Builds the child-side hook: ask the kernel to SIGKILL us when our parent dies.

    Everything it needs is resolved here, in the parent, so the forked child does the minimum
    (no imports, no allocation-heavy work) before exec.
    """
    prctl = _load_prctl()
    kill_signal = int(signal.SIGKILL)

    def preexec() -> None:
        if prctl(_PR_SET_PDEATHSIG, kill_signal, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        # The parent may have died between fork and prctl; then nobody would signal us.
        if os.getppid() != parent_pid:
            os.kill(os.getpid(), kill_signal)

    return preexec


def spawn(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path,
    output: IO[bytes],
    user: NodeUser,
    die_with_parent: bool,
) -> subprocess.Popen[bytes]:
    """Starts ``argv`` as ``user`` in a new session, stdout and stderr into ``output``.

    A new session (not only a process group) also detaches it from our terminal, so a Ctrl-C
    reaches only us and we shut the nodes down in order instead of them dying mid-write.
    The uid/gid switch is done by ``subprocess`` itself, which runs it before ``preexec_fn``.
    """
    preexec = _death_signal_preexec(os.getpid()) if die_with_parent else None
    identity: dict[str, Any] = {}
    if not user.is_current:
        identity = {"user": user.uid, "group": user.gid, "extra_groups": []}
    return subprocess.Popen(
        list(argv),
        env=dict(env),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=output,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        close_fds=True,
        preexec_fn=preexec,  # needed for PR_SET_PDEATHSIG; see the module docstring
        **identity,
    )


class Stoppable(Protocol):
    def emergency_stop(self) -> None:
        """Stops everything quickly; called from atexit or a signal handler."""


class _Reaper:
    """Process-wide registry of running clusters to stop when the interpreter goes down."""

    def __init__(self) -> None:
        # Re-entrant: the signal handler may run while the main thread holds the lock.
        self._lock = threading.RLock()
        self._members: dict[int, Stoppable] = {}
        self._atexit_installed = False
        self._signals_installed = False

    def register(self, member: Stoppable) -> None:
        with self._lock:
            self._members[id(member)] = member
            if not self._atexit_installed:
                self._atexit_installed = True
                atexit.register(self.stop_all)
            # Signal handlers can only be set from the main thread; retry on later calls.
            if not self._signals_installed and _install_signal_handlers(self.stop_all):
                self._signals_installed = True

    def unregister(self, member: Stoppable) -> None:
        with self._lock:
            self._members.pop(id(member), None)

    def stop_all(self) -> None:
        with self._lock:
            members = list(self._members.values())
            self._members.clear()
        for member in members:
            # Best effort at exit: one failure must not keep the others running.
            with contextlib.suppress(Exception):
                member.emergency_stop()


REAPER = _Reaper()


def _install_signal_handlers(cleanup: Callable[[], None]) -> bool:
    """Adds cleanup to SIGTERM/SIGHUP, but only where the default action would kill us anyway.

    A handler the application installed itself is left alone: it may not mean to exit, and
    killing its nodes behind its back would be worse than the (PDEATHSIG-covered) alternative.
    Returns False when called outside the main thread, where Python cannot set handlers.
    """
    if threading.current_thread() is not threading.main_thread():
        return False
    for signum in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(signum) is not signal.SIG_DFL:
            continue

        def handler(received: int, frame: FrameType | None) -> None:
            cleanup()
            signal.signal(received, signal.SIG_DFL)
            os.kill(os.getpid(), received)

        signal.signal(signum, handler)
    return True
