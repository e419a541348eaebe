"""What only the asyncio client has: cancellation, many concurrent tasks, tasks not threads.

Each test runs its own event loop with an exception handler that records what asyncio reports
about leaks ("Unclosed connection", "Unclosed client session", "Task was destroyed but it is
pending"); anything recorded fails the test.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time

import pytest

from sturdysearch import AsyncClient
from sturdysearch.errors import DeadlineExceeded
from sturdysearch.testing.faults import Fault
from sturdysearch.testing.loops import run_clean
from sturdysearch.testing.proxy import FaultProxy

MATCH_ALL = {"match_all": {}}


def test_cancelled_call_discards_its_connection(proxy: FaultProxy) -> None:
    async def main() -> None:
        async with AsyncClient([proxy.url]) as client:
            await client.search(query=MATCH_ALL)
            proxy.set_fault(Fault.blackhole())
            task = asyncio.ensure_future(client.search(query=MATCH_ALL))
            await asyncio.to_thread(proxy.wait_for, lambda s: s.requests_seen >= 2)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            proxy.set_fault(None)
            # The cancelled call's connection is gone (discarded, not returned to the pool)...
            await asyncio.to_thread(proxy.wait_for, lambda s: s.open_connections <= 1)
            # ...and the client still works, with honest bookkeeping.
            answer = await client.search(query=MATCH_ALL)
            assert "hits" in answer
            status = client.nodes_status()
            assert status[0]["in_flight"] == 0
            assert status[0]["state"] == "alive"

    run_clean(main)


def test_asyncio_timeout_and_wait_for_around_a_call(proxy: FaultProxy) -> None:
    async def main() -> None:
        proxy.set_fault(Fault.blackhole())
        async with AsyncClient([proxy.url], timeout=30, read_timeout=30) as client:
            start = time.monotonic()
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(client.search(query=MATCH_ALL), 0.3)
            assert time.monotonic() - start < 0.6
            if hasattr(asyncio, "timeout"):  # Python 3.11+
                start = time.monotonic()
                with pytest.raises(TimeoutError):
                    async with asyncio.timeout(0.3):
                        await client.search(query=MATCH_ALL)
                assert time.monotonic() - start < 0.6
            # The client's own deadline still bounds a call nobody cancels.
            start = time.monotonic()
            with pytest.raises(DeadlineExceeded):
                await client.search(query=MATCH_ALL, timeout=0.4)
            assert time.monotonic() - start < 0.7

    run_clean(main)


def test_ten_thousand_concurrent_calls_share_a_bounded_pool(node_url: str) -> None:
    async def main() -> tuple[int, int]:
        with FaultProxy(node_url) as proxy:
            async with AsyncClient([proxy.url], connections_per_node=32, timeout=60) as client:
                peak = 0

                async def one() -> None:
                    nonlocal peak
                    answer = await client.request("GET", "/_cluster/health")
                    assert answer["status"] in ("green", "yellow")
                    peak = max(peak, proxy.open_connections)

                await asyncio.gather(*(one() for _ in range(10_000)))
            return peak, proxy.stats.connections_accepted

    peak, accepted = run_clean(main)
    assert peak <= 32
    assert accepted <= 32, (peak, accepted)


def test_background_work_runs_as_tasks_not_threads(proxy: FaultProxy, node_url: str) -> None:
    async def main() -> None:
        with FaultProxy(node_url) as slow:
            slow.set_fault(Fault.latency(0.5))
            async with AsyncClient([slow.url, proxy.url], hedge_after=0.05) as client:
                for _ in range(6):
                    await client.search(query=MATCH_ALL)  # hedges fire on the slow node
                proxy.set_fault(Fault.refuse())
                for _ in range(4):
                    with contextlib.suppress(Exception):
                        await client.search(query=MATCH_ALL)
                # A node was ejected: the background prober is running, as a task, and the
                # client started no thread of its own (name resolution in connect may use the
                # loop's default executor, which is not ours).
                names = {t.get_name() for t in asyncio.all_tasks()}
                assert "sturdysearch-health" in names
                ours = [
                    t.name
                    for t in threading.enumerate()
                    if t.name.startswith(("sturdysearch-health", "sturdysearch-hedge"))
                ]
                assert ours == []

    run_clean(main)
