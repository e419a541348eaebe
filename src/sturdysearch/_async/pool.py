"""A bounded pool of connections to one node, shared by every task of a client on one loop.

The asyncio twin of ``sturdysearch._sync.pool``: at most ``connections_per_node`` sockets per
node; a task that finds them all busy waits in a FIFO queue, never past its deadline. Waiting
costs one future and one timer, so ten thousand queued tasks are cheap; connections in the
connect phase are not crowded by them.

Idle connections are reused newest-first and dropped when older than ``idle_timeout`` or when
the server closed them (the protocol notices that as it happens, so no system call is spent
checking).

Fork safety: a forked child must never use its parent's sockets. Asyncio does not survive a
fork with its loop anyway, but a pid check on checkout makes the child forget the inherited
connections instead of writing to them.
"""

from __future__ import annotations

import asyncio
import collections
import os
import ssl
import time

from sturdysearch._async.connection import AsyncConnection, open_connection
from sturdysearch._core.config import PoolConfig
from sturdysearch._core.nodes import NodeConfig
from sturdysearch._core.pooling import PoolBooks
from sturdysearch._core.proxy import ProxyRoute
from sturdysearch._core.timeouts import Deadline
from sturdysearch.errors import DeadlineExceeded, TransportError
from sturdysearch.tls import TLSConfig

_monotonic = time.monotonic


class AsyncNodePool(PoolBooks[AsyncConnection]):
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
        # Futures of queued tasks, first come first served. Each gets a connection, ``None``
        # (a free slot to connect in) or ``False`` (deadline passed, or the pool closed).
        # Done futures (expired, cancelled) are skipped lazily.
        self._waiters: collections.deque[asyncio.Future[AsyncConnection | bool | None]] = (
            collections.deque()
        )

    # -- checkout / checkin -------------------------------------------------------------------

    async def acquire(self, deadline: Deadline) -> AsyncConnection:
        """A connection to this node: idle if one is usable, else a new one if the bound allows,
        else wait (first come, first served) for one within the deadline."""
        if self._pid != os.getpid():
            self._forget_after_fork()
        if self._closed:
            raise TransportError("the client is closed", node=self.node.url)
        conn = self._usable_idle(_monotonic()) if self._idle else None
        if conn is not None:
            return conn
        if self._open < self._config.connections_per_node:
            self._open += 1
            return await self._connect(deadline)
        handed = await self._wait(deadline)
        if handed is not None:
            return handed
        return await self._connect(deadline)  # a slot was handed over: open a connection

    def _discard(self, conn: AsyncConnection) -> None:
        conn.abort()

    async def _connect(self, deadline: Deadline) -> AsyncConnection:
        """Open a connection in a slot already counted in ``_open``."""
        self.opened += 1
        try:
            conn = await open_connection(
                self.node,
                ssl_context=self._ssl_context,
                tls=self._tls,
                connect_timeout=self._connect_timeout,
                deadline=deadline,
                proxy=self._proxy,
            )
        except BaseException:
            self._free_slot()
            raise
        conn.pid = self._pid
        return conn

    async def _wait(self, deadline: Deadline) -> AsyncConnection | None:
        """Queue until a connection (returned) or a free slot (``None``) is handed over."""
        self.waits += 1
        remaining = deadline.at - _monotonic()
        if remaining > 0:
            loop = asyncio.get_running_loop()
            waiter: asyncio.Future[AsyncConnection | bool | None] = loop.create_future()
            self._waiters.append(waiter)
            timer = loop.call_later(remaining, _expire, waiter)
            try:
                await waiter
            except BaseException:
                # Cancelled: whatever was handed to us in the meantime goes to the next one.
                if waiter.done() and not waiter.cancelled():
                    handed = waiter.result()
                    if isinstance(handed, AsyncConnection):
                        self.release(handed, reusable=True)
                    elif handed is None:
                        self._free_slot()
                raise
            finally:
                timer.cancel()
            handed = waiter.result()
            if handed is not False:
                assert handed is not True
                return handed
            if self._closed:
                raise TransportError("the client is closed", node=self.node.url)
        raise DeadlineExceeded(
            f"the call's deadline passed while waiting for one of the "
            f"{self._config.connections_per_node} pooled connections",
            node=self.node.url,
        )

    def _next_waiter(self) -> asyncio.Future[AsyncConnection | bool | None] | None:
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                return waiter
        return None

    def _free_slot(self) -> None:
        """A connection slot became free: hand it to the first waiter, or give it up."""
        waiter = self._next_waiter()
        if waiter is not None and not self._closed:
            waiter.set_result(None)
        else:
            self._open -= 1

    def release(self, conn: AsyncConnection, *, reusable: bool) -> None:
        """Give a connection back: straight to the first waiting task if any (so newcomers do
        not overtake the queue), else to the idle list. One that is not reusable is aborted
        and its slot handed on."""
        if self._pid != os.getpid():
            self._forget_after_fork()
        if conn.pid != self._pid:
            return  # checked out before a fork: the parent's socket, never counted here
        if (
            reusable
            and not self._closed
            and conn.pid == self._pid == os.getpid()
            and not conn.is_dropped()
        ):
            waiter = self._next_waiter()
            if waiter is not None:
                waiter.set_result(conn)
                return
            conn.idle_since = _monotonic()
            self._idle.append(conn)
            return
        conn.abort()
        self._free_slot()

    def close(self) -> None:
        """Abort the idle connections and refuse new checkouts; connections in use are aborted
        when they come back."""
        self._closed = True
        for conn in self._idle:
            conn.abort()
        self._open -= len(self._idle)
        self._idle.clear()
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(False)  # wakes to find the pool closed

    def _forget_after_fork(self) -> None:
        # The sockets belong to the parent: drop them without a word on the wire.
        self._idle = []
        self._waiters = collections.deque()
        self._open = 0
        self._pid = os.getpid()


def _expire(waiter: asyncio.Future[AsyncConnection | bool | None]) -> None:
    if not waiter.done():
        waiter.set_result(False)
