"""What the blocking and the asyncio pool share: their settings and their books.

Each driver's pool only adds how a caller waits (a condition variable, or a queue of futures);
the counts operators and leak tests read (``open``, ``idle``, ``in use``) mean the same in both.
"""

from __future__ import annotations

import os
import ssl
from typing import Generic, Protocol, TypeVar

from sturdysearch._core.config import PoolConfig
from sturdysearch._core.nodes import NodeConfig
from sturdysearch._core.proxy import ProxyRoute
from sturdysearch.tls import TLSConfig


class PooledConnection(Protocol):
    idle_since: float
    pid: int

    def is_dropped(self) -> bool: ...


C = TypeVar("C", bound=PooledConnection)


class PoolBooks(Generic[C]):
    """Settings and bookkeeping of one node's pool. ``_open`` counts every connection that
    exists or is being opened (idle ones included), so it is what the bound applies to."""

    def __init__(
        self,
        node: NodeConfig,
        pool: PoolConfig,
        tls: TLSConfig,
        ssl_context: ssl.SSLContext | None,
        connect_timeout: float,
        proxy: ProxyRoute | None = None,
    ) -> None:
        self.node = node
        self._config = pool
        self._tls = tls
        self._ssl_context = ssl_context
        self._connect_timeout = connect_timeout
        self._proxy = proxy
        """How this node's connections go through a proxy; ``None``: directly."""
        self._pid = os.getpid()
        self._idle: list[C] = []
        self._open = 0
        self._closed = False
        self.opened = 0
        """Connections opened since the pool started: a rate that keeps growing is a client
        that does not reuse connections (or a server or balancer that closes them)."""
        self.waits = 0
        """Checkouts that had to wait because all ``connections_per_node`` were in use."""

    @property
    def open_connections(self) -> int:
        return self._open

    @property
    def idle_connections(self) -> int:
        return len(self._idle)

    @property
    def in_use(self) -> int:
        return self._open - len(self._idle)

    def counts(self) -> dict[str, int]:
        """What ``pool_stats()`` reports for this node."""
        return {
            "open": self._open,
            "idle": len(self._idle),
            "in_use": self._open - len(self._idle),
            "opened": self.opened,
            "waits": self.waits,
        }

    def _stale(self, conn: C, now: float) -> bool:
        """An idle connection not to hand out: closed by the server, or idle too long (servers
        and load balancers drop idle connections silently; reusing one costs a failed
        attempt)."""
        return now - conn.idle_since > self._config.idle_timeout or conn.is_dropped()

    def _usable_idle(self, now: float) -> C | None:
        """The newest idle connection that is still usable, or ``None``; the stale ones met on
        the way are discarded (``_discard``) and leave the bound."""
        idle = self._idle
        while idle:
            conn = idle.pop()
            if not self._stale(conn, now):
                return conn
            self._discard(conn)
            self._open -= 1
        return None

    def _discard(self, conn: C) -> None:
        """Drop a connection without using it again (the blocking pool closes it, the asyncio
        one aborts its transport)."""
        raise NotImplementedError
