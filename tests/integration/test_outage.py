"""During a full outage the client does not hammer the cluster (issue 19).

A real node sits behind a fault injector that loses every answer (the node still receives and
serves each request: ``Fault.drop_answer``, or toxiproxy's ``timeout`` toxic on the answers), or
that accepts each connection, reads the request and closes it (``Fault.reset_before_request``).
A client calls in a loop from 8 threads, an AsyncClient from 100 tasks, a BulkIndexer sends
with several workers. What reaches the injector is counted there: connections accepted and
requests received.

The bound, stated once and checked in every scenario (``bound``)::

    requests <= POOL + probes(T) + TOKENS          connections <= 2 * POOL + probes(T) + TOKENS

``POOL`` (connections per node) bounds the calls already in flight when the outage begins: the
client cannot know the node is gone before they fail, and a call that waited for a connection
meanwhile sends nothing (the node is ejected by then), though it may have opened one.
``probes(T)`` is the most probes one node's schedule can send in ``T`` seconds (the first at
once, then each after at least half its backoff ceiling): 5 for 4 s, 7 for 30 s. ``TOKENS`` is
the retry budget. None of it depends on the number of threads, tasks or workers. For the bulk
indexer, whose requests time out rather than eject the node when answers are lost, it is one
request at a time: ``POOL + T / request_timeout + 1``, until ``DEADLINE_CUTS_TO_EJECT`` requests
in a row have timed out unanswered, which ejects the node like a lost answer does.

Calls whose deadline is shorter than the read timeout are cut by their deadline, which alone
does not eject; three unanswered cuts in a row do, so such callers add at most
``DEADLINE_CUTS_TO_EJECT - 1`` requests (the calls that got a connection freed by the first
cuts) to the bound, however many they are (8 threads and 32 are checked). The same bound holds
for 8 threads and a bulk indexer sharing one client, and, per node, for three nodes down at
once.

Then the injector heals and the same client must recover within one probe interval: a call
that has the time to wait for the next scheduled probe succeeds, no later than that probe.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from sturdysearch import AsyncClient, BulkIndexer, Client
from sturdysearch._core.health import DEADLINE_CUTS_TO_EJECT
from sturdysearch.errors import NoLiveNodesError, SturdySearchError
from sturdysearch.testing import toxiproxy
from sturdysearch.testing.faults import Fault
from sturdysearch.testing.proxy import FaultProxy, ProxyStats

POOL = 4
TOKENS = 2.0
READ_TIMEOUT = 1.0
"""Shorter than the calls' deadline, so that a lost answer ejects the node (a call's own
deadline running out does not: the caller gave up, the node did nothing wrong)."""
CALL_TIMEOUT = 3.0
PROBE_TIMEOUT = 2.0
BASE, CAP = 0.5, 60.0
BULK_REQUEST_TIMEOUT = 2.0
SHORT, LONG = 4.0, 30.0
MATCH_ALL: dict[str, Any] = {"match_all": {}}
OPTIONS: dict[str, Any] = {
    "connections_per_node": POOL,
    "read_timeout": READ_TIMEOUT,
    "retry_budget_max_tokens": TOKENS,
    "probe_timeout": PROBE_TIMEOUT,
    "probe_backoff_base": BASE,
    "probe_backoff_cap": CAP,
}
FAULTS = {"every-answer-lost": Fault.drop_answer, "accept-and-close": Fault.reset_before_request}


def max_probes(seconds: float) -> int:
    """The most probes one node's schedule sends in ``seconds`` (``HealthConfig.probe_delay``
    with every random draw at its lowest)."""
    count, at, failures = 1, 0.0, 2
    while True:
        at += 0.5 * min(CAP, BASE * 2.0 ** (failures - 2))
        if at > seconds:
            return count
        count += 1
        failures += 1


def bound(seconds: float) -> tuple[int, int]:
    """``(requests, connections)`` allowed in an outage of ``seconds`` (see the module doc)."""
    probes = max_probes(seconds)
    return POOL + probes + int(TOKENS), 2 * POOL + probes + int(TOKENS)


@dataclass
class Injector:
    """The client's way in, where it is counted, and the switch for the fault."""

    url: str
    counter: FaultProxy
    fail: Callable[[], None]
    heal: Callable[[], None]

    def received(self) -> ProxyStats:
        return self.counter.stats


def requests_of(stats: ProxyStats) -> int:
    # A request the proxy answers itself (reset before forwarding) is seen but not forwarded.
    return max(stats.requests_seen, stats.requests_forwarded)


@pytest.fixture
def node_proxy(node_url: str) -> Iterator[FaultProxy]:
    with FaultProxy(node_url) as p:
        yield p


@pytest.fixture(params=list(FAULTS))
def injector(request: pytest.FixtureRequest, node_proxy: FaultProxy) -> Injector:
    fault = FAULTS[request.param]
    return Injector(
        node_proxy.url,
        node_proxy,
        lambda: node_proxy.set_fault(fault()),
        lambda: node_proxy.set_fault(None),
    )


@pytest.fixture
def toxic(node_proxy: FaultProxy) -> Iterator[Injector]:
    """Toxiproxy in front of a counting FaultProxy (no fault of its own) in front of the node:
    toxiproxy's ``timeout`` toxic with timeout 0 on the answers passes every request on and
    drops every answer."""
    server = toxiproxy.find_server()
    if server is None:
        pytest.skip("toxiproxy is not built here (make toxiproxy; needs Go)")
    upstream = urlsplit(node_proxy.url).netloc
    with toxiproxy.Toxiproxy(server, upstream) as tp:
        yield Injector(
            tp.url,
            node_proxy,
            lambda: tp.add_toxic("lost", "timeout", "downstream", timeout=0),
            lambda: tp.remove_toxic("lost"),
        )


class Load:
    """Calls in a loop from threads until stopped; counts outcomes."""

    def __init__(self, call: Callable[[], object], threads: int) -> None:
        self._call = call
        self._stop = threading.Event()
        self.calls = 0
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._call()
            except NoLiveNodesError:
                self._stop.wait(0.01)  # pacing of a load generator that fails fast
            except SturdySearchError:
                pass
            except BaseException as exc:  # anything else is a bug: report it
                with self._lock:
                    self.errors.append(exc)
                return
            with self._lock:
                self.calls += 1

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(CALL_TIMEOUT + PROBE_TIMEOUT + 5)
        assert not any(t.is_alive() for t in self._threads)


def settled_rows(client: Any) -> list[dict[str, Any]]:
    """Every node's row once no probe is in flight: one sent before the injector healed may
    hang on its lost answer until its timeout, and a call waiting for it would see it fail."""
    limit = time.monotonic() + PROBE_TIMEOUT + 2
    while True:
        rows: list[dict[str, Any]] = client.nodes_status()
        if all(r["state"] != "probing" for r in rows) or time.monotonic() > limit:
            return rows
        threading.Event().wait(0.02)  # polling the operator view: it has no change event


def settled_status(client: Any) -> dict[str, Any]:
    """The one node's row once no probe is in flight (see ``settled_rows``)."""
    return settled_rows(client)[0]


def recovery_allowance(status: dict[str, Any]) -> float:
    """Seconds within which the node must be back: the time to its next scheduled probe (the
    injector healed before it), or nothing when it is already back."""
    assert status["state"] != "probing", status
    if status["state"] == "alive":
        return 0.0
    return float(status["next_probe_in"] or 0.0)


def check_outage(
    injector: Injector, seconds: float, before: ProxyStats, stats: dict[str, Any]
) -> None:
    after = injector.received()
    requests = requests_of(after) - requests_of(before)
    connections = after.connections_accepted - before.connections_accepted
    max_requests, max_connections = bound(seconds)
    print(
        f"outage {seconds:g} s: {connections} connections, {requests} requests "
        f"(bounds {max_connections}, {max_requests}); client stats {stats}"
    )
    assert requests <= max_requests
    assert connections <= max_connections
    assert stats["probes_sent"] <= max_probes(seconds) + 1  # +1: the one healing may see


def recover_sync(client: Client, injector: Injector) -> None:
    injector.heal()
    allowance = recovery_allowance(settled_status(client))
    started = time.monotonic()
    # A call with the time to wait for the next probe is not lost.
    client.search(query=MATCH_ALL, timeout=allowance + CALL_TIMEOUT + 1)
    took = time.monotonic() - started
    print(f"recovered in {took:.2f} s (allowance {allowance:.2f} s)")
    assert took <= allowance + 1.5


def run_threads(injector: Injector, seconds: float) -> None:
    with Client([injector.url], **OPTIONS) as client:
        client.info()  # connected and healthy
        before = injector.received()
        injector.fail()
        with Load(lambda: client.search(query=MATCH_ALL, timeout=CALL_TIMEOUT), 8) as load:
            threading.Event().wait(seconds)  # the outage lasts this long
            stats = client.stats()
            check_outage(injector, seconds, before, stats)
            recover_sync(client, injector)
        assert load.errors == []
        assert load.calls > 8


def run_tasks(injector: Injector, seconds: float) -> None:
    async def scenario() -> None:
        async with AsyncClient([injector.url], **OPTIONS) as client:
            await client.info()
            before = injector.received()
            injector.fail()
            stop = asyncio.Event()
            calls = 0

            async def loop() -> None:
                nonlocal calls
                while not stop.is_set():
                    try:
                        await client.search(query=MATCH_ALL, timeout=CALL_TIMEOUT)
                    except NoLiveNodesError:
                        await asyncio.sleep(0.01)  # noqa: SSP111 (pacing of a load generator)
                    except SturdySearchError:
                        pass
                    calls += 1

            tasks = [asyncio.create_task(loop()) for _ in range(100)]
            await asyncio.sleep(seconds)  # the outage lasts this long
            check_outage(injector, seconds, before, client.stats())
            injector.heal()
            allowance = recovery_allowance(await asyncio.to_thread(settled_status, client))
            started = time.monotonic()
            await client.search(query=MATCH_ALL, timeout=allowance + CALL_TIMEOUT + 1)
            took = time.monotonic() - started
            print(f"recovered in {took:.2f} s (allowance {allowance:.2f} s)")
            assert took <= allowance + 1.5
            stop.set()
            await asyncio.gather(*tasks)  # every task ends by itself: no exception escaped
            assert calls > 100

    asyncio.run(scenario())


@contextlib.contextmanager
def outage_index(client: Client) -> Iterator[str]:
    index = f"outage-{uuid.uuid4().hex[:10]}"
    client.indices.create(index=index, settings={"number_of_replicas": 0})
    try:
        yield index
    finally:
        client.indices.delete(index=index, ignore=404)


def outage_indexer(via: Client, index: str, tmp_path: Path) -> BulkIndexer:
    return BulkIndexer(
        via,
        index,
        dead_letter=tmp_path / "dead.ndjson",
        workers=3,
        max_actions=50,
        flush_interval=0.05,
        request_timeout=BULK_REQUEST_TIMEOUT,
    )


def preload(bulk: BulkIndexer) -> int:
    """200 documents indexed before the outage (the connections are warm); returns how many."""
    for n in range(200):
        bulk.index({"n": n}, id=str(n))
    bulk.flush()
    return 200


def keep_loading(bulk: BulkIndexer, n: int, seconds: float) -> int:
    """The producer keeps going through the outage, as a real one would; returns the count."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        bulk.index({"n": n}, id=str(n))
        n += 1
        if n % 50 == 0:
            threading.Event().wait(0.05)  # a producer's own pace
    return n


def check_accounting(client: Client, index: str, stats: Any, added: int) -> None:
    """Every document accounted for exactly: applied once, or dead-lettered with a reason."""
    assert stats.pending == 0
    assert stats.added == added == stats.succeeded + stats.dead_lettered
    client.indices.refresh(index=index)
    assert client.count(index=index)["count"] == stats.succeeded


def run_bulk(injector: Injector, client: Client, seconds: float, tmp_path: Path) -> None:
    with outage_index(client) as index:
        with Client([injector.url], **OPTIONS) as via:
            bulk = outage_indexer(via, index, tmp_path)
            with bulk:
                n = preload(bulk)
                before = injector.received()
                injector.fail()
                n = keep_loading(bulk, n, seconds)
                after = injector.received()
                requests = requests_of(after) - requests_of(before)
                connections = after.connections_accepted - before.connections_accepted
                # Lost answers: one request at a time, each timing out unanswered, until three
                # in a row have ejected the node, then the probe schedule. A refused or reset
                # connection ejects at once: the probe schedule from the start.
                steps = max(math.ceil(seconds / BULK_REQUEST_TIMEOUT) + 1, max_probes(seconds))
                after_cuts = DEADLINE_CUTS_TO_EJECT + max_probes(seconds)
                max_requests = POOL + min(steps, after_cuts) + int(TOKENS)
                print(
                    f"bulk outage {seconds:g} s: {connections} connections, {requests} requests "
                    f"(bound {max_requests} / {max_requests + POOL}); {bulk.stats}; "
                    f"client {via.stats()}"
                )
                assert requests <= max_requests
                assert connections <= max_requests + POOL
                injector.heal()
            stats = bulk.stats
        check_accounting(client, index, stats, n)


# -- make test: a few seconds of outage ------------------------------------------------------


def test_threads_in_a_loop_send_a_bounded_load_and_recover(injector: Injector) -> None:
    run_threads(injector, SHORT)


def test_async_tasks_send_a_bounded_load_and_recover(injector: Injector) -> None:
    run_tasks(injector, SHORT)


def test_bulk_workers_send_a_bounded_load_and_account_for_every_document(
    injector: Injector, client: Client, tmp_path: Path
) -> None:
    run_bulk(injector, client, SHORT, tmp_path)


# -- make test-all: 30 s, and behind toxiproxy --------------------------------------------


@pytest.mark.slow
def test_threads_through_a_long_outage(injector: Injector) -> None:
    run_threads(injector, LONG)


@pytest.mark.slow
def test_async_tasks_through_a_long_outage(injector: Injector) -> None:
    run_tasks(injector, LONG)


@pytest.mark.slow
def test_bulk_workers_through_a_long_outage(
    injector: Injector, client: Client, tmp_path: Path
) -> None:
    run_bulk(injector, client, LONG, tmp_path)


@pytest.mark.slow
def test_threads_behind_toxiproxy(toxic: Injector) -> None:
    run_threads(toxic, LONG)


@pytest.mark.slow
def test_async_tasks_behind_toxiproxy(toxic: Injector) -> None:
    run_tasks(toxic, LONG)


@pytest.mark.slow
def test_bulk_workers_behind_toxiproxy(toxic: Injector, client: Client, tmp_path: Path) -> None:
    run_bulk(toxic, client, LONG, tmp_path)


# -- deadlines shorter than the read timeout, callers and an indexer together, several nodes --

SHORT_DEADLINE = 1.0
"""Shorter than the default read timeout (10 s): without the deadline-cut rule each call sent
one request into the outage, so that the load grew with the number of callers."""
DEFAULT_READ_OPTIONS = {k: v for k, v in OPTIONS.items() if k != "read_timeout"}


def extra_for_cuts() -> int:
    """Requests a deadline-cut outage may add to ``bound``: the calls that got a connection
    freed by the first cuts before the streak reached ``DEADLINE_CUTS_TO_EJECT``."""
    return DEADLINE_CUTS_TO_EJECT - 1


@pytest.mark.parametrize("threads", [8, 32])
def test_short_deadlines_do_not_multiply_the_load(node_proxy: FaultProxy, threads: int) -> None:
    """``search(timeout=1.0)`` in a loop from many threads with the default read timeout: a
    node that lets three calls in a row run out of time unanswered is ejected, and the load is
    the same bound as for lost answers with a short read timeout, for 8 threads as for 32."""
    injector = Injector(
        node_proxy.url,
        node_proxy,
        lambda: node_proxy.set_fault(Fault.drop_answer()),
        lambda: node_proxy.set_fault(None),
    )
    with Client([injector.url], **DEFAULT_READ_OPTIONS) as client:
        client.info()
        before = injector.received()
        injector.fail()
        call = lambda: client.search(query=MATCH_ALL, timeout=SHORT_DEADLINE)  # noqa: E731
        with Load(call, threads) as load:
            threading.Event().wait(SHORT)
            stats = client.stats()
            after = injector.received()
            requests = requests_of(after) - requests_of(before)
            max_requests = bound(SHORT)[0] + extra_for_cuts()
            print(
                f"{threads} threads, deadline {SHORT_DEADLINE} s: {requests} requests "
                f"(bound {max_requests}); {stats}"
            )
            assert requests <= max_requests
            assert stats["ejections"] >= 1
            assert client.nodes_status()[0]["state"] != "alive"
            recover_sync(client, injector)
        assert load.errors == []
        assert load.calls > threads


def run_callers_and_indexer(
    injector: Injector,
    client: Client,
    seconds: float,
    tmp_path: Path,
    *,
    options: dict[str, Any] = OPTIONS,
    call_timeout: float = CALL_TIMEOUT,
) -> None:
    """8 threads calling and a 3-worker BulkIndexer loading, on one client, through the
    outage; one probe schedule and one budget serve them all."""
    with outage_index(client) as index:
        with Client([injector.url], **options) as via:
            bulk = outage_indexer(via, index, tmp_path)
            with bulk:
                n = preload(bulk)
                via.info()
                before = injector.received()
                injector.fail()
                call = lambda: via.search(query=MATCH_ALL, timeout=call_timeout)  # noqa: E731
                with Load(call, 8) as load:
                    n = keep_loading(bulk, n, seconds)
                    after = injector.received()
                    requests = requests_of(after) - requests_of(before)
                    connections = after.connections_accepted - before.connections_accepted
                    max_requests = bound(seconds)[0] + extra_for_cuts()
                    print(
                        f"callers + indexer, {seconds:g} s: {connections} connections, "
                        f"{requests} requests (bound {max_requests}); {bulk.stats}; "
                        f"client {via.stats()}"
                    )
                    assert requests <= max_requests
                    assert connections <= max_requests + POOL
                    recover_sync(via, injector)
                assert load.errors == []
            stats = bulk.stats
        check_accounting(client, index, stats, n)


def test_callers_and_indexer_together(injector: Injector, client: Client, tmp_path: Path) -> None:
    run_callers_and_indexer(injector, client, SHORT, tmp_path)


@pytest.mark.slow
def test_callers_and_indexer_for_20_seconds(
    injector: Injector, client: Client, tmp_path: Path
) -> None:
    """The issue's own scenario: ``search(timeout=2.0)`` from 8 threads with the default read
    timeout, and a 3-worker indexer, for 20 s (before: 35,000-39,000 connections against a
    node that accepts and closes)."""
    run_callers_and_indexer(
        injector, client, 20.0, tmp_path, options=DEFAULT_READ_OPTIONS, call_timeout=2.0
    )


@pytest.mark.parametrize("fault", list(FAULTS))
def test_every_node_down(node_url: str, fault: str) -> None:
    """Three nodes (three proxies in front of the one server), all failing: each node's own
    schedule is probed, in-flight calls are bounded by the callers, retries by the budget."""
    nodes = 3
    with contextlib.ExitStack() as stack:
        proxies = [stack.enter_context(FaultProxy(node_url)) for _ in range(nodes)]
        with Client([p.url for p in proxies], **OPTIONS) as client:
            client.info()
            before = [requests_of(p.stats) for p in proxies]
            for p in proxies:
                p.set_fault(FAULTS[fault]())
            threads = 8
            call = lambda: client.search(query=MATCH_ALL, timeout=CALL_TIMEOUT)  # noqa: E731
            with Load(call, threads) as load:
                threading.Event().wait(SHORT)
                stats = client.stats()
                sent = [requests_of(p.stats) - b for p, b in zip(proxies, before, strict=True)]
                max_total = threads + nodes * max_probes(SHORT) + int(TOKENS) + extra_for_cuts()
                print(f"{nodes} nodes down ({fault}): {sent} requests (bound {max_total}); {stats}")
                assert sum(sent) <= max_total
                assert all(n <= POOL + max_probes(SHORT) + int(TOKENS) for n in sent)
                assert stats["live_nodes"] == 0
                for p in proxies:
                    p.set_fault(None)
                # The first node whose next probe comes after the healing is back then.
                rows = settled_rows(client)
                allowance = min(recovery_allowance(row) for row in rows)
                started = time.monotonic()
                client.search(query=MATCH_ALL, timeout=allowance + CALL_TIMEOUT + 1)
                took = time.monotonic() - started
                print(f"recovered in {took:.2f} s (allowance {allowance:.2f} s)")
                assert took <= allowance + 1.5
            assert load.errors == []
