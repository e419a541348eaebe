"""No call can hang: whatever the server does, a call with deadline D ends within D + epsilon."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sturdysearch import Client
from sturdysearch.errors import (
    ConfigError,
    ConnectTimeout,
    DeadlineExceeded,
    ReadTimeout,
    TransportError,
)
from sturdysearch.testing import ports
from sturdysearch.testing.faults import Fault
from sturdysearch.testing.proxy import FaultProxy

MakeClient = Callable[..., Any]


EPSILON = 0.3


def timed_call(client: Client, **kwargs: object) -> tuple[float, BaseException | None]:
    start = time.monotonic()
    try:
        client.search(index="_all", query={"match_all": {}}, **kwargs)
    except TransportError as exc:
        return time.monotonic() - start, exc
    return time.monotonic() - start, None


def test_blackhole_is_cut_by_the_read_timeout(make_client: MakeClient, proxy: FaultProxy) -> None:
    proxy.set_fault(Fault.blackhole())
    with make_client([proxy.url], read_timeout=0.5, probe_timeout=0.3, timeout=5) as client:
        elapsed, exc = timed_call(client)
    # The read timeout ends the attempt and ejects the only node; the retry must first probe
    # it, and the probe (bounded by probe_timeout) gets no answer either.
    assert isinstance(exc, ReadTimeout), exc
    assert "no other node is live" in str(exc)
    assert 0.8 <= elapsed < 0.5 + 0.3 + EPSILON


def test_blackhole_is_cut_by_the_deadline(make_client: MakeClient, proxy: FaultProxy) -> None:
    proxy.set_fault(Fault.blackhole())
    with make_client([proxy.url], read_timeout=10, timeout=1.0) as client:
        elapsed, exc = timed_call(client)
    assert isinstance(exc, DeadlineExceeded), exc
    assert 1.0 <= elapsed < 1.0 + EPSILON


def test_per_call_timeout_overrides_the_client_deadline(
    make_client: MakeClient, proxy: FaultProxy
) -> None:
    proxy.set_fault(Fault.blackhole())
    with make_client([proxy.url], read_timeout=10, timeout=30) as client:
        elapsed, exc = timed_call(client, timeout=0.7)
    assert isinstance(exc, DeadlineExceeded), exc
    assert 0.7 <= elapsed < 0.7 + EPSILON


def test_dripping_server_is_cut_by_the_deadline(make_client: MakeClient, proxy: FaultProxy) -> None:
    # One byte every 0.2 s: every socket read succeeds well within the read timeout, so only an
    # overall deadline can stop this call (elasticsearch-py and opensearch-py wait it out).
    proxy.set_fault(Fault.drip(interval=0.2, chunk=1))
    with make_client([proxy.url], read_timeout=2, timeout=1.5) as client:
        elapsed, exc = timed_call(client)
    assert isinstance(exc, DeadlineExceeded), exc
    assert 1.5 <= elapsed < 1.5 + EPSILON


def test_slow_but_steady_answer_within_deadline_succeeds(
    make_client: MakeClient, proxy: FaultProxy
) -> None:
    proxy.set_fault(Fault.latency(0.3))
    with make_client([proxy.url], read_timeout=1, timeout=3) as client:
        elapsed, exc = timed_call(client)
    assert exc is None
    assert elapsed >= 0.3


@pytest.fixture
def unaccepting_listener() -> Iterator[str]:
    """A port whose accept queue is full: the kernel ignores further SYNs, so connect hangs."""
    with ports.unaccepting_port() as port:
        yield f"http://127.0.0.1:{port}"


def test_server_that_never_accepts_gives_connect_timeout(
    make_client: MakeClient, unaccepting_listener: str
) -> None:
    with make_client([unaccepting_listener], connect_timeout=0.4, timeout=5) as client:
        elapsed, exc = timed_call(client)
    assert isinstance(exc, ConnectTimeout), exc
    assert exc.request_sent is False
    # One attempt and one probe, each bounded by the connect timeout.
    assert elapsed < 2 * 0.4 + EPSILON


def test_server_that_never_accepts_is_cut_by_the_deadline(
    make_client: MakeClient, unaccepting_listener: str
) -> None:
    with make_client([unaccepting_listener], connect_timeout=2, timeout=0.6) as client:
        elapsed, exc = timed_call(client)
    assert isinstance(exc, DeadlineExceeded), exc
    assert 0.6 <= elapsed < 0.6 + EPSILON


def test_waiting_for_a_pooled_connection_is_bounded(
    make_client: MakeClient, proxy: FaultProxy
) -> None:
    import threading

    proxy.set_fault(Fault.blackhole())
    with make_client([proxy.url], connections_per_node=1, read_timeout=5, timeout=3) as client:
        holder_started = threading.Event()

        def hold() -> None:
            holder_started.set()
            timed_call(client, timeout=2.5)

        holder = threading.Thread(target=hold)
        holder.start()
        holder_started.wait()
        proxy.wait_for(lambda s: s.requests_seen >= 1)
        elapsed, exc = timed_call(client, timeout=0.5)
        holder.join()
    assert isinstance(exc, DeadlineExceeded), exc
    assert "pooled" in str(exc)
    assert 0.5 <= elapsed < 0.5 + EPSILON


@pytest.mark.parametrize("bad", [None, 0, -1, float("inf"), float("nan")])
def test_unbounded_timeouts_are_refused(make_client: MakeClient, bad: object) -> None:
    for option in ("timeout", "connect_timeout", "read_timeout"):
        with pytest.raises(ConfigError):
            make_client(["http://127.0.0.1:9200"], **{option: bad})


def test_long_admin_calls_need_the_explicit_opt_in(make_client: MakeClient, client: Client) -> None:
    with pytest.raises(ConfigError, match="long_running"):
        client.request("GET", "/_cluster/health", timeout=900)
    health = client.request("GET", "/_cluster/health", timeout=900, long_running=True)
    assert health["status"] in ("green", "yellow")
