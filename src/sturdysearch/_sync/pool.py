"""A bounded pool of connections to one node, shared by all threads of a client.

At most ``connections_per_node`` sockets exist per node; a caller that finds them all busy waits
in a first-come-first-served queue, never past its deadline. A connection given back goes
straight to the first waiter (as does the slot of one that was discarded), so a thread that has
just released a connection and asks again cannot overtake threads that were already waiting:
with a plain condition variable the releasing thread usually wins the race for the lock, and a
waiter could starve until its deadline while a few busy threads took turns. Idle sockets are
reused newest-first (so the oldest age out), dropped when older than ``idle_timeout`` or when
the server closed them.

Fork safety: a child process must never write to its parent's sockets (two processes
interleaving requests on one TCP stream corrupt both). Each pool forgets its connections in the
child, through ``os.register_at_fork``, and a pid check on checkout backs that up.
"""

from __future__ import annotations

import collections
import contextlib
import os
import ssl
import threading
import time
import weakref

from sturdysearch._core.config import PoolConfig
from sturdysearch._core.nodes import NodeConfig
from sturdysearch._core.pooling import PoolBooks
from sturdysearch._core.proxy import ProxyRoute
from sturdysearch._core.timeouts import Deadline
from sturdysearch._sync.connection import Connection, open_connection
from sturdysearch.errors import DeadlineExceeded, TransportError
from sturdysearch.tls import TLSConfig

_monotonic = time.monotonic
_all_pools: weakref.WeakSet[NodePool] = weakref.WeakSet()


class _Waiter:
    """One thread queued for a connection. It blocks on ``gate`` (held until the pool hands it
    something); ``handed`` says what it got, read under the pool's lock."""

    __slots__ = ("connection", "gate", "handed")

    def __init__(self) -> None:
        self.gate = threading.Lock()
        self.gate.acquire()
        self.handed = False
        self.connection: Connection | None = None
        """The connection handed over, or ``None`` with ``handed``: a free slot to connect in."""


class NodePool(PoolBooks[Connection]):
    """Connections to one node."""

    def __init__(
        self,
        node: NodeConfig,
        pool: PoolConfig,
        tls: TLSConfig,
        ssl_context: ssl.SSLContext | None,
        connect_timeout: float,
        proxy: ProxyRoute | None = None,
    ) -> None:
        super().__init__(node, pool, tls, ssl_context, connect_timeout, proxy)
        self._lock = threading.Lock()
        # Threads waiting, first come first served; those whose deadline passed are skipped.
        self._waiters: collections.deque[_Waiter] = collections.deque()
        _all_pools.add(self)

    # -- checkout / checkin -------------------------------------------------------------------

    def acquire(self, deadline: Deadline) -> Connection:
        """A connection to this node: idle if one is usable, else a new one if the bound allows,
        else wait (first come, first served) for one within the deadline."""
        if self._pid != os.getpid():
            self._forget_after_fork()
        with self._lock:
            if self._closed:
                raise TransportError("the client is closed", node=self.node.url)
            conn = self._usable_idle(_monotonic()) if self._idle else None
            if conn is not None:
                return conn
            if self._open < self._config.connections_per_node:
                self._open += 1
                waiter = None
            else:
                waiter = _Waiter()
                self._waiters.append(waiter)
                self.waits += 1
        if waiter is not None:
            handed = self._wait(waiter, deadline)
            if handed is not None:
                return handed
        return self._connect(deadline)

    def _wait(self, waiter: _Waiter, deadline: Deadline) -> Connection | None:
        """Block until a connection (returned) or a free slot (``None``) is handed to
        ``waiter``; raise once the deadline passes or the pool closes."""
        remaining = deadline.at - _monotonic()
        if remaining > 0:
            waiter.gate.acquire(timeout=remaining)
        with self._lock:
            if waiter.handed:
                return waiter.connection
            waiter.handed = True  # too late: whatever comes now goes to the next waiter
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)
            if self._closed:
                raise TransportError("the client is closed", node=self.node.url)
        raise DeadlineExceeded(
            f"the call's deadline passed while waiting for one of the "
            f"{self._config.connections_per_node} pooled connections",
            node=self.node.url,
        )

    def _discard(self, conn: Connection) -> None:
        conn.close()

    def _connect(self, deadline: Deadline) -> Connection:
        """Open a connection in a slot already counted in ``_open``."""
        with self._lock:
            self.opened += 1
        try:
            conn = open_connection(
                self.node,
                ssl_context=self._ssl_context,
                tls=self._tls,
                connect_timeout=self._connect_timeout,
                deadline=deadline,
                proxy=self._proxy,
            )
        except BaseException:
            with self._lock:
                self._hand_slot()
            raise
        conn.pid = self._pid
        return conn

    def _next_waiter(self) -> _Waiter | None:
        """The first thread still waiting, taken off the queue (under the lock)."""
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.handed:
                return waiter
        return None

    def _hand_slot(self) -> None:
        """A connection slot became free: hand it to the first waiter, or give it up (under
        the lock)."""
        waiter = None if self._closed else self._next_waiter()
        if waiter is None:
            self._open -= 1
            return
        waiter.handed = True
        waiter.gate.release()

    def release(self, conn: Connection, *, reusable: bool) -> None:
        """Give a connection back: straight to the first waiting thread if any (so that
        newcomers do not overtake the queue), else to the idle list. One that is not reusable
        is closed and its slot handed on."""
        if self._pid != os.getpid():
            self._forget_after_fork()
        if conn.pid != self._pid:
            # Checked out before a fork: the parent's socket, never counted in this process.
            # Closing the descriptor sends nothing while the parent holds it too.
            conn.close()
            return
        with self._lock:
            if reusable and not self._closed:
                waiter = self._next_waiter()
                if waiter is None:
                    conn.idle_since = _monotonic()
                    self._idle.append(conn)
                    return
                waiter.handed = True
                waiter.connection = conn
                waiter.gate.release()
                return
            self._hand_slot()
        conn.close()

    def close(self) -> None:
        """Close the idle connections and refuse new checkouts; connections in use are closed
        when they come back, and waiting threads wake to find the pool closed."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            self._open -= len(idle)
            waiters, self._waiters = self._waiters, collections.deque()
            for waiter in waiters:
                if not waiter.handed:
                    waiter.gate.release()
        for conn in idle:
            conn.close()

    def _forget_after_fork(self) -> None:
        # In the child: the sockets belong to the parent. Close the child's file descriptors
        # without shutdown() or a TLS close_notify, so the parent's streams are left untouched
        # (the kernel sends FIN only when the last descriptor of a socket closes). The parent's
        # waiting threads do not exist here.
        self._lock = threading.Lock()
        for conn in self._idle:
            conn.close()
        self._idle = []
        self._waiters = collections.deque()
        self._open = 0
        self._pid = os.getpid()


def _after_fork_in_child() -> None:
    for pool in list(_all_pools):
        pool._forget_after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)
