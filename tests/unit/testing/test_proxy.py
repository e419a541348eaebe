"""FaultProxy against a real HTTP/1.1 server, with `http.client` and raw sockets as clients.

Raw sockets are used where the exact bytes or the exact way a connection ends (FIN versus
RST) is the point of the fault.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from sturdysearch.testing.proxy import Fault, FaultKind, FaultProxy, ProxyStats

if TYPE_CHECKING:
    from conftest import Upstream


_EARLIER: set[threading.Thread] = set()


@pytest.fixture(autouse=True)
def _earlier_proxies() -> Iterator[None]:
    """Proxy threads alive before the test (a session-scoped proxy of the integration suite,
    the SigV4 verifier of a ``+sigv4`` route, lives for the whole run) are not this test's."""
    _EARLIER.clear()
    _EARLIER.update(threading.enumerate())
    yield


def proxy_threads() -> list[threading.Thread]:
    """Proxy threads this test started that are still alive."""
    return [
        t
        for t in threading.enumerate()
        if t.name.startswith("sturdysearch-proxy-") and t not in _EARLIER
    ]


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def client(proxy: FaultProxy, timeout: float = 5.0) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=timeout)


def get(conn: http.client.HTTPConnection, path: str) -> tuple[int, bytes]:
    conn.request("GET", path)
    resp = conn.getresponse()
    return resp.status, resp.read()


def raw_exchange(port: int, data: bytes, timeout: float = 5.0) -> tuple[bytes, str]:
    """Send `data`, read until the connection ends; say whether it ended by FIN or RST."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks: list[bytes] = []
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                return b"".join(chunks), "reset"
            if not chunk:
                return b"".join(chunks), "eof"
            chunks.append(chunk)


def split_response(data: bytes) -> tuple[bytes, bytes]:
    head, sep, body = data.partition(b"\r\n\r\n")
    assert sep, f"no complete head in {data[:200]!r}"
    return head + sep, body


@pytest.fixture
def proxy(upstream: Upstream) -> Iterator[FaultProxy]:
    with FaultProxy(upstream=upstream.url) as p:
        yield p


# -- pass-through -------------------------------------------------------------------------


def test_passthrough_keeps_one_connection_alive_across_mixed_requests(
    proxy: FaultProxy, upstream: Upstream
) -> None:
    conn = client(proxy)
    status, body = get(conn, "/json")
    assert status == 200 and json.loads(body)["path"] == "/json"

    conn.request("POST", "/echo", body=b"0123456789")
    assert json.loads(conn.getresponse().read())["received"] == 10

    conn.request("HEAD", "/json")
    resp = conn.getresponse()
    assert int(resp.headers["Content-Length"]) > 0
    assert resp.read() == b""

    assert get(conn, "/204") == (204, b"")
    assert get(conn, "/chunked") == (200, b"alpha-beta-gamma")

    conn.request(
        "POST", "/echo", body=iter([b"ab", b"", b"cde", b"f" * 70000]), encode_chunked=True
    )
    assert json.loads(conn.getresponse().read())["received"] == 70005

    big = os.urandom(3 * 1024 * 1024)
    conn.request("PUT", "/echo", body=big)
    doc = json.loads(conn.getresponse().read())
    assert doc["received"] == len(big)

    assert get(conn, "/bytes/2000000") == (200, upstream.payload(2_000_000))
    conn.close()

    stats = proxy.stats
    assert stats.connections_accepted == 1
    assert stats.upstream_connections_opened == 1
    assert stats.requests_seen == stats.requests_forwarded == 8
    assert stats.faults_applied == 0
    assert upstream.recorder.connections_opened == 1
    assert [r.method for r in upstream.recorder.requests] == [
        "GET", "POST", "HEAD", "GET", "GET", "POST", "PUT", "GET",
    ]  # fmt: skip
    assert upstream.recorder.requests[6].body == big


def test_upstream_lazily_opened_and_tuple_upstream(upstream: Upstream) -> None:
    with FaultProxy(upstream=("127.0.0.1", upstream.port)) as proxy:
        sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
        proxy.wait_for(lambda s: s.connections_accepted == 1)
        assert proxy.stats.upstream_connections_opened == 0
        assert proxy.open_connections == 1
        sock.close()
        proxy.wait_for(lambda s: s.open_connections == 0)
        assert upstream.recorder.connections_opened == 0


def test_close_delimited_response_closes_client_connection(proxy: FaultProxy) -> None:
    conn = client(proxy)
    assert get(conn, "/close-delimited") == (200, b"until-eof")
    proxy.wait_for(lambda s: s.open_connections == 0)
    assert get(conn, "/json")[0] == 200  # http.client reconnects
    assert proxy.stats.connections_accepted == 2
    conn.close()


def test_server_dropping_idle_connection_is_mirrored_to_client(proxy: FaultProxy) -> None:
    conn = client(proxy)
    assert get(conn, "/then-drop")[0] == 200
    proxy.wait_for(lambda s: s.open_connections == 0)
    assert conn.sock is not None
    assert conn.sock.recv(100) == b""
    conn.close()


def test_pipelined_requests_are_answered_in_order(proxy: FaultProxy, upstream: Upstream) -> None:
    data, ending = raw_exchange(
        proxy.port,
        b"GET /bytes/5 HTTP/1.1\r\nHost: t\r\n\r\n"
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nxyz"
        b"GET /bytes/7 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    assert ending == "eof"
    assert data.count(b"HTTP/1.1 200 ") == 3
    assert data.endswith(upstream.payload(7))
    assert upstream.recorder.paths() == ["/bytes/5", "/echo", "/bytes/7"]
    assert upstream.recorder.requests[1].body == b"xyz"


def test_http10_request_without_keepalive_is_closed_after_response(proxy: FaultProxy) -> None:
    data, ending = raw_exchange(proxy.port, b"GET /json HTTP/1.0\r\n\r\n")
    assert ending == "eof"
    assert data.startswith(b"HTTP/1.") and b" 200 " in data.split(b"\r\n")[0]


def test_expect_continue_is_answered_by_proxy(proxy: FaultProxy, upstream: Upstream) -> None:
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
        sock.sendall(
            b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n"
            b"Connection: close\r\n\r\n"
        )
        interim = b""
        while b"\r\n\r\n" not in interim:
            interim += sock.recv(100)
        assert interim.startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(b"hello")
        rest = interim[len(b"HTTP/1.1 100 Continue\r\n\r\n") :]
        while chunk := sock.recv(65536):
            rest += chunk
    _head, body = split_response(rest)
    assert json.loads(body)["received"] == 5
    assert b"100 Continue" not in rest
    assert upstream.recorder.requests[0].body == b"hello"


def test_unparseable_request_gets_400(proxy: FaultProxy) -> None:
    data, ending = raw_exchange(proxy.port, b"nonsense\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 400 ")
    assert ending == "eof"


def test_many_requests_on_keepalive(proxy: FaultProxy) -> None:
    conn = client(proxy)
    started = time.monotonic()
    for i in range(500):
        conn.request("POST", "/echo", body=b"x" * (i % 50))
        assert json.loads(conn.getresponse().read())["received"] == i % 50
    elapsed = time.monotonic() - started
    conn.close()
    assert proxy.stats.requests_forwarded == 500
    assert elapsed < 15


# -- faults -------------------------------------------------------------------------------


def test_blackhole_never_answers_and_close_does_not_hang(
    proxy: FaultProxy, upstream: Upstream
) -> None:
    proxy.set_fault(Fault.blackhole())
    conn = client(proxy, timeout=0.3)
    conn.request("POST", "/echo", body=b"payload")
    with pytest.raises(TimeoutError):
        conn.getresponse()
    proxy.wait_for(lambda s: s.requests_seen == 1 and s.faults_applied == 1)
    assert proxy.stats.requests_forwarded == 0
    assert upstream.recorder.requests == []

    started = time.monotonic()
    proxy.close()
    assert time.monotonic() - started < 2.0
    assert conn.sock is not None
    conn.sock.settimeout(2)
    assert conn.sock.recv(10) == b""  # the proxy's close() closed the client connection
    conn.close()
    assert not proxy_threads()


def test_drop_answer_forwards_the_request_and_loses_the_answer(
    proxy: FaultProxy, upstream: Upstream
) -> None:
    proxy.set_fault(Fault.drop_answer())
    conn = client(proxy, timeout=0.3)
    conn.request("POST", "/echo", body=b"payload")
    with pytest.raises(TimeoutError):
        conn.getresponse()
    proxy.wait_for(lambda s: s.requests_forwarded == 1 and s.faults_applied == 1)
    assert [r.body for r in upstream.recorder.requests] == [b"payload"]  # the server acted

    started = time.monotonic()
    proxy.close()
    assert time.monotonic() - started < 2.0
    conn.close()
    assert not proxy_threads()


def test_latency_delays_each_response(proxy: FaultProxy) -> None:
    conn = client(proxy)
    get(conn, "/json")  # connection and upstream already open: only the fault costs time
    proxy.set_fault(Fault.latency(0.3))
    for _ in range(2):
        started = time.monotonic()
        assert get(conn, "/json")[0] == 200
        assert 0.3 <= time.monotonic() - started < 3.0
    proxy.set_fault(None)
    started = time.monotonic()
    assert get(conn, "/json")[0] == 200
    assert time.monotonic() - started < 0.3
    conn.close()


def test_drip_sends_response_in_small_delayed_pieces(proxy: FaultProxy, upstream: Upstream) -> None:
    proxy.set_fault(Fault.drip(interval=0.03, chunk=40))
    # A per-read timeout shorter than the whole transfer but longer than one interval:
    # the drip must defeat it, that is what the fault is for.
    conn = client(proxy, timeout=0.25)
    started = time.monotonic()
    conn.request("GET", "/bytes/300")
    resp = conn.getresponse()
    body = resp.read()
    elapsed = time.monotonic() - started
    assert body == upstream.payload(300)
    head_size = (
        len(b"HTTP/1.1 200 OK\r\n") + sum(len(k) + len(v) + 4 for k, v in resp.getheaders()) + 2
    )
    pieces = -(-(head_size + 300) // 40)
    assert pieces >= 9
    assert (pieces - 1) * 0.03 * 0.9 <= elapsed < 5.0
    conn.close()


@pytest.mark.parametrize("after_bytes", [0, 10, 250])
def test_reset_mid_response_forwards_exact_prefix_then_rst(
    proxy: FaultProxy, upstream: Upstream, after_bytes: int
) -> None:
    proxy.set_fault(Fault.reset_mid_response(after_bytes=after_bytes))
    data, ending = raw_exchange(proxy.port, b"GET /bytes/1000 HTTP/1.1\r\nHost: t\r\n\r\n")
    assert ending == "reset"
    assert len(data) == after_bytes
    if after_bytes:
        assert data.startswith(b"HTTP/1.1 200 OK"[:after_bytes])
    if after_bytes == 250:
        _head, body = split_response(data)
        assert len(body) > 0 and upstream.payload(1000).startswith(body)
    assert upstream.recorder.paths() == ["/bytes/1000"]


def test_reset_mid_response_after_whole_short_response(proxy: FaultProxy) -> None:
    proxy.set_fault(Fault.reset_mid_response(after_bytes=100_000))
    data, ending = raw_exchange(proxy.port, b"GET /bytes/10 HTTP/1.1\r\nHost: t\r\n\r\n")
    assert ending == "reset"
    assert split_response(data)[1] == b"0123456789"


def test_truncate_forwards_prefix_then_clean_close(proxy: FaultProxy, upstream: Upstream) -> None:
    proxy.set_fault(Fault.truncate(after_bytes=300))
    data, ending = raw_exchange(proxy.port, b"GET /bytes/1000 HTTP/1.1\r\nHost: t\r\n\r\n")
    assert ending == "eof"
    assert len(data) == 300
    head, body = split_response(data)
    assert b"Content-Length: 1000" in head
    assert body == upstream.payload(1000)[: len(body)]

    conn = client(proxy)
    conn.request("GET", "/bytes/1000")
    resp = conn.getresponse()
    with pytest.raises(http.client.IncompleteRead):
        resp.read()
    conn.close()


def test_reset_after_request_reaches_server_but_client_gets_rst(
    proxy: FaultProxy, upstream: Upstream
) -> None:
    proxy.set_fault(Fault.reset_after_request())
    data, ending = raw_exchange(
        proxy.port, b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\ndata"
    )
    assert (data, ending) == (b"", "reset")
    # The proxy waited for the server's answer, so the request is recorded already.
    assert [(r.path, r.body) for r in upstream.recorder.requests] == [("/echo", b"data")]
    assert proxy.stats.requests_forwarded == 1


def test_reset_before_request_never_reaches_server(proxy: FaultProxy, upstream: Upstream) -> None:
    proxy.set_fault(Fault.reset_before_request())
    data, ending = raw_exchange(
        proxy.port, b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\ndata"
    )
    assert (data, ending) == (b"", "reset")
    proxy.set_fault(None)
    conn = client(proxy)
    assert get(conn, "/after")[0] == 200
    conn.close()
    assert upstream.recorder.paths() == ["/after"]
    stats = proxy.stats
    assert (stats.requests_seen, stats.requests_forwarded, stats.faults_applied) == (2, 1, 1)


def test_status_fault_answers_without_upstream_and_keeps_connection(
    proxy: FaultProxy, upstream: Upstream
) -> None:
    proxy.set_fault(Fault.status(503, headers={"Retry-After": "2"}, body=b'{"error":"overloaded"}'))
    conn = client(proxy)
    conn.request("POST", "/_bulk", body=b'{"index":{}}\n{"a":1}\n')
    resp = conn.getresponse()
    assert resp.status == 503
    assert resp.headers["Retry-After"] == "2"
    assert resp.headers["Content-Type"] == "application/json"
    assert resp.read() == b'{"error":"overloaded"}'

    conn.request("HEAD", "/")
    resp = conn.getresponse()
    assert resp.status == 503 and resp.read() == b""

    proxy.set_fault(Fault.status(429))
    status, body = get(conn, "/x")
    assert status == 429
    assert json.loads(body)["status"] == 429

    proxy.set_fault(None)
    assert get(conn, "/json")[0] == 200
    conn.close()
    stats = proxy.stats
    assert stats.connections_accepted == 1
    assert stats.upstream_connections_opened == 1
    assert stats.faults_applied == 3
    assert upstream.recorder.paths() == ["/json"]


def test_status_fault_honours_client_connection_close(proxy: FaultProxy) -> None:
    proxy.set_fault(Fault.status(500))
    data, ending = raw_exchange(
        proxy.port, b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    assert ending == "eof"
    head, _body = split_response(data)
    assert head.startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
    assert b"Connection: close" in head


def test_times_limits_fault_then_passes_through(proxy: FaultProxy, upstream: Upstream) -> None:
    proxy.set_fault(Fault.status(429).times(3))
    conn = client(proxy)
    statuses = [get(conn, f"/r{i}")[0] for i in range(5)]
    conn.close()
    assert statuses == [429, 429, 429, 200, 200]
    assert proxy.stats.faults_applied == 3
    assert proxy.faults == ()
    assert upstream.recorder.paths() == ["/r3", "/r4"]


def test_times_counts_matching_requests_only(proxy: FaultProxy) -> None:
    proxy.set_fault(Fault.status(503).matching(method="POST").times(1))
    conn = client(proxy)
    assert get(conn, "/a")[0] == 200
    for path, expected in (("/b", 503), ("/c", 200)):
        conn.request("POST", path, body=b"")
        resp = conn.getresponse()
        resp.read()
        assert resp.status == expected
    conn.close()


def test_matching_filters_by_method_and_path(proxy: FaultProxy) -> None:
    proxy.set_fault(Fault.status(503).matching(method="post", path_prefix="/_bulk"))
    conn = client(proxy)

    def post(path: str) -> int:
        conn.request("POST", path, body=b"{}\n")
        resp = conn.getresponse()
        resp.read()
        return resp.status

    assert get(conn, "/_bulk")[0] == 200
    assert post("/_bulk?refresh=true") == 503
    assert post("/idx/_bulk") == 200
    assert post("/_search") == 200

    proxy.set_fault(Fault.latency(0).matching(path_regex=r"(^|/)_bulk\b").times(0))
    assert post("/idx/_bulk") == 200
    proxy.set_fault(Fault.status(409).matching(path_regex=r"(^|/)_bulk\b"))
    assert post("/idx/_bulk") == 409
    assert post("/_bulkier") == 200
    conn.close()


def test_add_fault_first_match_wins(proxy: FaultProxy) -> None:
    proxy.set_fault(Fault.status(429).matching(path_prefix="/_bulk"))
    proxy.add_fault(Fault.status(503))
    conn = client(proxy)
    assert get(conn, "/_bulk")[0] == 429
    assert get(conn, "/other")[0] == 503
    conn.close()
    assert len(proxy.faults) == 2


def test_fault_is_chosen_when_request_arrives(proxy: FaultProxy, upstream: Upstream) -> None:
    proxy.set_fault(Fault.latency(0.5))
    conn = client(proxy)
    conn.request("GET", "/slow")
    proxy.wait_for(lambda s: s.requests_forwarded == 1)
    proxy.set_fault(Fault.status(500))  # must not affect the request already in flight
    resp = conn.getresponse()
    assert resp.status == 200
    resp.read()
    assert get(conn, "/next")[0] == 500
    conn.close()


def test_refuse_then_relisten_on_same_port(proxy: FaultProxy) -> None:
    port = proxy.port
    conn = client(proxy)
    assert get(conn, "/json")[0] == 200

    proxy.set_fault(Fault.refuse())
    assert proxy.refusing
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    proxy.wait_for(lambda s: s.open_connections == 0)
    assert conn.sock is not None
    assert conn.sock.recv(10) == b""  # existing connections were closed, like a dying node's
    conn.close()

    proxy.set_fault(None)
    assert not proxy.refusing
    assert proxy.port == port
    conn = client(proxy)
    assert get(conn, "/json")[0] == 200
    conn.close()


def test_refuse_can_keep_existing_connections(proxy: FaultProxy) -> None:
    conn = client(proxy)
    assert get(conn, "/json")[0] == 200
    proxy.set_fault(Fault.refuse(close_existing=False))
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", proxy.port), timeout=2).close()
    assert get(conn, "/still-here")[0] == 200
    conn.close()
    proxy.set_fault(Fault.latency(0.0))  # any non-refuse fault re-listens
    conn = client(proxy)
    assert get(conn, "/json")[0] == 200
    conn.close()


def test_random_resets_are_reproducible_with_seed(proxy: FaultProxy, upstream: Upstream) -> None:
    def run() -> list[str]:
        proxy.reset_stats()
        proxy.set_fault(Fault.random(reset_probability=0.4, seed=7))
        outcomes = []
        for i in range(30):
            conn = client(proxy)
            try:
                outcomes.append("ok" if get(conn, f"/r{i}")[0] == 200 else "bad")
            except (ConnectionResetError, http.client.RemoteDisconnected):
                outcomes.append("reset")
            finally:
                conn.close()
        return outcomes

    first = run()
    resets = first.count("reset")
    assert first.count("ok") + resets == 30
    assert 0 < resets < 30
    assert proxy.stats.faults_applied == resets
    forwarded_first = proxy.stats.requests_forwarded
    assert 30 - resets < forwarded_first < 30  # some resets came after forwarding, some before
    assert run() == first
    assert proxy.stats.requests_forwarded == forwarded_first


def test_upstream_down_resets_client(upstream: Upstream) -> None:
    spare = socket.socket()
    spare.bind(("127.0.0.1", 0))
    dead_port = spare.getsockname()[1]
    spare.close()
    with FaultProxy(upstream=f"http://127.0.0.1:{dead_port}") as proxy:
        data, ending = raw_exchange(proxy.port, b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        assert (data, ending) == (b"", "reset")
        assert proxy.stats.upstream_connect_failures == 1
        assert proxy.stats.requests_forwarded == 0


# -- stats, lifecycle, leaks --------------------------------------------------------------


def test_stats_snapshot_reset_and_wait_for_timeout(proxy: FaultProxy) -> None:
    conn = client(proxy)
    get(conn, "/a")
    proxy.set_fault(Fault.status(500))
    get(conn, "/b")
    assert proxy.stats == ProxyStats(
        connections_accepted=1,
        requests_seen=2,
        requests_forwarded=1,
        faults_applied=1,
        upstream_connections_opened=1,
        open_connections=1,
    )
    proxy.reset_stats()
    assert proxy.stats == ProxyStats(open_connections=1)
    with pytest.raises(TimeoutError):
        proxy.wait_for(lambda s: s.requests_seen > 0, timeout=0.05)
    conn.close()
    assert proxy.wait_for(lambda s: s.open_connections == 0).open_connections == 0


def test_explicit_lifecycle_and_url(upstream: Upstream) -> None:
    proxy = FaultProxy(upstream=upstream.url + "/")
    with pytest.raises(RuntimeError):
        _ = proxy.url
    assert proxy.start() is proxy
    assert proxy.url == f"http://127.0.0.1:{proxy.port}"
    assert proxy.url_for_host("localhost") == f"http://localhost:{proxy.port}"
    with pytest.raises(RuntimeError):
        proxy.start()
    proxy.close()
    proxy.close()
    with pytest.raises(RuntimeError):
        proxy.set_fault(None)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", proxy.port), timeout=2).close()


@pytest.mark.parametrize(
    "bad", ["ftp://127.0.0.1:1", "http://127.0.0.1:9200/prefix", "http:///nohost"]
)
def test_bad_upstream_rejected(bad: str) -> None:
    with pytest.raises(ValueError):
        FaultProxy(upstream=bad)


def test_https_upstream_needs_context() -> None:
    with pytest.raises(ValueError):
        FaultProxy(upstream="https://127.0.0.1:9200")


def test_fault_validation() -> None:
    with pytest.raises(ValueError):
        Fault.latency(-1)
    with pytest.raises(ValueError):
        Fault.drip(interval=0.1, chunk=0)
    with pytest.raises(ValueError):
        Fault.random(reset_probability=1.5)
    with pytest.raises(ValueError):
        Fault.status(42)
    with pytest.raises(ValueError):
        Fault.status(503, headers={"X-Bad": "a\r\nInjected: 1"})
    with pytest.raises(ValueError):
        Fault.refuse().times(1)
    with pytest.raises(ValueError):
        Fault.status(503).times(-1)
    narrowed = Fault.status(503).times(2).matching(method="get")
    assert (narrowed.kind, narrowed.limit, narrowed.method) == (FaultKind.STATUS, 2, "GET")
    assert narrowed.matches("GET", "/x") and not narrowed.matches("PUT", "/x")


def test_close_leaves_no_threads_or_fds(upstream: Upstream) -> None:
    assert not proxy_threads()
    baseline = open_fds()
    proxy = FaultProxy(upstream=upstream.url).start()

    idle = client(proxy)
    assert get(idle, "/json")[0] == 200

    proxy.set_fault(Fault.blackhole())
    hung = client(proxy)
    hung.request("GET", "/hang")
    proxy.wait_for(lambda s: s.requests_seen == 2)

    proxy.set_fault(Fault.drip(interval=10.0, chunk=1))
    dripping = client(proxy)
    dripping.request("GET", "/drip")
    proxy.wait_for(lambda s: s.requests_forwarded == 2)

    proxy.set_fault(Fault.random(reset_probability=0.3, seed=3))
    for i in range(20):
        c = client(proxy)
        with contextlib.suppress(ConnectionResetError, http.client.RemoteDisconnected):
            get(c, f"/chaos{i}")
        c.close()

    proxy.wait_for(lambda s: s.open_connections == 3)  # idle, blackholed, dripping
    started = time.monotonic()
    proxy.close()
    assert time.monotonic() - started < 2.0
    assert proxy.open_connections == 0
    assert not proxy_threads()

    for c in (idle, hung, dripping):
        c.close()
    upstream.recorder.wait_idle()
    assert open_fds() == baseline
