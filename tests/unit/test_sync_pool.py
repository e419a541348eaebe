"""``NodePool``'s bookkeeping, with ``open_connection`` replaced by a fake: the bound, the FIFO
queue and its direct hand-over, deadlines, discarded and failed connections, ``close()``. No
sockets are opened. Threads are synchronised on the pool's own counters (``waits``: a thread
is queued) and on events, never on sleeps."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

import sturdysearch._sync.pool as pool_module
from sturdysearch._core.config import PoolConfig
from sturdysearch._core.nodes import NodeConfig
from sturdysearch._core.timeouts import Deadline
from sturdysearch._sync.pool import NodePool
from sturdysearch.errors import ConnectionError, DeadlineExceeded, TransportError
from sturdysearch.tls import TLSConfig

NODE = NodeConfig("http", "127.0.0.1", 9200)
WAIT = 5.0
"""Upper bound for anything a test waits for; reached only when the pool is broken."""


class FakeConnection:
    """What the pool asks of a connection."""

    def __init__(self, ident: int) -> None:
        self.ident = ident
        self.idle_since = 0.0
        self.pid = 0
        self.closed = False

    def is_dropped(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


class Connector:
    """Stands in for ``open_connection``: counts connects, can fail the next ones."""

    def __init__(self) -> None:
        self.made: list[FakeConnection] = []
        self.fail_next = 0
        self._lock = threading.Lock()

    def __call__(self, node: NodeConfig, **kwargs: Any) -> FakeConnection:
        with self._lock:
            if self.fail_next:
                self.fail_next -= 1
                raise ConnectionError("could not connect: refused", node=node.url)
            conn = FakeConnection(len(self.made))
            self.made.append(conn)
            return conn


@pytest.fixture
def connector(monkeypatch: pytest.MonkeyPatch) -> Connector:
    fake = Connector()
    monkeypatch.setattr(pool_module, "open_connection", fake)
    return fake


def make_pool(size: int = 1) -> NodePool:
    return NodePool(NODE, PoolConfig(connections_per_node=size), TLSConfig(), None, 1.0)


def deadline(seconds: float = WAIT) -> Deadline:
    return Deadline(time.monotonic(), seconds)


def wait_until(predicate: Callable[[], bool]) -> None:
    """Poll the pool's books until ``predicate`` holds (the pool has no change event)."""
    limit = time.monotonic() + WAIT
    while not predicate():
        assert time.monotonic() < limit, "the pool never reached the expected state"
        threading.Event().wait(0.001)


class Acquirer:
    """A thread that acquires once; ``result`` is the connection or the exception."""

    def __init__(self, pool: NodePool, seconds: float = WAIT) -> None:
        self.result: Any = None
        self.done = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(pool, seconds), daemon=True)
        self._thread.start()

    def _run(self, pool: NodePool, seconds: float) -> None:
        try:
            self.result = pool.acquire(deadline(seconds))
        except BaseException as exc:
            self.result = exc
        self.done.set()

    def join(self) -> Any:
        assert self.done.wait(WAIT)
        return self.result


def queued(pool: NodePool, count: int) -> Callable[[], bool]:
    return lambda: pool.waits >= count


def test_the_bound_holds_and_a_release_goes_straight_to_the_waiter(connector: Connector) -> None:
    pool = make_pool(2)
    a, b = pool.acquire(deadline()), pool.acquire(deadline())
    assert len(connector.made) == 2
    waiter = Acquirer(pool)
    wait_until(queued(pool, 1))
    assert not waiter.done.is_set()
    pool.release(a, reusable=True)
    assert waiter.join() is a
    assert pool.idle_connections == 0  # handed over, never idle where a newcomer could take it
    pool.release(a, reusable=True)
    pool.release(b, reusable=True)
    assert pool.counts() == {"open": 2, "idle": 2, "in_use": 0, "opened": 2, "waits": 1}
    pool.close()


def test_a_newcomer_never_overtakes_a_queued_waiter(connector: Connector) -> None:
    pool = make_pool(1)
    holder = pool.acquire(deadline())
    first = Acquirer(pool)
    wait_until(queued(pool, 1))
    # The thread that gives the connection back asks again at once, as a busy worker does:
    # the connection is already the waiter's, so the newcomer waits in its turn.
    pool.release(holder, reusable=True)
    with pytest.raises(DeadlineExceeded, match="pooled connections"):
        pool.acquire(deadline(0.05))
    assert first.join() is holder
    pool.release(holder, reusable=True)
    assert pool.acquire(deadline()) is holder
    assert len(connector.made) == 1
    pool.close()


def test_waiters_are_served_in_arrival_order(connector: Connector) -> None:
    pool = make_pool(1)
    conn = pool.acquire(deadline())
    waiters = []
    for n in range(5):
        waiters.append(Acquirer(pool))
        wait_until(queued(pool, n + 1))
    order = []
    for w in waiters:
        pool.release(conn, reusable=True)
        assert w.join() is conn
        order.append(w)
        # Nobody behind it got anything yet.
        assert not any(later.done.is_set() for later in waiters[len(order) :])
    assert order == waiters
    pool.release(conn, reusable=True)
    pool.close()


def test_busy_threads_cannot_starve_a_waiter(
    connector: Connector, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three threads take and give back the only connection in a loop; a fourth that queues
    gets it within one turn of each thread ahead of it (with a condition variable the
    releasing thread usually re-took it, and the waiter could wait until its deadline)."""
    pool = make_pool(1)
    stop = threading.Event()
    log: list[str] = []
    lock = threading.Lock()

    def busy(name: str) -> None:
        while not stop.is_set():
            conn = pool.acquire(deadline())
            with lock:
                log.append(name)
            pool.release(conn, reusable=True)

    threads = [threading.Thread(target=busy, args=(f"busy{i}",), daemon=True) for i in range(3)]
    for t in threads:
        t.start()
    marks: list[int] = []
    victim = threading.current_thread()

    class MarkedWaiter(pool_module._Waiter):
        """Notes how many turns were taken when the victim joined the queue."""

        def __init__(self) -> None:
            super().__init__()
            if threading.current_thread() is victim:
                with lock:
                    marks.append(len(log))

    monkeypatch.setattr(pool_module, "_Waiter", MarkedWaiter)
    wait_until(lambda: len(log) > 100)
    while not marks:  # until the victim finds the connection busy and queues
        conn = pool.acquire(deadline(2.0))
        with lock:
            log.append("victim")
        pool.release(conn, reusable=True)
    mark = marks[0]
    with lock:
        log.append("victim")
    pool.release(conn, reusable=True)
    stop.set()
    for t in threads:
        t.join(WAIT)
    turns = log.index("victim", mark) - mark
    assert turns <= 3 + 1  # the threads queued ahead of it, and the one holding it
    pool.close()


def test_a_waiter_whose_deadline_passes_leaves_the_queue(connector: Connector) -> None:
    pool = make_pool(1)
    conn = pool.acquire(deadline())
    late = Acquirer(pool, seconds=0.05)
    assert isinstance(late.join(), DeadlineExceeded)
    pool.release(conn, reusable=True)
    assert pool.idle_connections == 1  # not handed to the thread that gave up
    assert pool.acquire(deadline()) is conn
    pool.release(conn, reusable=True)
    pool.close()


def test_the_slot_of_a_discarded_connection_goes_to_the_waiter(connector: Connector) -> None:
    pool = make_pool(1)
    conn = pool.acquire(deadline())
    waiter = Acquirer(pool)
    wait_until(queued(pool, 1))
    pool.release(conn, reusable=False)
    assert conn.closed
    replacement = waiter.join()
    assert replacement is connector.made[1]
    assert pool.open_connections == 1
    pool.release(replacement, reusable=True)
    pool.close()


def test_a_failed_connect_hands_its_slot_on(connector: Connector) -> None:
    pool = make_pool(1)
    conn = pool.acquire(deadline())
    waiters = [Acquirer(pool)]
    wait_until(queued(pool, 1))
    waiters.append(Acquirer(pool))
    wait_until(queued(pool, 2))
    connector.fail_next = 1
    pool.release(conn, reusable=False)  # the first waiter connects, fails; the second gets to
    assert isinstance(waiters[0].join(), ConnectionError)
    second = waiters[1].join()
    assert second is connector.made[1]
    assert pool.open_connections == 1
    pool.release(second, reusable=True)
    pool.close()


def test_close_wakes_the_waiters(connector: Connector) -> None:
    pool = make_pool(1)
    conn = pool.acquire(deadline())
    waiter = Acquirer(pool)
    wait_until(queued(pool, 1))
    pool.close()
    result = waiter.join()
    assert isinstance(result, TransportError) and "closed" in str(result)
    pool.release(conn, reusable=True)
    assert conn.closed
    assert pool.open_connections == 0
    with pytest.raises(TransportError, match="closed"):
        pool.acquire(deadline())


def test_a_child_process_forgets_the_parents_connections(connector: Connector) -> None:
    pool = make_pool(1)
    conn = pool.acquire(deadline())
    pool.release(conn, reusable=True)
    pool._pid = os.getpid() + 1  # as a forked child sees it
    fresh = pool.acquire(deadline())
    assert fresh is not conn and fresh is connector.made[1]
    pool.release(fresh, reusable=True)
    pool.close()
