"""Picking free TCP ports on loopback for node HTTP and transport endpoints.

Ports are drawn at random from *below* the kernel's ephemeral range: an ephemeral port can be
taken at any moment by an outgoing connection, which would make a node restarted on "its" port
fail to bind. A port is handed out only if nothing can bind it right now; the small race with
other programs is accepted (a node that cannot bind fails fast, with the reason in its log).
"""

from __future__ import annotations

import contextlib
import random
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

_LOWEST = 20000
_DEFAULT_EPHEMERAL_START = 32768
_handed_out: set[int] = set()
_lock = threading.Lock()


def ephemeral_range_start() -> int:
    try:
        text = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text()
        return int(text.split()[0])
    except (OSError, ValueError, IndexError):
        return _DEFAULT_EPHEMERAL_START


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    # No SO_REUSEADDR: a port with connections in TIME_WAIT counts as busy, which is the
    # conservative answer.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def allocate_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """Returns ``count`` distinct free ports, never one this process handed out before."""
    upper = ephemeral_range_start()
    lower = _LOWEST if upper - _LOWEST >= 1000 else 1024
    candidates = list(range(lower, upper))
    random.shuffle(candidates)
    chosen: list[int] = []
    with _lock:
        for port in candidates:
            if port in _handed_out or not port_is_free(port, host):
                continue
            chosen.append(port)
            _handed_out.add(port)
            if len(chosen) == count:
                return chosen
    raise OSError(f"could not find {count} free TCP ports on {host} between {lower} and {upper}")


@contextlib.contextmanager
def unaccepting_port(host: str = "127.0.0.1") -> Iterator[int]:
    """A listening port whose accept queue is full: the kernel ignores further SYNs, so a
    connect to it hangs until the client's own timeout (what a server too busy to accept, or
    a firewall dropping packets, looks like)."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind((host, 0))
    server.listen(0)
    port: int = server.getsockname()[1]
    fillers = []
    # Fill the accept queue (its size is backlog + 1 on Linux) without ever accepting.
    for _ in range(8):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            s.connect((host, port))
        fillers.append(s)
    try:
        yield port
    finally:
        for s in fillers:
            s.close()
        server.close()
