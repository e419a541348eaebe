"""``AsyncNodePool``'s bookkeeping, with ``open_connection`` replaced by a fake: the bound, the
FIFO queue and its direct hand-over, deadlines, cancellation, discarded and failed connections,
idle expiry, ``close()`` and fork detection. No sockets are opened; each test runs its own loop
with ``asyncio.run`` and synchronises through loop turns, never through sleeps."""

from __future__ import annotations

import asyncio
import time
import types
from typing import Any, cast

import pytest

import sturdysearch._async.pool as pool_module
from sturdysearch._async.connection import AsyncConnection, _ResponseProtocol
from sturdysearch._async.pool import AsyncNodePool
from sturdysearch._core.config import PoolConfig
from sturdysearch._core.nodes import NodeConfig
from sturdysearch._core.timeouts import Deadline
from sturdysearch.errors import ConnectionError, DeadlineExceeded, TransportError
from sturdysearch.testing.loops import run_clean
from sturdysearch.tls import TLSConfig

NODE = NodeConfig("http", "127.0.0.1", 9200)


class FakeTransport:
    """What ``AsyncConnection`` asks of its transport outside an exchange."""

    def __init__(self, ident: int) -> None:
        self.ident = ident
        self.aborted = False

    def is_closing(self) -> bool:
        return self.aborted

    def abort(self) -> None:
        self.aborted = True


class Connector:
    """Stands in for ``open_connection``: counts connects, can hold them at a gate or fail."""

    def __init__(self) -> None:
        self.made: list[AsyncConnection] = []
        self.attempts = 0
        self.gate: asyncio.Event | None = None
        self.fail_next = 0
        self.deadlines: list[Deadline] = []

    async def __call__(self, node: NodeConfig, **kwargs: Any) -> AsyncConnection:
        self.attempts += 1
        self.deadlines.append(kwargs["deadline"])
        if self.gate is not None:
            await self.gate.wait()
        if self.fail_next:
            self.fail_next -= 1
            raise ConnectionError("could not connect: refused", node=node.url)
        transport = FakeTransport(len(self.made))
        conn = AsyncConnection(
            cast(asyncio.Transport, transport), _ResponseProtocol(), node.url, time.monotonic()
        )
        self.made.append(conn)
        return conn


@pytest.fixture
def connector(monkeypatch: pytest.MonkeyPatch) -> Connector:
    fake = Connector()
    monkeypatch.setattr(pool_module, "open_connection", fake)
    return fake


def make_pool(size: int = 1, idle_timeout: float = 30.0) -> AsyncNodePool:
    return AsyncNodePool(
        NODE,
        PoolConfig(connections_per_node=size, idle_timeout=idle_timeout),
        TLSConfig(),
        None,
        2.0,
    )


def deadline(seconds: float = 30.0) -> Deadline:
    return Deadline(time.monotonic(), seconds)


def transport_of(conn: AsyncConnection) -> FakeTransport:
    return cast(FakeTransport, conn.transport)


async def turns(n: int = 5) -> None:
    """Let every ready callback and task run ``n`` times over."""
    for _ in range(n):
        await asyncio.sleep(0)


def check_books(pool: AsyncNodePool, *, open_: int, idle: int) -> None:
    assert pool.open_connections == open_
    assert pool.idle_connections == idle
    assert pool.in_use == open_ - idle


# -- the bound -------------------------------------------------------------------------------


def test_the_bound_is_never_exceeded_and_connections_are_reused(connector: Connector) -> None:
    async def main() -> None:
        pool = make_pool(3)
        holding: set[AsyncConnection] = set()
        peak = 0

        async def worker(i: int) -> None:
            nonlocal peak
            conn = await pool.acquire(deadline())
            assert conn not in holding, "one connection handed to two tasks"
            holding.add(conn)
            peak = max(peak, len(holding))
            assert pool.open_connections <= 3
            await turns(1 + i % 4)
            holding.discard(conn)
            pool.release(conn, reusable=True)

        await asyncio.gather(*(worker(i) for i in range(40)))
        assert peak == 3
        assert connector.attempts == 3
        check_books(pool, open_=3, idle=3)

    run_clean(main)


def test_connects_do_not_exceed_the_bound_while_in_progress(connector: Connector) -> None:
    async def main() -> None:
        pool = make_pool(2)
        connector.gate = asyncio.Event()
        tasks = [asyncio.ensure_future(pool.acquire(deadline())) for _ in range(5)]
        await turns()
        # Two slots are taken by connects still in progress; the other three wait.
        assert connector.attempts == 2
        assert pool.open_connections == 2
        connector.gate.set()
        await turns()
        assert [t.done() for t in tasks] == [True, True, False, False, False]
        first, second = tasks[0].result(), tasks[1].result()
        assert first is not second
        pool.release(first, reusable=True)
        pool.release(second, reusable=True)
        await turns()
        # Handed over to the next two in the queue, not reconnected.
        assert [t.done() for t in tasks] == [True, True, True, True, False]
        assert {tasks[2].result(), tasks[3].result()} == {first, second}
        pool.release(tasks[2].result(), reusable=True)
        assert await tasks[4] is tasks[2].result()
        pool.release(tasks[3].result(), reusable=True)
        pool.release(tasks[4].result(), reusable=True)
        assert connector.attempts == 2
        check_books(pool, open_=2, idle=2)

    run_clean(main)


# -- the queue -------------------------------------------------------------------------------


def test_waiters_are_served_first_come_first_served(connector: Connector) -> None:
    async def main() -> None:
        pool = make_pool(1)
        holder = await pool.acquire(deadline())
        order: list[str] = []

        async def waiter(name: str) -> None:
            conn = await pool.acquire(deadline())
            assert conn is holder  # handed over, never reconnected
            order.append(name)
            await turns(2)
            pool.release(conn, reusable=True)

        tasks = []
        for i in range(5):
            tasks.append(asyncio.ensure_future(waiter(f"w{i}")))
            await turns(1)  # queued in this order
        pool.release(holder, reusable=True)
        await asyncio.gather(*tasks)
        assert order == ["w0", "w1", "w2", "w3", "w4"]
        assert connector.attempts == 1
        check_books(pool, open_=1, idle=1)

    run_clean(main)


def test_a_newcomer_never_overtakes_a_queued_waiter(connector: Connector) -> None:
    async def main() -> None:
        pool = make_pool(1)
        holder = await pool.acquire(deadline())
        first = asyncio.ensure_future(pool.acquire(deadline()))
        await turns()
        # Released while the waiter has not run yet: it is handed over, not put in the idle
        # list where the newcomer below could take it.
        pool.release(holder, reusable=True)
        assert pool.idle_connections == 0
        newcomer = asyncio.ensure_future(pool.acquire(deadline()))
        await turns()
        assert first.done() and first.result() is holder
        assert not newcomer.done()
        pool.release(first.result(), reusable=True)
        assert await newcomer is holder
        pool.release(holder, reusable=True)
        assert connector.attempts == 1
        check_books(pool, open_=1, idle=1)

    run_clean(main)


def test_a_newcomer_does_not_take_the_slot_of_a_discarded_connection(
    connector: Connector,
) -> None:
    async def main() -> None:
        pool = make_pool(1)
        holder = await pool.acquire(deadline())
        first = asyncio.ensure_future(pool.acquire(deadline()))
        await turns()
        pool.release(holder, reusable=False)
        assert transport_of(holder).aborted
        newcomer = asyncio.ensure_future(pool.acquire(deadline()))
        await turns()
        # The queued waiter got the slot and connected; the newcomer waits behind it.
        assert first.done()
        replacement = first.result()
        assert replacement is not holder and replacement is connector.made[1]
        assert not newcomer.done()
        assert connector.attempts == 2
        check_books(pool, open_=1, idle=0)
        pool.release(replacement, reusable=True)
        assert await newcomer is replacement
        pool.release(replacement, reusable=True)
        check_books(pool, open_=1, idle=1)

    run_clean(main)


# -- deadlines -------------------------------------------------------------------------------


def test_a_waiter_whose_deadline_passes_gets_deadline_exceeded(connector: Connector) -> None:
    async def main() -> None:
        pool = make_pool(2)
        held = [await pool.acquire(deadline()), await pool.acquire(deadline())]
        start = time.monotonic()
        with pytest.raises(DeadlineExceeded) as info:
            await pool.acquire(deadline(0.2))
        elapsed = time.monotonic() - start
        assert 0.18 <= elapsed < 3.0
        assert "2 pooled connections" in str(info.value)
        assert info.value.node == NODE.url
        assert info.value.request_sent is False
        # The expired waiter is skipped: the next release goes to the idle list.
        pool.release(held[0], reusable=True)
        check_books(pool, open_=2, idle=1)
        pool.release(held[1], reusable=True)
        check_books(pool, open_=2, idle=2)
        assert connector.attempts == 2

    run_clean(main)


def test_a_passed_deadline_fails_at_once_without_queueing(connector: Connector) -> None:
    async def main() -> None:
        pool = make_pool(1)
        conn = await pool.acquire(deadline())
        with pytest.raises(DeadlineExceeded, match="1 pooled connections"):
            await pool.acquire(Deadline(time.monotonic() - 1.0, 0.5))
        assert len(pool._waiters) == 0
        pool.release(conn, reusable=True)
        check_books(pool, open_=1, idle=1)

    run_clean(main)


def test_an_expired_waiter_does_not_swallow_a_handed_slot(connector: Connector) -> None:
    async def main() -> None:
        pool = make_pool(1)
        holder = await pool.acquire(deadline())
        expiring = asyncio.ensure_future(pool.acquire(deadline(0.05)))
        patient = asyncio.ensure_future(pool.acquire(deadline()))
        with pytest.raises(DeadlineExceeded):
            await expiring
        pool.release(holder, reusable=False)
        replacement = await patient
        assert replacement is connector.made[1]
        pool.release(replacement, reusable=True)
        check_books(pool, open_=1, idle=1)

    run_clean(main)


# -- cancellation ----------------------------------------------------------------------------


def test_a_cancelled_waiter_passes_its_handed_connection_on(connector: Connector) -> None:
    async def main() -> None:
        pool = make_pool(1)
        holder = await pool.acquire(deadline())
        first = asyncio.ensure_future(pool.acquire(deadline()))
        second = asyncio.ensure_future(pool.acquire(deadline()))
        await turns()
        pool.release(holder, reusable=True)  # handed to ``first``, which has not run yet
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        assert await second is holder
        assert not transport_of(holder).aborted
        assert connector.attempts == 1
        check_books(pool, open_=1, idle=0)
        pool.release(holder, reusable=True)
        check_books(pool, open_=1, idle=1)

    run_clean(main)


def test_a_cancelled_waiter_with_nobody_behind_it_returns_the_connection_to_idle(
    connector: Connector,
) -> None:
    async def main() -> None:
        pool = make_pool(1)
        holder = await pool.acquire(deadline())
        first = asyncio.ensure_future(pool.acquire(deadline()))
        await turns()
        pool.release(holder, reusable=True)
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        check_books(pool, open_=1, idle=1)
        assert await pool.acquire(deadline()) is holder

    run_clean(main)


def test_a_cancelled_waiter_passes_a_handed_slot_on(connector: Connector) -> None:
    async def main() -> None:
        pool = make_pool(1)
        holder = await pool.acquire(deadline())
        first = asyncio.ensure_future(pool.acquire(deadline()))
        second = asyncio.ensure_future(pool.acquire(deadline()))
        await turns()
        pool.release(holder, reusable=False)  # a free slot handed to ``first``
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        replacement = await second
        assert replacement is connector.made[1]
        assert connector.attempts == 2
        check_books(pool, open_=1, idle=0)
        pool.release(replacement, reusable=True)
        check_books(pool, open_=1, idle=1)

    run_clean(main)


def test_a_cancelled_waiter_that_got_nothing_leaves_the_queue(connector: Connector) -> None:
    async def main() -> None:
        pool = make_pool(1)
        holder = await pool.acquire(deadline())
        first = asyncio.ensure_future(pool.acquire(deadline()))
        second = asyncio.ensure_future(pool.acquire(deadline()))
        await turns()
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        pool.release(holder, reusable=True)
        assert await second is holder
        pool.release(holder, reusable=True)
        check_books(pool, open_=1, idle=1)

    run_clean(main)


def test_cancelling_a_connect_frees_its_slot(connector: Connector) -> None:
    async def main() -> None:
        pool = make_pool(1)
        connector.gate = asyncio.Event()
        connecting = asyncio.ensure_future(pool.acquire(deadline()))
        waiting = asyncio.ensure_future(pool.acquire(deadline()))
        await turns()
        assert connector.attempts == 1
        connecting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await connecting
        await turns()
        assert connector.attempts == 2  # the waiter got the slot and connects in it
        connector.gate.set()
        conn = await waiting
        pool.release(conn, reusable=True)
        check_books(pool, open_=1, idle=1)

    run_clean(main)


# -- discarded and failed connections --------------------------------------------------------


def test_a_discarded_connection_hands_its_slot_to_the_next_waiter(connector: Connector) -> None:
    async def main() -> None:
        pool = make_pool(2)
        a = await pool.acquire(deadline())
        b = await pool.acquire(deadline())
        waiting = asyncio.ensure_future(pool.acquire(deadline()))
        await turns()
        assert not waiting.done()
        pool.release(a, reusable=False)
        assert transport_of(a).aborted
        c = await waiting
        assert c is connector.made[2]
        assert connector.attempts == 3
        check_books(pool, open_=2, idle=0)
        pool.release(b, reusable=True)
        pool.release(c, reusable=True)
        check_books(pool, open_=2, idle=2)

    run_clean(main)


def test_a_discarded_connection_with_nobody_waiting_gives_up_its_slot(
    connector: Connector,
) -> None:
    async def main() -> None:
        pool = make_pool(2)
        a = await pool.acquire(deadline())
        pool.release(a, reusable=False)
        assert transport_of(a).aborted
        check_books(pool, open_=0, idle=0)

    run_clean(main)


def test_a_failing_connect_frees_its_slot(connector: Connector) -> None:
    async def main() -> None:
        pool = make_pool(1)
        connector.fail_next = 1
        with pytest.raises(ConnectionError, match="refused"):
            await pool.acquire(deadline())
        check_books(pool, open_=0, idle=0)
        conn = await pool.acquire(deadline())
        assert conn is connector.made[0]
        check_books(pool, open_=1, idle=0)

    run_clean(main)


def test_a_failing_connect_hands_its_slot_to_a_waiter(connector: Connector) -> None:
    async def main() -> None:
        pool = make_pool(1)
        connector.gate = asyncio.Event()
        connector.fail_next = 1
        failing = asyncio.ensure_future(pool.acquire(deadline()))
        waiting = asyncio.ensure_future(pool.acquire(deadline()))
        await turns()
        assert connector.attempts == 1
        connector.gate.set()
        with pytest.raises(ConnectionError):
            await failing
        conn = await waiting
        assert conn is connector.made[0]
        assert connector.attempts == 2
        check_books(pool, open_=1, idle=0)

    run_clean(main)


def test_the_connect_gets_the_callers_deadline(connector: Connector) -> None:
    async def main() -> None:
        pool = make_pool(1)
        limit = deadline(7.0)
        await pool.acquire(limit)
        assert connector.deadlines == [limit]

    run_clean(main)


# -- idle connections ------------------------------------------------------------------------


def test_an_idle_connection_past_idle_timeout_is_discarded(connector: Connector) -> None:
    async def main() -> None:
        pool = make_pool(2, idle_timeout=5.0)
        old = await pool.acquire(deadline())
        pool.release(old, reusable=True)
        old.idle_since -= 10.0  # idle for longer than idle_timeout
        fresh = await pool.acquire(deadline())
        assert fresh is not old and fresh is connector.made[1]
        assert transport_of(old).aborted
        check_books(pool, open_=1, idle=0)

    run_clean(main)


def test_an_idle_connection_within_idle_timeout_is_reused(connector: Connector) -> None:
    async def main() -> None:
        pool = make_pool(2, idle_timeout=5.0)
        conn = await pool.acquire(deadline())
        pool.release(conn, reusable=True)
        conn.idle_since -= 4.0
        assert await pool.acquire(deadline()) is conn
        assert not transport_of(conn).aborted
        assert connector.attempts == 1

    run_clean(main)


def test_idle_connections_are_reused_newest_first(connector: Connector) -> None:
    async def main() -> None:
        pool = make_pool(2)
        a = await pool.acquire(deadline())
        b = await pool.acquire(deadline())
        pool.release(a, reusable=True)
        pool.release(b, reusable=True)
        assert await pool.acquire(deadline()) is b

    run_clean(main)


@pytest.mark.parametrize("how", ["eof", "closing"])
def test_a_dropped_idle_connection_is_discarded(connector: Connector, how: str) -> None:
    async def main() -> None:
        pool = make_pool(2)
        dropped = await pool.acquire(deadline())
        kept = await pool.acquire(deadline())
        pool.release(kept, reusable=True)
        pool.release(dropped, reusable=True)
        # The server closed it (or sent unsolicited bytes) while it sat idle.
        if how == "eof":
            dropped.protocol.closed = True
        else:
            transport_of(dropped).aborted = True
        assert await pool.acquire(deadline()) is kept
        check_books(pool, open_=1, idle=0)
        assert connector.attempts == 2

    run_clean(main)


def test_releasing_a_dropped_connection_does_not_keep_it(connector: Connector) -> None:
    async def main() -> None:
        pool = make_pool(1)
        conn = await pool.acquire(deadline())
        waiting = asyncio.ensure_future(pool.acquire(deadline()))
        await turns()
        conn.protocol.closed = True
        pool.release(conn, reusable=True)
        assert transport_of(conn).aborted
        fresh = await waiting
        assert fresh is connector.made[1]
        check_books(pool, open_=1, idle=0)

    run_clean(main)


# -- close and fork --------------------------------------------------------------------------


def test_close_aborts_every_idle_connection(connector: Connector) -> None:
    async def main() -> None:
        pool = make_pool(3)
        conns = [await pool.acquire(deadline()) for _ in range(3)]
        for conn in conns:
            pool.release(conn, reusable=True)
        check_books(pool, open_=3, idle=3)
        pool.close()
        assert all(transport_of(c).aborted for c in conns)
        check_books(pool, open_=0, idle=0)
        with pytest.raises(TransportError, match="the client is closed"):
            await pool.acquire(deadline())
        assert connector.attempts == 3

    run_clean(main)


def test_close_wakes_every_waiter_with_transport_error(connector: Connector) -> None:
    async def main() -> None:
        pool = make_pool(1)
        holder = await pool.acquire(deadline())
        waiters = [asyncio.ensure_future(pool.acquire(deadline())) for _ in range(3)]
        await turns()
        start = time.monotonic()
        pool.close()
        results = await asyncio.gather(*waiters, return_exceptions=True)
        assert time.monotonic() - start < 1.0  # woken, not left to their deadlines
        for result in results:
            assert isinstance(result, TransportError)
            assert not isinstance(result, DeadlineExceeded)
            assert "the client is closed" in str(result)
        pool.release(holder, reusable=True)
        assert transport_of(holder).aborted
        check_books(pool, open_=0, idle=0)

    run_clean(main)


def test_a_pid_change_forgets_the_connections(
    connector: Connector, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def main() -> None:
        pool = make_pool(1)
        inherited = await pool.acquire(deadline())
        pool.release(inherited, reusable=True)
        check_books(pool, open_=1, idle=1)
        child_pid = pool._pid + 1
        monkeypatch.setattr(pool_module, "os", types.SimpleNamespace(getpid=lambda: child_pid))
        conn = await pool.acquire(deadline())
        # A connection of its own, not the parent's socket, and the parent's left untouched
        # (no word on the wire: it still serves the parent).
        assert conn is not inherited and conn is connector.made[1]
        assert conn.pid == child_pid
        assert not transport_of(inherited).aborted
        check_books(pool, open_=1, idle=0)
        pool.release(conn, reusable=True)
        check_books(pool, open_=1, idle=1)

    run_clean(main)


def test_a_parents_connection_released_in_the_child_is_not_counted(
    connector: Connector, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def main() -> None:
        pool = make_pool(1)
        inherited = await pool.acquire(deadline())  # in use at the fork
        child_pid = pool._pid + 1
        monkeypatch.setattr(pool_module, "os", types.SimpleNamespace(getpid=lambda: child_pid))
        own = await pool.acquire(deadline())
        check_books(pool, open_=1, idle=0)
        pool.release(inherited, reusable=True)
        # The parent's connection never counted in the child's books; ``own`` still does.
        check_books(pool, open_=1, idle=0)
        assert inherited not in pool._idle
        pool.release(own, reusable=True)
        check_books(pool, open_=1, idle=1)

    run_clean(main)
