"""BulkIndexer against clusters that misbehave for real: a node SIGKILLed and restarted while
connections are reset, a write queue that rejects with 429, and an endless stream in bounded
memory. The long versions are ``slow`` (``make test-all``)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from sturdysearch import BulkIndexer, Client
from sturdysearch.testing.cluster import LocalCluster
from sturdysearch.testing.faults import Fault
from sturdysearch.testing.proxy import FaultProxy

MAPPINGS = {
    "dynamic": "strict",
    "properties": {
        "@timestamp": {"type": "date"},
        "host": {"type": "keyword"},
        "level": {"type": "keyword"},
        "status": {"type": "integer"},
        "bytes": {"type": "long"},
        "message": {"type": "text"},
        "trace_id": {"type": "keyword"},
    },
}
RSS_LIMIT_MB = 150


def log_doc(i: int, bad: bool) -> dict[str, Any]:
    return {
        "@timestamp": f"2024-05-{1 + i // 86_400_000 % 28:02d}T{i // 3_600_000 % 24:02d}:"
        f"{i // 60_000 % 60:02d}:{i // 1000 % 60:02d}.{i % 1000:03d}Z",
        "host": f"web-{i % 37}",
        "level": ("info", "info", "info", "warn", "error")[i % 5],
        "status": "not-a-number" if bad else (200, 200, 201, 404, 500)[i % 5],
        "bytes": 1000 + i % 50_000,
        "message": f"GET /api/v2/orders/{i}?page={i % 13} handled by worker {i % 8}",
        "trace_id": f"{i * 2654435761 % 2**64:016x}",
    }


def is_bad(i: int) -> bool:
    """0.1% of the documents violate the mapping."""
    return i % 1000 == 999


def read_dead_ids(path: Path) -> list[str]:
    if not path.exists():
        return []
    with open(path, "rb") as f:
        return [next(iter(orjson.loads(line)["action"].values()))["_id"] for line in f]


@pytest.fixture(scope="module")
def three_nodes(cluster_factory: Any) -> Iterator[LocalCluster]:
    cluster: LocalCluster = cluster_factory(nodes=3)
    try:
        yield cluster
    finally:
        cluster.close()


def node_kill_scenario(cluster: LocalCluster, n: int, tmp_path: Path) -> None:
    """``n`` log documents with ids, 0.1% invalid, through proxies resetting 2% of the
    requests, while a node is killed and restarted: the index ends with exactly the valid
    documents, the dead-letter file with exactly the invalid ones, nothing twice."""
    index = f"kill-{uuid.uuid4().hex[:8]}"
    dlq = tmp_path / "dlq.jsonl"
    with Client(cluster.urls) as direct:
        direct.indices.create(
            index=index,
            mappings=MAPPINGS,
            settings={"number_of_shards": 3, "number_of_replicas": 1, "refresh_interval": "5s"},
        )
        cluster.wait_for_health("green", timeout=120)
    proxies = [FaultProxy(url).start() for url in cluster.urls]
    for seed, proxy in enumerate(proxies):
        proxy.set_fault(Fault.random(0.02, seed=seed).matching(path_regex="_bulk"))
    pause = 30.0 / n if n < 100_000 else 0.0  # a short run is stretched over ~30 s
    try:
        with (
            Client([p.url for p in proxies]) as client,
            BulkIndexer(client, index, dead_letter=dlq, workers=3, max_actions=500) as bulk,
        ):
            for i in range(n):
                if i == n * 3 // 10:
                    cluster.stop_node(2, kill=True)  # SIGKILL, mid-run
                elif i == n // 2:
                    cluster.start_node(2)  # boots while the documents keep coming
                bulk.index(log_doc(i, is_bad(i)), id=str(i))
                if pause and i % 100 == 0:
                    time.sleep(pause * 100)
        stats = bulk.stats
    finally:
        for proxy in proxies:
            proxy.close()
    bad = {str(i) for i in range(n) if is_bad(i)}
    assert stats.pending == 0 and stats.added == n
    assert stats.succeeded == n - len(bad) and stats.dead_lettered == len(bad)
    assert stats.failed_requests > 0 and stats.retried_requests > 0
    dead = read_dead_ids(dlq)
    assert len(dead) == len(set(dead)) and set(dead) == bad
    cluster.wait_for_health("yellow", nodes=3, timeout=180)
    with Client(cluster.urls) as direct:
        direct.indices.refresh(index=index)
        assert direct.count(index=index)["count"] == n - len(bad)
        # Only ids of valid and invalid documents were sent, and none of the invalid ones is
        # in the index: with the count right, the index holds exactly the valid ids, once each.
        query = {"ids": {"values": sorted(bad)}}
        assert direct.count(index=index, query=query)["count"] == 0
        direct.indices.delete(index=index)


def test_node_killed_mid_run_twenty_thousand(three_nodes: LocalCluster, tmp_path: Path) -> None:
    node_kill_scenario(three_nodes, 20_000, tmp_path)


@pytest.mark.slow
def test_node_killed_mid_run_one_million(three_nodes: LocalCluster, tmp_path: Path) -> None:
    node_kill_scenario(three_nodes, 1_000_000, tmp_path)


def test_real_429s_from_a_tiny_write_queue(cluster_factory: Any, tmp_path: Path) -> None:
    """One write thread, a write queue of one, eight shards and eight workers: the node
    rejects items with 429 (es_rejected_execution_exception), and still every document is
    indexed in the end."""
    cluster: LocalCluster = cluster_factory(
        nodes=1, settings={"thread_pool.write.size": 1, "thread_pool.write.queue_size": 1}
    )
    try:
        with Client(cluster.urls) as client:
            index = "rejections"
            client.indices.create(
                index=index,
                mappings=MAPPINGS,
                settings={"number_of_shards": 8, "number_of_replicas": 0},
            )
            rejected: list[int] = []

            def count_rejections(event: Any) -> None:
                if event.name == "bulk.batch" and event.fields["retried"]:
                    rejected.append(event.fields["retried"])

            client.tracer.subscribe(count_rejections)
            n = 8_000
            with BulkIndexer(
                client, index, dead_letter=tmp_path / "dlq.jsonl", workers=8, max_actions=250
            ) as bulk:
                for i in range(n):
                    bulk.index(log_doc(i, bad=False), id=str(i))
            stats = bulk.stats
            assert stats.retried_documents > 0 and rejected
            assert stats.succeeded == n and stats.dead_lettered == 0
            client.indices.refresh(index=index)
            assert client.count(index=index)["count"] == n
    finally:
        cluster.close()


RSS_CHILD = """
import os, resource, sys
from sturdysearch import BulkIndexer, Client
sys.path.insert(0, {tests!r})
from test_bulk_cluster import log_doc

url, index, n, dlq = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
def hwm_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
with Client([url]) as client, BulkIndexer(client, index, dead_letter=dlq, workers=2) as bulk:
    start = hwm_mb()
    for i in range(n):
        bulk.index(log_doc(i, bad=False), id=str(i))
print(start, hwm_mb(), bulk.stats.succeeded, bulk.stats.added)
"""


def rss_scenario(url: str, n: int, tmp_path: Path) -> tuple[float, float]:
    index = f"rss-{uuid.uuid4().hex[:8]}"
    with Client([url]) as client:
        client.indices.create(
            index=index,
            mappings=MAPPINGS,
            settings={"number_of_shards": 1, "number_of_replicas": 0, "refresh_interval": "-1"},
        )
        try:
            script = RSS_CHILD.format(tests=os.path.dirname(__file__))
            args = [sys.executable, "-c", script, url, index, str(n), str(tmp_path / "d.jsonl")]
            out = subprocess.run(args, capture_output=True, text=True, timeout=3600, check=True)
        finally:
            client.indices.delete(index=index, ignore=404)
    start, peak, succeeded, added = out.stdout.split()
    assert int(succeeded) == int(added) == n
    return float(start), float(peak)


def test_memory_stays_flat_on_a_long_stream(search_cluster: Any, tmp_path: Path) -> None:
    start, peak = rss_scenario(search_cluster.urls[0], 150_000, tmp_path)
    print(f"150,000 documents: peak RSS {peak:.0f} MB, {start:.0f} MB before the first")
    assert peak < RSS_LIMIT_MB, f"peak RSS {peak:.0f} MB (at start {start:.0f} MB)"


@pytest.mark.slow
def test_memory_stays_flat_over_five_million_documents(search_cluster: Any, tmp_path: Path) -> None:
    start, peak = rss_scenario(search_cluster.urls[0], 5_000_000, tmp_path)
    print(f"5,000,000 documents: peak RSS {peak:.0f} MB, {start:.0f} MB before the first")
    assert peak < RSS_LIMIT_MB, f"peak RSS {peak:.0f} MB (at start {start:.0f} MB)"
