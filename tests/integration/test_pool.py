"""One bounded pool per node, shared by threads, never reused across fork, never leaking."""

from __future__ import annotations

import gc
import os
import random
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from sturdysearch import Client
from sturdysearch.errors import TransportError
from sturdysearch.testing.faults import Fault
from sturdysearch.testing.proxy import FaultProxy

MATCH_ALL = {"match_all": {}}


def open_fds() -> int:
    return len(os.listdir(f"/proc/{os.getpid()}/fd"))


def test_pool_is_bounded_and_reused(proxy: FaultProxy) -> None:
    peak = 0
    lock = threading.Lock()
    proxy.set_fault(Fault.latency(0.02))
    with Client([proxy.url], connections_per_node=3) as client:

        def call(_: int) -> None:
            nonlocal peak
            client.search(query=MATCH_ALL)
            with lock:
                peak = max(peak, proxy.open_connections)

        with ThreadPoolExecutor(max_workers=12) as pool:
            list(pool.map(call, range(120)))
        stats = client.pool_stats()[proxy.url]
    assert proxy.stats.connections_accepted <= 3
    assert peak <= 3
    assert stats["open"] <= 3 and stats["in_use"] == 0


def test_one_client_shared_by_threads(client: Client, index_name: str) -> None:
    errors: list[BaseException] = []

    def writer(worker: int) -> None:
        try:
            for i in range(50):
                client.index(index=index_name, id=f"{worker}-{i}", document={"w": worker, "i": i})
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    client.indices.refresh(index=index_name)
    assert client.count(index=index_name)["count"] == 400


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is not available on this platform")
def test_child_never_reuses_the_parents_sockets(proxy: FaultProxy) -> None:
    with Client([proxy.url]) as client:
        client.search(query=MATCH_ALL)
        assert client.pool_stats()[proxy.url]["idle"] == 1
        accepted_before = proxy.stats.connections_accepted
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: report what it sees, then exit without running atexit handlers
            code = 0
            try:
                stats = client.pool_stats()[proxy.url]
                client.search(query=MATCH_ALL)
                os.write(write_end, f"{stats['idle']},{stats['open']}".encode())
            except BaseException:
                code = 1
            os._exit(code)
        os.close(write_end)
        _, status = os.waitpid(pid, 0)
        report = os.read(read_end, 100).decode()
        os.close(read_end)
        assert os.waitstatus_to_exitcode(status) == 0
        assert report == "0,0"  # the child started with an empty pool
        # The child opened its own connection; the parent's is still healthy and reused.
        assert proxy.stats.connections_accepted == accepted_before + 1
        client.search(query=MATCH_ALL)
        assert proxy.stats.connections_accepted == accepted_before + 1


def test_no_leak_after_many_calls_with_random_faults(node_url: str) -> None:
    gc.collect()
    fds_before = open_fds()
    threads_before = threading.active_count()
    rng = random.Random(7)
    failures = 0
    with FaultProxy(node_url) as proxy:
        proxy.set_fault(Fault.random(reset_probability=0.05, seed=11))
        with Client([proxy.url], connections_per_node=4, read_timeout=2, timeout=5) as client:

            def call(i: int) -> int:
                try:
                    if rng.random() < 0.5:
                        client.search(query=MATCH_ALL, size=1)
                    else:
                        client.request("GET", "/_cluster/health")
                except TransportError:
                    return 1
                return 0

            with ThreadPoolExecutor(max_workers=4) as pool:
                failures = sum(pool.map(call, range(10_000)))
            assert client.pool_stats()[proxy.url]["in_use"] == 0
        assert proxy.stats.faults_applied > 100
    gc.collect()
    # Idempotent calls are retried through the random resets. What still fails is mostly calls
    # whose node was ejected and whose one awaited probe met a reset too: the probe is shared
    # (issue 19), so one failed probe fails every call waiting on it (measured: 113-133 of
    # 10,000, against under 100 when each call probed for itself).
    assert failures < 200
    assert open_fds() == fds_before
    assert threading.active_count() == threads_before
