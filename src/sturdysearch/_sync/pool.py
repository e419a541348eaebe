"""A bounded pool of connections to one node, shared by all threads of a client.

At most ``connections_per_node`` sockets exist per node; a caller that finds them all busy waits
for one to come back, but never past its deadline. Idle sockets are reused newest-first (so the
oldest age out), dropped when older than ``idle_timeout`` or when the server closed them.

Fork safety: a child process must never write to its parent's sockets (two processes
interleaving requests on one TCP stream corrupt both). Each pool forgets its connections in the
child, through ``os.register_at_fork``, and a pid check on checkout backs that up.
"""

from __future__ import annotations

import os
import ssl
import threading
import time
import weakref

from sturdysearch._core.config import PoolConfig
from sturdysearch._core.nodes import NodeConfig
from sturdysearch._core.pooling import PoolBooks
from sturdysearch._core.timeouts import Deadline
from sturdysearch._sync.connection import Connection, open_connection
from sturdysearch.errors import DeadlineExceeded, TransportError
from sturdysearch.tls import TLSConfig

_monotonic = time.monotonic
_all_pools: weakref.WeakSet[NodePool] = weakref.WeakSet()


class NodePool(PoolBooks[Connection]):
    """Connections to one node."""

    def __init__(
        self,
        node: NodeConfig,
        pool: PoolConfig,
        tls: TLSConfig,
        ssl_context: ssl.SSLContext | None,
        connect_timeout: float,
    ) -> None:
        super().__init__(node, pool, tls, ssl_context, connect_timeout)
        self._cond = threading.Condition(threading.Lock())
        _all_pools.add(self)

    # -- checkout / checkin -------------------------------------------------------------------

    def acquire(self, deadline: Deadline) -> Connection:
        """A connection to this node: idle if one is usable, else a new one if the bound allows,
        else wait for one within the deadline."""
        if self._pid != os.getpid():
            self._forget_after_fork()
        cond = self._cond
        waited = False
        with cond:
            while True:
                if self._closed:
                    raise TransportError("the client is closed", node=self.node.url)
                while self._idle:
                    conn = self._idle.pop()
                    now = _monotonic()
                    if self._stale(conn, now):
                        conn.close()
                        self._open -= 1
                        continue
                    return conn
                if self._open < self._config.connections_per_node:
                    self._open += 1
                    self.opened += 1
                    break
                if not waited:
                    waited = True
                    self.waits += 1
                remaining = deadline.at - _monotonic()
                if (remaining <= 0 or not cond.wait(remaining)) and deadline.at - _monotonic() <= 0:
                    raise DeadlineExceeded(
                        f"the call's deadline passed while waiting for one of the "
                        f"{self._config.connections_per_node} pooled connections",
                        node=self.node.url,
                    )
        try:
            conn = open_connection(
                self.node,
                ssl_context=self._ssl_context,
                tls=self._tls,
                connect_timeout=self._connect_timeout,
                deadline=deadline,
            )
        except BaseException:
            with cond:
                self._open -= 1
                cond.notify()
            raise
        conn.pid = self._pid
        return conn

    def release(self, conn: Connection, *, reusable: bool) -> None:
        """Give a connection back; a connection that is not reusable is closed."""
        if self._pid != os.getpid():
            self._forget_after_fork()
        if conn.pid != self._pid:
            # Checked out before a fork: the parent's socket, never counted in this process.
            # Closing the descriptor sends nothing while the parent holds it too.
            conn.close()
            return
        cond = self._cond
        with cond:
            if reusable and not self._closed:
                conn.idle_since = _monotonic()
                self._idle.append(conn)
            else:
                conn.close()
                self._open -= 1
            cond.notify()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            for conn in self._idle:
                conn.close()
            self._open -= len(self._idle)
            self._idle.clear()
            self._cond.notify_all()

    def _forget_after_fork(self) -> None:
        # In the child: the sockets belong to the parent. Close the child's file descriptors
        # without shutdown() or a TLS close_notify, so the parent's streams are left untouched
        # (the kernel sends FIN only when the last descriptor of a socket closes).
        self._cond = threading.Condition(threading.Lock())
        for conn in self._idle:
            conn.close()
        self._idle = []
        self._open = 0
        self._pid = os.getpid()


def _after_fork_in_child() -> None:
    for pool in list(_all_pools):
        pool._forget_after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)
