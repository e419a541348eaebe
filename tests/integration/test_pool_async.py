"""The asyncio client's pool against a real node: one bounded pool per node shared by many tasks,
reused, and leaking neither connections, file descriptors nor bookkeeping through thousands of
calls with random connection resets. The asyncio twins of tests in ``test_pool.py``."""

from __future__ import annotations

import asyncio
import gc
import os
import random
import threading

from sturdysearch import AsyncClient
from sturdysearch.errors import TransportError
from sturdysearch.testing.faults import Fault
from sturdysearch.testing.loops import run_clean
from sturdysearch.testing.proxy import FaultProxy

MATCH_ALL = {"match_all": {}}


def open_fds() -> int:
    return len(os.listdir(f"/proc/{os.getpid()}/fd"))


def test_async_pool_is_bounded_and_reused(proxy: FaultProxy) -> None:
    proxy.set_fault(Fault.latency(0.02))

    async def main() -> tuple[int, int, dict[str, int]]:
        peak_proxy = 0
        peak_in_use = 0
        async with AsyncClient([proxy.url], connections_per_node=3) as client:

            async def worker() -> None:
                nonlocal peak_proxy, peak_in_use
                for _ in range(10):
                    await client.search(query=MATCH_ALL)
                    peak_proxy = max(peak_proxy, proxy.open_connections)
                    stats = client.pool_stats()[proxy.url]
                    assert stats["open"] <= 3, stats
                    peak_in_use = max(peak_in_use, stats["in_use"])

            await asyncio.gather(*(worker() for _ in range(12)))
            stats = client.pool_stats()[proxy.url]
        return peak_proxy, peak_in_use, stats

    peak, peak_in_use, stats = run_clean(main)
    assert 1 <= proxy.stats.connections_accepted <= 3
    assert proxy.stats.requests_seen >= 120  # 120 calls over at most 3 connections: reused
    assert peak <= 3
    assert 1 <= peak_in_use <= 3
    assert stats["open"] <= 3 and stats["in_use"] == 0


def test_async_no_leak_after_many_calls_with_random_faults(node_url: str) -> None:
    gc.collect()
    fds_before = open_fds()
    threads_before = threading.active_count()
    rng = random.Random(7)
    calls = 10_000

    async def main() -> tuple[int, dict[str, int], int]:
        failures = 0
        peak_open = 0
        async with AsyncClient(
            [proxy.url], connections_per_node=4, read_timeout=2, timeout=5
        ) as client:

            async def call() -> int:
                try:
                    if rng.random() < 0.5:
                        await client.search(query=MATCH_ALL, size=1)
                    else:
                        await client.request("GET", "/_cluster/health")
                except TransportError:
                    return 1
                return 0

            async def worker(n: int) -> None:
                nonlocal failures, peak_open
                for _ in range(n):
                    failures += await call()
                    stats = client.pool_stats()[proxy.url]
                    assert 0 <= stats["in_use"] <= stats["open"] <= 4, stats
                    peak_open = max(peak_open, stats["open"])

            # More tasks than connections: the queue and its hand-over are exercised too.
            await asyncio.gather(*(worker(calls // 8) for _ in range(8)))
            stats = client.pool_stats()[proxy.url]
        return failures, stats, peak_open

    with FaultProxy(node_url) as proxy:
        proxy.set_fault(Fault.random(reset_probability=0.05, seed=11))
        failures, stats, peak_open = run_clean(main)
        assert proxy.stats.faults_applied > 100
        assert proxy.stats.connections_accepted > 100  # reset connections were replaced
    gc.collect()
    assert stats["in_use"] == 0
    assert stats["idle"] == stats["open"] <= 4
    assert peak_open == 4
    assert failures < 100  # idempotent calls are retried through the random resets
    assert open_fds() == fds_before
    assert threading.active_count() == threads_before
