"""HTTP proxies, against a real squid and a real node: absolute-form requests for http://
nodes, CONNECT tunnels for https:// ones (TLS end to end, checked against the node), Basic
proxy credentials, deadlines that hold when the proxy hangs, the environment read only on
request, and sniffed nodes taking the same way.

Squid's access log is the proof that a request went through it: one line per forwarded
request, and one per tunnel once the tunnel closes.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import pytest

from sturdysearch import Client, RetryPolicy
from sturdysearch.errors import (
    ConnectTimeout,
    DeadlineExceeded,
    ProxyAuthenticationError,
    TLSError,
)
from sturdysearch.testing.ports import unaccepting_port
from sturdysearch.testing.squid import AccessEntry, SilentProxy, SquidProxy, find_squid
from sturdysearch.testing.tls import CertAuthority, TLSProxy

MakeClient = Callable[..., Any]

pytestmark = pytest.mark.skipif(
    find_squid() is None,
    reason="squid is not installed: run scripts/system-deps.sh as root (apt-get install squid)",
)

USER = "proxyuser"
PASSWORD = "Pr0xy-p@ss:wörd/#1"
"""With the characters that must be percent-encoded in a URL, and a non-ASCII one."""
PROXY_ENV = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")
NO_PROXY_ENV = ("no_proxy", "NO_PROXY")


@pytest.fixture(scope="module")
def squid() -> Iterator[SquidProxy]:
    with SquidProxy() as proxy:
        yield proxy


@pytest.fixture(scope="module")
def squid_auth() -> Iterator[SquidProxy]:
    with SquidProxy(auth=(USER, PASSWORD)) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def ca() -> CertAuthority:
    return CertAuthority()


@pytest.fixture
def tls_node(node_url: str, ca: CertAuthority) -> Iterator[TLSProxy]:
    """An https:// endpoint in front of the node, its certificate issued by ``ca``."""
    with TLSProxy(node_url, cert=ca.server_cert("127.0.0.1", "localhost")) as endpoint:
        yield endpoint


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No proxy variable from the machine running the tests leaks into them."""
    for name in (*PROXY_ENV, *NO_PROXY_ENV, "REQUEST_METHOD"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def forwarded(entries: list[AccessEntry], marker: str) -> list[AccessEntry]:
    """Absolute-form requests whose URL contains ``marker`` (an index name)."""
    return [e for e in entries if e.method != "CONNECT" and marker in e.url]


def index_search_bulk(client: Any, index: str) -> None:
    """The three calls every proxy test runs: a single write, a search and a bulk request."""
    client.index(index=index, id="1", document={"n": 1}, refresh=True)
    client.bulk(index=index, operations=[{"index": {"_id": "2"}}, {"n": 2}], refresh=True)
    found = client.search(index=index, query={"match_all": {}})
    assert found["hits"]["total"]["value"] == 2


# -- (a) http:// nodes: absolute-form ---------------------------------------------------------


def test_http_node_through_squid(
    make_client: MakeClient, node_url: str, index_name: str, squid: SquidProxy
) -> None:
    with make_client([node_url], proxy=squid.url) as client:
        index_search_bulk(client, index_name)
        assert client.info().version  # GET /: answered by the node, through squid
    entries = squid.wait_for(lambda es: any("_search" in e.url for e in forwarded(es, index_name)))
    seen = forwarded(entries, index_name)
    host = node_url.removeprefix("http://")
    assert {e.method for e in seen} >= {"PUT", "POST"}
    assert any(e.url.startswith(f"http://{host}/{index_name}/_doc/1") for e in seen)
    assert any("/_bulk" in e.url for e in seen) and any("/_search" in e.url for e in seen)
    assert all(e.result == "TCP_MISS" and e.status in (200, 201) for e in seen), seen


# -- (b) https:// nodes: CONNECT tunnels --------------------------------------------------------


def test_https_node_through_a_connect_tunnel(
    make_client: MakeClient,
    tls_node: TLSProxy,
    ca: CertAuthority,
    index_name: str,
    squid: SquidProxy,
) -> None:
    with make_client([tls_node.url], proxy=squid.url, ca_certs=ca.cert_pem) as client:
        index_search_bulk(client, index_name)
    # The tunnel is logged once it closes (the client closed it above).
    squid.wait_for(lambda es: bool(squid.tunnels_to(tls_node.port)))
    tunnels = squid.tunnels_to(tls_node.port)
    assert all(t.result == "TCP_TUNNEL" and t.status == 200 for t in tunnels), tunnels
    # squid saw no request line of it: the traffic in the tunnel was TLS to the node
    assert forwarded(squid.entries(), index_name) == []
    assert tls_node.stats.connections_accepted == len(tunnels)


def test_the_tunnel_checks_the_nodes_certificate_not_the_proxys(
    make_client: MakeClient, node_url: str, ca: CertAuthority, squid: SquidProxy
) -> None:
    # Issued for "localhost" only; the proxy is 127.0.0.1. Verified against the node's name
    # (SNI and host check), a node at https://localhost:port is accepted and the same
    # endpoint at https://127.0.0.1:port refused.
    with TLSProxy(node_url, cert=ca.server_cert("localhost")) as endpoint:
        with make_client(
            [endpoint.url_for_host("localhost")], proxy=squid.url, ca_certs=ca.cert_pem
        ) as client:
            assert client.ping()
        with (
            make_client([endpoint.url], proxy=squid.url, ca_certs=ca.cert_pem) as client,
            pytest.raises(TLSError) as caught,
        ):
            client.info()
    assert "another" in str(caught.value)  # issued for another host name / IP address
    assert caught.value.node == endpoint.url
    squid.wait_for(lambda es: bool(squid.tunnels_to(endpoint.port, host="localhost")))


# -- (c) proxy credentials ----------------------------------------------------------------------


def test_proxy_credentials_for_http_and_https_nodes(
    make_client: MakeClient,
    node_url: str,
    tls_node: TLSProxy,
    ca: CertAuthority,
    index_name: str,
    squid_auth: SquidProxy,
) -> None:
    with make_client([node_url], proxy=squid_auth.authenticated_url) as client:
        index_search_bulk(client, index_name)
        assert PASSWORD not in repr(client.config)
    with make_client(
        [tls_node.url], proxy=squid_auth.authenticated_url, ca_certs=ca.cert_pem
    ) as client:
        assert (
            client.search(index=index_name, query={"match_all": {}})["hits"]["total"]["value"] == 2
        )
    entries = squid_auth.wait_for(lambda es: bool(squid_auth.tunnels_to(tls_node.port)))
    assert {e.user for e in forwarded(entries, index_name)} == {USER}
    assert {e.user for e in squid_auth.tunnels_to(tls_node.port)} == {USER}


@pytest.mark.parametrize("scheme", ["http", "https"])
@pytest.mark.parametrize("password", ["wrong-password", None], ids=["wrong", "missing"])
def test_refused_proxy_credentials_raise_a_typed_error(
    make_client: MakeClient,
    node_url: str,
    tls_node: TLSProxy,
    ca: CertAuthority,
    squid_auth: SquidProxy,
    scheme: str,
    password: str | None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="sturdysearch")
    url = squid_auth.url if password is None else squid_auth.url_with(USER, password)
    node = node_url if scheme == "http" else tls_node.url
    marker = uuid.uuid4().hex
    with make_client([node], proxy=url, ca_certs=ca.cert_pem) as client:
        with pytest.raises(ProxyAuthenticationError) as caught:
            client.request("GET", f"/{marker}")
        assert client.nodes_status()[0]["state"] == "alive"  # the node is not blamed
        shown = [str(caught.value), repr(caught.value), repr(client.config), repr(client)]
    shown += [record.getMessage() for record in caplog.records]
    text = str(caught.value)
    assert text.startswith("proxy authentication required")
    if password is None:
        assert "wants a user and password" in text and "proxy=" in text
    else:
        assert "check the user and password in proxy=" in text
        for secret in (password, quote(password, safe="")):
            assert not any(secret in line for line in shown)
    assert caught.value.node == node
    # Not retried: one refusal in squid's log for this call.
    if scheme == "http":
        denied = squid_auth.wait_for(lambda es: bool(forwarded(es, marker)))
        assert [e.status for e in forwarded(denied, marker)] == [407]
    else:
        squid_auth.wait_for(
            lambda es: any(e.status == 407 and e.url == f"127.0.0.1:{tls_node.port}" for e in es)
        )
        assert tls_node.stats.connections_accepted == 0


# -- (d) a proxy that hangs: the deadline still holds ------------------------------------------


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_silent_proxy_is_cut_by_the_deadline(
    make_client: MakeClient, node_url: str, tls_node: TLSProxy, ca: CertAuthority, scheme: str
) -> None:
    node = node_url if scheme == "http" else tls_node.url
    with SilentProxy() as silent:
        with make_client([node], proxy=silent.url, ca_certs=ca.cert_pem) as client:
            start = time.monotonic()
            with pytest.raises((DeadlineExceeded, ConnectTimeout)) as caught:
                client.request("GET", "/", timeout=0.5)
            elapsed = time.monotonic() - start
        assert silent.accepted >= 1
    assert 0.45 <= elapsed < 0.5 + 0.4, caught.value
    if scheme == "https":
        assert "through the proxy" in str(caught.value)


def test_connect_timeout_covers_the_connect_exchange(
    make_client: MakeClient, tls_node: TLSProxy, ca: CertAuthority
) -> None:
    with SilentProxy() as silent:
        with make_client(
            [tls_node.url],
            proxy=silent.url,
            ca_certs=ca.cert_pem,
            connect_timeout=0.3,
            retry=RetryPolicy(max_attempts=1),
        ) as client:
            start = time.monotonic()
            with pytest.raises(ConnectTimeout) as caught:
                client.request("GET", "/", timeout=5)
            elapsed = time.monotonic() - start
    assert 0.28 <= elapsed < 0.3 + 0.4
    assert "CONNECT" in str(caught.value)


def test_a_proxy_that_does_not_accept_is_cut_by_the_deadline(
    make_client: MakeClient, tls_node: TLSProxy, ca: CertAuthority
) -> None:
    with unaccepting_port() as port:
        with make_client(
            [tls_node.url], proxy=f"http://127.0.0.1:{port}", ca_certs=ca.cert_pem
        ) as client:
            start = time.monotonic()
            with pytest.raises((DeadlineExceeded, ConnectTimeout)):
                client.request("GET", "/", timeout=0.5)
            elapsed = time.monotonic() - start
    assert 0.45 <= elapsed < 0.5 + 0.4


# -- (e) the environment, only when asked --------------------------------------------------------


def test_proxy_from_env_uses_http_proxy(
    make_client: MakeClient, node_url: str, index_name: str, squid: SquidProxy, clean_env: Any
) -> None:
    clean_env.setenv("HTTP_PROXY", squid.url)
    clean_env.setenv("NO_PROXY", "elsewhere.example.com")
    with make_client([node_url], proxy_from_env=True) as client:
        index_search_bulk(client, index_name)
    squid.wait_for(lambda es: any("_search" in e.url for e in forwarded(es, index_name)))


def _bypass_entries(node_url: str) -> list[str]:
    host, _, port = node_url.removeprefix("http://").partition(":")
    return [host, "127.0.0.0/8", f"{host}:{port}", f"other.example.com, {host}"]


@pytest.mark.parametrize("entry", range(4), ids=["address", "cidr", "host-port", "list"])
def test_no_proxy_bypasses_the_proxy(
    make_client: MakeClient,
    node_url: str,
    index_name: str,
    squid: SquidProxy,
    clean_env: Any,
    entry: int,
) -> None:
    clean_env.setenv("HTTP_PROXY", squid.url)
    clean_env.setenv("NO_PROXY", _bypass_entries(node_url)[entry])
    with make_client([node_url], proxy_from_env=True) as client:
        index_search_bulk(client, index_name)
    assert_never_through(squid, index_name, node_url)


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy", "ALL_PROXY"])
def test_without_proxy_from_env_the_environment_is_ignored(
    make_client: MakeClient,
    node_url: str,
    index_name: str,
    squid: SquidProxy,
    clean_env: Any,
    variable: str,
) -> None:
    clean_env.setenv(variable, squid.url)
    with make_client([node_url]) as client:
        assert client.config.proxy is None
        index_search_bulk(client, index_name)
    assert_never_through(squid, index_name, node_url)


def test_explicit_no_proxy_with_proxy(
    make_client: MakeClient, node_url: str, index_name: str, squid: SquidProxy
) -> None:
    with make_client([node_url], proxy=squid.url, no_proxy=["localhost", "127.0.0.1"]) as client:
        index_search_bulk(client, index_name)
    assert_never_through(squid, index_name, node_url)


def assert_never_through(squid: SquidProxy, index_name: str, node_url: str) -> None:
    """Nothing about ``index_name`` went through squid. A request sent through squid *after*
    the calls is waited for first: squid logs in order, so by then any earlier request through
    it would be in the log too."""
    marker = f"sentinel-{uuid.uuid4().hex}"
    with Client([node_url], proxy=squid.url) as through:
        through.request("GET", f"/{marker}", ignore=404)
    entries = squid.wait_for(lambda es: any(marker in e.url for e in es))
    assert forwarded(entries, index_name) == []


# -- (f) sniffing and probing through the proxy --------------------------------------------------


def test_sniffing_through_the_proxy(
    make_client: MakeClient, node_url: str, index_name: str, squid: SquidProxy
) -> None:
    with make_client([node_url], proxy=squid.url) as client:
        found = client.sniff()
        assert found  # the node's published address: reachable from here, through squid
        index_search_bulk(client, index_name)
    entries = squid.wait_for(lambda es: any("_search" in e.url for e in forwarded(es, index_name)))
    assert any(e.url.endswith("/_nodes/http") for e in entries)
    # every node in use afterwards, the sniffed ones included, was reached through squid
    hosts = {url.removeprefix("http://") for url in found}
    used = {e.url.removeprefix("http://").split("/", 1)[0] for e in forwarded(entries, index_name)}
    assert used <= hosts


def test_sniff_on_start_through_the_proxy(
    make_client: MakeClient, node_url: str, squid: SquidProxy
) -> None:
    before = sum(1 for e in squid.entries() if e.url.endswith("/_nodes/http"))
    with make_client([node_url], proxy=squid.url, sniff_on_start=True) as client:
        client.info()  # the first call starts the async client's background work
        squid.wait_for(lambda es: sum(1 for e in es if e.url.endswith("/_nodes/http")) > before)
