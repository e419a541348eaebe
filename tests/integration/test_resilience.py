"""Retries, node ejection and probing, the retry budget, sniffing and hedged reads, on a real
3-node cluster with faults injected by proxies in front of its nodes."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sturdysearch import Client, Event
from sturdysearch.errors import (
    NoLiveNodesError,
    ServerError,
    SturdySearchError,
    TooManyRequestsError,
    TransportError,
)
from sturdysearch.testing.cluster import LocalCluster
from sturdysearch.testing.faults import Fault
from sturdysearch.testing.proxy import FaultProxy

MakeClient = Callable[..., Any]
INDEX = "resilience"
MATCH_ALL = {"match_all": {}}


@pytest.fixture(scope="module")
def cluster(cluster_factory: Any) -> LocalCluster:
    cluster: LocalCluster = cluster_factory(nodes=3)
    with Client(cluster.urls) as c:
        c.indices.delete(index=INDEX, ignore=404)
        c.indices.create(index=INDEX, settings={"number_of_shards": 1, "number_of_replicas": 2})
        for i in range(20):
            c.index(index=INDEX, id=str(i), document={"n": i})
        c.indices.refresh(index=INDEX)
        c.request(
            "GET",
            "/_cluster/health",
            params={"wait_for_status": "green", "timeout": "60s"},
            timeout=90,
        )
    return cluster


@pytest.fixture
def proxies(cluster: LocalCluster) -> Iterator[list[FaultProxy]]:
    ps = [FaultProxy(url).start() for url in cluster.urls]
    try:
        yield ps
    finally:
        for p in ps:
            p.close()


class Recorder:
    """Collects the client's events (thread-safe enough for counting)."""

    def __init__(self) -> None:
        self.events: list[tuple[float, Event]] = []

    def __call__(self, event: Event) -> None:
        self.events.append((time.monotonic(), event))

    def named(self, name: str) -> list[Event]:
        return [e for _, e in self.events if e.name == name]


def run_searches(client: Any, seconds: float) -> tuple[list[float], list[BaseException]]:
    durations: list[float] = []
    failures: list[BaseException] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t0 = time.monotonic()
        try:
            answer = client.search(index=INDEX, query=MATCH_ALL, size=1)
            assert answer["hits"]["total"]["value"] == 20
        except TransportError as exc:
            failures.append(exc)
        durations.append(time.monotonic() - t0)
    return durations, failures


def _blackhole_run(
    make_client: MakeClient, proxies: list[FaultProxy], seconds: float, hedge: float | None
) -> None:
    proxies[0].set_fault(Fault.blackhole())
    recorder = Recorder()
    read_timeout = 1.0
    options: dict[str, Any] = {"read_timeout": read_timeout, "probe_timeout": 0.5}
    if hedge is not None:
        options["hedge_after"] = hedge
    with make_client([p.url for p in proxies], **options) as client:
        client.tracer.subscribe(recorder)
        durations, failures = run_searches(client, seconds)
        status = client.nodes_status()
    assert failures == []
    assert len(durations) > 50
    ejections = [e for e in recorder.named("node.ejected") if e.fields["node"] == proxies[0].url]
    assert status[0]["state"] in ("ejected", "probing")
    assert status[1]["state"] == status[2]["state"] == "alive"
    if hedge is None:
        slowed = [d for d in durations if d >= read_timeout * 0.9]
        assert 1 <= len(slowed) <= len(ejections)
    else:
        # No call waited for the blackholed node (that takes the read timeout), and calls
        # answer within the hedge delay plus 100 ms; a pause of the machine or of the JVM
        # can stretch the odd call in a minute's thousands, so that bound is on the 99th
        # percentile and the maximum is held to half the read timeout.
        ranked = sorted(durations)
        assert ranked[-1] < read_timeout / 2, ranked[-5:]
        assert ranked[int(len(ranked) * 0.99)] < hedge + 0.1, ranked[-5:]
        assert recorder.named("request.hedge_won")


def test_blackholed_node_is_ejected_after_one_slow_call(
    make_client: MakeClient, proxies: list[FaultProxy]
) -> None:
    _blackhole_run(make_client, proxies, seconds=8, hedge=None)


def test_hedged_reads_hide_a_blackholed_node(
    make_client: MakeClient, proxies: list[FaultProxy]
) -> None:
    _blackhole_run(make_client, proxies, seconds=8, hedge=0.05)


@pytest.mark.slow
@pytest.mark.parametrize("hedge", [None, 0.05])
def test_blackholed_node_for_a_minute(
    make_client: MakeClient, proxies: list[FaultProxy], hedge: float | None
) -> None:
    _blackhole_run(make_client, proxies, seconds=60, hedge=hedge)


# Back in `make test`: its intermittent failure (about one run in three, no probe for 12 s
# after the ejection) was the blocking client waking its prober before the node was ejected;
# tests/unit/test_prober_wakeup.py pins the order.
def test_killed_node_is_readmitted_within_one_probe_interval(
    make_client: MakeClient, cluster: LocalCluster
) -> None:
    recorder = Recorder()
    cap = 2.0
    probe_timeout = 1.0
    with make_client(cluster.urls, probe_backoff_cap=cap, probe_timeout=probe_timeout) as client:
        client.tracer.subscribe(recorder)
        stop = threading.Event()
        outcome: dict[str, Any] = {}

        def load() -> None:
            durations: list[float] = []
            failures: list[BaseException] = []
            while not stop.is_set():
                d, f = run_searches(client, 0.5)
                durations += d
                failures += f
            outcome["durations"], outcome["failures"] = durations, failures

        worker = threading.Thread(target=load)
        worker.start()
        try:
            time.sleep(1.0)  # load before the crash (a duration, not synchronisation)
            cluster.stop_node(1, kill=True)
            victim = cluster.nodes[1].url
            killed_url = victim
            _wait(
                lambda: any(e.fields["node"] == killed_url for e in recorder.named("node.ejected")),
                10,
            )
            cluster.start_node(1)
            # "Answering again" = answering GET / within the probe timeout, as a probe would
            # need (a JVM just started can take longer on its first requests).
            answered_at = _wait_until_answers(victim, probe_timeout, timeout=120)
            readmitted = _wait(
                lambda: any(e.fields["node"] == victim for e in recorder.named("node.readmitted")),
                timeout=cap + probe_timeout + 5,
                context=[
                    (
                        round(t - answered_at, 2),
                        e.name,
                        e.fields.get("node"),
                        e.fields.get("error", e.fields.get("outcome")),
                    )
                    for t, e in recorder.events
                    if e.name != "request.attempt"
                ][-25:],
            )
            cluster.wait_for_health("yellow", nodes=3, timeout=120)
        finally:
            stop.set()
            worker.join()
    assert outcome["failures"] == []
    assert len(outcome["durations"]) > 20
    # Back in rotation within one probe interval (at most the cap, plus the probe itself).
    assert readmitted - answered_at <= cap + probe_timeout + 0.5


def _wait(predicate: Callable[[], bool], timeout: float, context: Any = None) -> float:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached in {timeout} s; {context or ''}")
        time.sleep(0.02)
    return time.monotonic()


def _wait_until_answers(url: str, within: float, timeout: float) -> float:
    """When ``url`` answers ``GET /`` within ``within`` three times in a row: a JVM just started
    answers one request in time and the next few late while it warms up, and a probe that
    meets one of those fails like a probe of a dead node (seen about one run in three)."""

    def answers() -> bool:
        try:
            with Client([url], timeout=within, read_timeout=within, connect_timeout=within) as c:
                for _ in range(3):
                    c.request("GET", "/", ignore=(405,))
                return True
        except SturdySearchError:  # not listening yet, or not serving yet (503)
            return False

    return _wait(answers, timeout)


def max_probes(seconds: float, *, base: float, cap: float) -> int:
    """The most probes one node's schedule can send in ``seconds``: the first at once, then
    each after at least half its backoff ceiling (``HealthConfig.probe_delay`` with rand=0)."""
    count, at, failures = 1, 0.0, 2
    while True:
        at += 0.5 * min(cap, base * 2.0 ** (failures - 2))
        if at > seconds:
            return count
        count += 1
        failures += 1


def test_retry_budget_bounds_load_when_every_node_fails(
    make_client: MakeClient, proxies: list[FaultProxy]
) -> None:
    body = b'{"error":{"type":"unavailable","reason":"maintenance"},"status":503}'
    ratio = 0.1
    cap = 1.0
    for p in proxies:
        p.set_fault(Fault.status(503, body=body))
    calls = 0
    with make_client(
        [p.url for p in proxies],
        retry_budget_ratio=ratio,
        probe_backoff_cap=cap,
        probe_timeout=0.5,
    ) as client:
        started = time.monotonic()
        end = started + 10
        while time.monotonic() < end:
            calls += 1
            with pytest.raises((ServerError, NoLiveNodesError)):
                client.search(index=INDEX, query=MATCH_ALL, timeout=0.3)
        elapsed = time.monotonic() - started
        sent = sum(p.stats.requests_seen for p in proxies)
        probes = client.stats()["probes_sent"]
        # Every request the servers saw: the probes of the shared schedule (at most one per
        # node per backoff step, whatever the number of calls), and calls with their retries.
        assert probes <= len(proxies) * max_probes(elapsed, base=0.5, cap=cap)
        assert sent <= probes + (1 + ratio) * calls + 10  # 10 = the budget's initial tokens
        assert calls > 20
        for p in proxies:
            p.set_fault(None)
        # It recovers by itself: within one capped probe interval the nodes are back.
        recovered = _wait(
            lambda: all(s["state"] == "alive" for s in client.nodes_status()), cap + 2
        )
        assert recovered
        assert client.search(index=INDEX, query=MATCH_ALL)["hits"]["total"]["value"] == 20


def test_retry_after_is_honored(make_client: MakeClient, proxies: list[FaultProxy]) -> None:
    body = b'{"error":{"type":"es_rejected_execution_exception","reason":"busy"},"status":429}'
    busy = Fault.status(429, headers={"Retry-After": "2"}, body=body)
    with make_client([proxies[0].url]) as client:
        proxies[0].set_fault(busy.times(1))
        start = time.monotonic()
        assert client.search(index=INDEX, query=MATCH_ALL)["hits"]["total"]["value"] == 20
        assert time.monotonic() - start >= 2.0
        proxies[0].set_fault(busy.times(1))
        start = time.monotonic()
        with pytest.raises(TooManyRequestsError) as caught:
            client.search(index=INDEX, query=MATCH_ALL, timeout=1.0)
        assert time.monotonic() - start < 1.0
        assert caught.value.retry_after == 2.0
        # A 429 is "slow down", not "dead": the node stays in rotation.
        assert client.nodes_status()[0]["state"] == "alive"


def test_sniffing_discovers_the_cluster(make_client: MakeClient, cluster: LocalCluster) -> None:
    with make_client([cluster.urls[0]]) as client:
        found = client.sniff()
    assert sorted(found) == sorted(cluster.urls)


def test_sniffing_keeps_seeds_when_published_addresses_are_unreachable(
    make_client: MakeClient, proxies: list[FaultProxy], caplog: pytest.LogCaptureFixture
) -> None:
    # The node answers with addresses this client cannot reach (as behind Docker NAT).
    nodes_http = (
        b'{"nodes":{"a":{"name":"a","roles":["data","ingest"],'
        b'"http":{"publish_address":"es-a/127.0.0.1:1"}},'
        b'"b":{"name":"b","roles":["cluster_manager"],'
        b'"http":{"publish_address":"127.0.0.1:2"}}}}'
    )
    proxies[0].set_fault(
        Fault.status(200, headers={"Content-Type": "application/json"}, body=nodes_http).matching(
            path_prefix="/_nodes"
        )
    )
    with make_client([proxies[0].url]) as client:
        kept = client.sniff()
        assert kept == [proxies[0].url]
        assert client.search(index=INDEX, query=MATCH_ALL)["hits"]["total"]["value"] == 20
    assert any("none answers from here" in r.getMessage() for r in caplog.records)


def test_operator_view(make_client: MakeClient, proxies: list[FaultProxy]) -> None:
    proxies[2].set_fault(Fault.refuse())
    with make_client([p.url for p in proxies]) as client:
        for _ in range(6):
            client.search(index=INDEX, query=MATCH_ALL)
        status = client.nodes_status()
    assert [s["node"] for s in status] == [p.url for p in proxies]
    assert status[2]["state"] in ("ejected", "probing")
    assert status[2]["consecutive_failures"] >= 1
    assert "refused" in str(status[2]["last_error"]).lower()
    for row in status[:2]:
        assert row["state"] == "alive"
        assert row["in_flight"] == 0
        assert row["pool"]["open"] >= 1
