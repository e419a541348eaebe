"""HTTP proxies in the sans-IO core (``sturdysearch._core.proxy``): proxy URLs and their
redaction, ``no_proxy`` rules, the environment (a mapping passed in), the CONNECT request and
the parsing of its answer, and what the transport core sends through a proxy."""

from __future__ import annotations

import base64
import pickle
from typing import Any

import pytest

from sturdysearch import AsyncClient, Client
from sturdysearch._core.config import build_config
from sturdysearch._core.driver import TransportBase, probe_exchange
from sturdysearch._core.http1 import ProtocolViolation, ResponseHead
from sturdysearch._core.nodes import NodeConfig
from sturdysearch._core.outcome import failure_of
from sturdysearch._core.plan import ejects
from sturdysearch._core.proxy import (
    MAX_TUNNEL_ANSWER,
    ProxyConfig,
    ProxyEndpoint,
    TunnelAnswer,
    connect_request,
    parse_bypass,
    parse_bypass_list,
    parse_proxy_url,
    proxy_from_environ,
    proxy_settings,
    tunnel_refused,
    tunnel_violation,
)
from sturdysearch.errors import ConfigError, ProxyAuthenticationError, ProxyError

PASSWORD = "s3cr3t-Pr0xy"
NODE_HTTP = NodeConfig("http", "10.0.0.5", 9200)
NODE_HTTPS = NodeConfig("https", "es1.internal", 9243)
UA = "sturdysearch-py/test"


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


# -- proxy URLs ---------------------------------------------------------------------------------


def test_a_proxy_url_with_credentials() -> None:
    proxy = parse_proxy_url(f"http://alice:{PASSWORD}@proxy.corp:3128")
    assert (proxy.host, proxy.port, proxy.username) == ("proxy.corp", 3128, "alice")
    assert proxy.password is not None and proxy.password.reveal() == PASSWORD
    assert proxy.authorization is not None
    assert proxy.authorization.reveal() == basic("alice", PASSWORD)
    assert proxy.url == "http://alice:***@proxy.corp:3128"  # noqa: SSP113 (the redacted form shown to users)
    for shown in (repr(proxy), str(proxy), proxy.url):
        assert PASSWORD not in shown
    with pytest.raises(TypeError):
        pickle.dumps(proxy)  # the Secret inside refuses to be pickled


def test_percent_encoded_credentials_and_ipv6() -> None:
    proxy = parse_proxy_url("http://al%40ice:p%3Aw%2F%23d@[fd00::1]:8080/")
    assert proxy.username == "al@ice"
    assert proxy.password is not None and proxy.password.reveal() == "p:w/#d"
    assert proxy.host == "fd00::1" and proxy.port == 8080
    assert proxy.url == "http://al@ice:***@[fd00::1]:8080"


def test_a_proxy_url_without_credentials_sends_none() -> None:
    proxy = parse_proxy_url("http://127.0.0.1:3128")
    assert proxy.authorization is None and proxy.url == "http://127.0.0.1:3128"
    assert proxy.is_loopback
    assert not parse_proxy_url("http://proxy.corp:3128").is_loopback


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("proxy.corp:3128", "has no scheme: write 'http://proxy.corp:3128'"),
        (f"https://u:{PASSWORD}@proxy.corp:3128", "TLS to the proxy itself"),
        (f"socks5://u:{PASSWORD}@proxy.corp:1080", "SOCKS proxies are not supported"),
        ("ftp://proxy.corp:21", "the scheme must be http://"),
        (f"http://u:{PASSWORD}@proxy.corp", "has no port"),
        (f"http://u:{PASSWORD}@proxy.corp:99999", "port is not a number"),
        (f"http://u:{PASSWORD}@proxy.corp:31x", "port is not a number"),
        ("http://proxy.corp:3128/path", "takes no path"),
        ("http://proxy.corp:3128?x=1", "takes no path, query"),
        (f"http://:{PASSWORD}@proxy.corp:3128", "user name is empty"),
        (f"http://u:{PASSWORD}/x@proxy.corp:3128", "percent-encode them"),
        (f"http://u:{PASSWORD}#x@proxy.corp:3128", "percent-encode them"),
        ("http://u:pa%0Ass@proxy.corp:3128", "line break"),
        ("", "must be a proxy URL"),
        (3128, "got int"),
    ],
)
def test_bad_proxy_urls_say_how_to_fix_them_without_the_password(value: Any, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_proxy_url(value)
    assert message in str(caught.value)
    assert PASSWORD not in str(caught.value)


def test_the_environment_may_leave_out_the_scheme() -> None:
    proxy = parse_proxy_url("proxy.corp:3128", source="HTTPS_PROXY", from_env=True)
    assert proxy.url == "http://proxy.corp:3128" and proxy.source == "HTTPS_PROXY"


# -- no_proxy -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "host", "port", "bypassed"),
    [
        ("*", "anything.example", 9200, True),
        ("example.com", "example.com", 9200, True),
        ("example.com", "es1.example.com", 9200, True),
        ("example.com", "notexample.com", 9200, False),
        (".example.com", "es1.example.com", 9200, True),
        (".example.com", "example.com", 9200, True),
        ("*.example.com", "a.b.example.com", 9200, True),
        ("EXAMPLE.com.", "es1.example.com", 9200, True),
        ("es1.example.com:9200", "es1.example.com", 9200, True),
        ("es1.example.com:9200", "es1.example.com", 9201, False),
        ("10.0.0.5", "10.0.0.5", 9200, True),
        ("10.0.0.5", "10.0.0.50", 9200, False),
        ("10.0.0.0/8", "10.1.2.3", 9200, True),
        ("10.0.0.0/8", "11.1.2.3", 9200, False),
        ("10.0.0.0/8", "ten.example.com", 9200, False),  # names are not resolved
        ("10.0.0.5:9200", "10.0.0.5", 9201, False),
        ("::1", "::1", 9200, True),
        ("[::1]:9200", "::1", 9200, True),
        ("[::1]:9200", "::1", 9201, False),
        ("fd00::/8", "fd12::3", 9200, True),
        ("fd00::/8", "fe80::1", 9200, False),
        ("localhost", "localhost", 9200, True),
        ("localhost", "127.0.0.1", 9200, False),  # as written, no resolution either way
    ],
)
def test_bypass_rules(entry: str, host: str, port: int, bypassed: bool) -> None:
    rule = parse_bypass(entry)
    assert rule is not None
    assert rule.matches(host, port) is bypassed


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("es1:http", "port after ':' must be a number"),
        ("es1:0", "port after ':' must be a number"),
        ("10.0.0.0/33", "not an address range"),
        ("[::1", "write an IPv6 address as [::1]:9200"),
        ("a b", "not a host name"),
    ],
)
def test_bad_bypass_entries(entry: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_bypass(entry, source="NO_PROXY")
    assert message in str(caught.value) and "NO_PROXY" in str(caught.value)


def test_bypass_lists_take_strings_and_lists() -> None:
    rules = parse_bypass_list("localhost, .internal ,,10.0.0.0/8")
    assert [r.entry for r in rules] == ["localhost", "internal", "10.0.0.0/8"]
    assert parse_bypass_list(["a.example", "b.example,a.example"]) == parse_bypass_list(
        "a.example,b.example"
    )
    with pytest.raises(ConfigError, match="must be a list of hosts"):
        parse_bypass_list(5)


def test_the_decision_is_per_node() -> None:
    proxy = parse_proxy_url("http://proxy.corp:3128")
    config = ProxyConfig(http=proxy, https=proxy, no_proxy=parse_bypass_list(".internal"))
    assert config.endpoint_for(NODE_HTTPS) is None  # es1.internal
    assert config.endpoint_for(NODE_HTTP) is proxy
    sniffed = NodeConfig("http", "10.0.0.6", 9200)
    assert config.endpoint_for(sniffed) is proxy
    only_https = ProxyConfig(https=proxy)
    assert only_https.endpoint_for(NODE_HTTP) is None


def test_routes() -> None:
    proxy = parse_proxy_url(f"http://alice:{PASSWORD}@proxy.corp:3128")
    config = ProxyConfig(http=proxy, https=proxy)
    forward = config.route(NODE_HTTP, user_agent=UA)
    assert forward is not None and not forward.tunnel
    assert forward.origin == "http://10.0.0.5:9200" and forward.request == b""
    tunnel = config.route(NODE_HTTPS, user_agent=UA)
    assert tunnel is not None and tunnel.tunnel and tunnel.origin == ""
    assert tunnel.request.startswith(b"CONNECT es1.internal:9243 HTTP/1.1\r\n")
    assert PASSWORD not in repr(tunnel) and PASSWORD not in repr(config)


# -- the environment ------------------------------------------------------------------------------


def test_environment_per_scheme_and_precedence() -> None:
    env = {
        "HTTPS_PROXY": "http://upper:1",
        "https_proxy": "http://lower:2",
        "HTTP_PROXY": "http://plain:3",
        "NO_PROXY": "localhost,.internal",
    }
    config = proxy_from_environ(env)
    assert config is not None
    assert config.https is not None and config.https.url == "http://lower:2"
    assert config.https.source == "https_proxy"
    assert config.http is not None and config.http.url == "http://plain:3"
    assert [r.entry for r in config.no_proxy] == ["localhost", "internal"]


def test_all_proxy_is_the_fallback_and_empty_means_unset() -> None:
    config = proxy_from_environ({"ALL_PROXY": "http://all:8080", "https_proxy": " "})
    assert config is not None
    assert config.http is not None and config.https is not None
    assert config.http.source == config.https.source == "ALL_PROXY"
    assert proxy_from_environ({"HTTPS_PROXY": "", "NO_PROXY": "*"}) is None
    assert proxy_from_environ({}) is None


def test_upper_case_http_proxy_is_ignored_under_cgi() -> None:
    # httpoxy: under CGI, HTTP_PROXY is the client's "Proxy:" request header
    assert proxy_from_environ({"REQUEST_METHOD": "GET", "HTTP_PROXY": "http://evil:1"}) is None
    config = proxy_from_environ({"REQUEST_METHOD": "GET", "http_proxy": "http://ok:1"})
    assert config is not None and config.http is not None and config.http.host == "ok"


def test_a_bad_environment_value_names_its_variable() -> None:
    with pytest.raises(ConfigError) as caught:
        proxy_from_environ({"ALL_PROXY": f"socks5h://u:{PASSWORD}@proxy:1080"})
    assert "ALL_PROXY" in str(caught.value) and PASSWORD not in str(caught.value)
    with pytest.raises(ConfigError, match="NO_PROXY entry"):
        proxy_from_environ({"HTTP_PROXY": "http://p:1", "NO_PROXY": "10.0.0.0/99"})


def test_the_environment_is_read_only_on_request() -> None:
    env = {"HTTPS_PROXY": "http://proxy.corp:3128"}
    assert proxy_settings(None, proxy_from_env=False, no_proxy=None, environ=env) is None
    on = proxy_settings(None, proxy_from_env=True, no_proxy=None, environ=env)
    assert on is not None and on.https is not None


def test_an_environment_credential_is_blamed_on_its_variable() -> None:
    config = proxy_from_environ({"HTTPS_PROXY": f"http://u:{PASSWORD}@proxy:3128"})
    assert config is not None and config.https is not None
    error = tunnel_refused(answer(b"HTTP/1.1 407 Nope\r\n\r\n"), config.https, "https://n:9200")
    assert error is not None
    assert "HTTPS_PROXY (read because proxy_from_env=True)" in str(error)


# -- client options ---------------------------------------------------------------------------------


def test_client_options_and_redaction() -> None:
    url = f"http://alice:{PASSWORD}@proxy.corp:3128"
    config = build_config(["https://es1:9200"], proxy=url, no_proxy=["localhost"])
    assert config.proxy is not None and config.proxy.https is not None
    assert config.proxy.https.host == "proxy.corp"
    text = repr(config)
    assert "http://alice:***@proxy.corp:3128" in text and "'localhost'" in text  # noqa: SSP113 (the redacted form shown to users)
    assert PASSWORD not in text
    assert basic("alice", PASSWORD).split()[1] not in text
    for cls in (Client, AsyncClient):
        client = cls(["https://es1:9200"], proxy=url)
        assert PASSWORD not in repr(client.config) and PASSWORD not in repr(client)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"proxy": "http://p:1", "proxy_from_env": True},
            "give proxy= or proxy_from_env=True, not both",
        ),
        ({"no_proxy": ["localhost"]}, "no_proxy= only applies with proxy="),
        ({"proxy_from_env": "yes"}, "proxy_from_env must be True or False"),
        ({"headers": {"Proxy-Authorization": "Basic x"}}, "pass proxy credentials in the proxy"),
        ({"proxy": "https://p:1"}, "TLS to the proxy itself"),
    ],
)
def test_refused_combinations(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        build_config(["https://es1:9200"], **options)
    assert message in str(caught.value)


def test_the_clients_read_os_environ_only_with_proxy_from_env(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.corp:3128")
    monkeypatch.setenv("HTTP_PROXY", "http://other.corp:3128")
    for cls in (Client, AsyncClient):
        assert cls(["https://es1:9200"]).config.proxy is None
        config = cls(["https://es1:9200"], proxy_from_env=True).config.proxy
        assert config is not None and config.https is not None
        assert config.https.host == "proxy.corp"
        assert config.http is not None and config.http.host == "other.corp"


def test_credentials_to_a_local_node_through_a_remote_proxy_count_as_in_clear() -> None:
    with pytest.raises(ConfigError, match="sent in clear"):
        build_config(
            ["http://127.0.0.1:9200"], basic_auth=("u", "p"), proxy="http://proxy.corp:3128"
        )
    build_config(["http://127.0.0.1:9200"], basic_auth=("u", "p"), proxy="http://127.0.0.1:3128")
    build_config(
        ["http://127.0.0.1:9200"],
        basic_auth=("u", "p"),
        proxy="http://proxy.corp:3128",
        no_proxy=["127.0.0.1"],
    )


@pytest.mark.parametrize("keyword", ["proxies", "http_proxy", "https_proxy", "proxy_url"])
def test_the_peers_keywords_point_to_proxy(keyword: str) -> None:
    options: dict[str, Any] = {keyword: {"https": "http://p:1"}}
    for cls in (Client, AsyncClient):
        with pytest.raises(ConfigError) as caught:
            cls("http://127.0.0.1:9", **options)
        assert "proxy='http://" in str(caught.value)


# -- the CONNECT exchange ---------------------------------------------------------------------------


def test_connect_request_bytes() -> None:
    plain = parse_proxy_url("http://proxy.corp:3128")
    assert connect_request(NODE_HTTPS, plain, UA) == (
        b"CONNECT es1.internal:9243 HTTP/1.1\r\n"
        b"Host: es1.internal:9243\r\n"
        b"User-Agent: sturdysearch-py/test\r\n\r\n"
    )
    with_auth = parse_proxy_url(f"http://alice:{PASSWORD}@proxy.corp:3128")
    v6 = NodeConfig("https", "fd00::2", 9200)
    assert connect_request(v6, with_auth, UA) == (
        b"CONNECT [fd00::2]:9200 HTTP/1.1\r\n"
        b"Host: [fd00::2]:9200\r\n"
        b"User-Agent: sturdysearch-py/test\r\n"
        + f"Proxy-Authorization: {basic('alice', PASSWORD)}\r\n\r\n".encode()
    )


def test_connect_always_names_the_port() -> None:
    # the node's own Host header leaves out a default port; CONNECT's authority-form never does
    node = NodeConfig("https", "search-x.eu-west-1.es.amazonaws.com", 443)
    request = connect_request(node, parse_proxy_url("http://proxy.corp:3128"), UA)
    assert request.startswith(
        b"CONNECT search-x.eu-west-1.es.amazonaws.com:443 HTTP/1.1\r\n"
        b"Host: search-x.eu-west-1.es.amazonaws.com:443\r\n"
    )


def answer(data: bytes) -> TunnelAnswer:
    reader = TunnelAnswer()
    assert reader.feed(data)
    return reader


def test_an_answer_fed_byte_by_byte() -> None:
    data = b"HTTP/1.1 200 Connection established\r\nVia: 1.1 squid\r\n\r\n"
    reader = TunnelAnswer()
    for i in range(len(data) - 1):
        assert not reader.feed(data[i : i + 1])
    assert reader.feed(data[-1:])
    assert reader.head is not None and reader.head.status == 200
    assert reader.head.headers["via"] == "1.1 squid"
    assert tunnel_refused(reader, parse_proxy_url("http://p:1"), "https://n:1") is None


def test_a_200_with_bytes_after_it_is_refused() -> None:
    reader = answer(b"HTTP/1.0 200 OK\r\n\r\n\x16\x03")
    error = tunnel_refused(reader, parse_proxy_url("http://p:1"), "https://n:1")
    assert isinstance(error, ProxyError) and "2 unexpected bytes" in str(error)


@pytest.mark.parametrize("with_credentials", [True, False])
def test_407_is_a_typed_error_without_the_password(with_credentials: bool) -> None:
    userinfo = f"alice:{PASSWORD}@" if with_credentials else ""
    proxy = parse_proxy_url(f"http://{userinfo}proxy.corp:3128")
    reader = answer(
        b"HTTP/1.1 407 Proxy Authentication Required\r\n"
        b'Proxy-Authenticate: Basic realm="corp"\r\nContent-Length: 3\r\n\r\nabc'
    )
    error = tunnel_refused(reader, proxy, "https://es1.internal:9243")
    assert isinstance(error, ProxyAuthenticationError)
    text = str(error)
    assert text.startswith("proxy authentication required: ")
    if with_credentials:
        assert "check the user and password in proxy=" in text
    else:
        assert "wants a user and password; put them in proxy=" in text
    assert PASSWORD not in text and PASSWORD not in repr(error)
    assert error.status == 407 and error.node == "https://es1.internal:9243"
    assert not error.request_sent
    assert pickle.loads(pickle.dumps(error)).status == 407
    # neither retried nor held against the node
    assert failure_of(error) is None and not ejects(error)


@pytest.mark.parametrize(
    ("status_line", "expected"),
    [
        (
            b"HTTP/1.1 502 Bad Gateway",
            "refused to open a tunnel: 502 Bad Gateway (the proxy could not reach",
        ),
        (b"HTTP/1.1 403 Forbidden", "403 Forbidden (the proxy's rules forbid CONNECT"),
        (b"HTTP/1.1 503 Service Unavailable", "503 Service Unavailable"),
        (b"HTTP/1.1 301 Moved", "301 Moved"),
    ],
)
def test_other_refusals_name_the_proxys_status(status_line: bytes, expected: str) -> None:
    error = tunnel_refused(
        answer(status_line + b"\r\nContent-Type: text/html\r\n\r\n<html>"),
        parse_proxy_url("http://proxy.corp:3128"),
        "https://n:1",
    )
    assert isinstance(error, ProxyError) and not isinstance(error, ProxyAuthenticationError)
    assert expected in str(error) and "http://proxy.corp:3128" in str(error)
    assert error.status == int(status_line.split()[1])
    assert failure_of(error) is not None  # retried elsewhere, like a refused connection


def test_an_oversized_answer_is_cut_off() -> None:
    reader = TunnelAnswer()
    line = b"X-Filler: " + b"a" * 1000 + b"\r\n"
    data = b"HTTP/1.1 200 OK\r\n" + line * (MAX_TUNNEL_ANSWER // len(line) + 2)
    with pytest.raises(ProtocolViolation, match="longer than"):
        for i in range(0, len(data), 4096):
            reader.feed(data[i : i + 4096])
    with pytest.raises(ProtocolViolation, match="longer than"):
        TunnelAnswer().feed(data + b"\r\n")  # ends, but too late


@pytest.mark.parametrize(
    "data",
    [
        b"SSH-2.0-OpenSSH_9.2\r\n\r\n",
        b"HTTP/1.1 abc Nope\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nbad\r\n\r\n",
    ],
)
def test_malformed_answers(data: bytes) -> None:
    with pytest.raises(ProtocolViolation) as caught:
        TunnelAnswer().feed(data)
    error = tunnel_violation(caught.value, parse_proxy_url("http://p:1"), "https://n:1")
    assert isinstance(error, ProxyError) and "failed to open a tunnel" in str(error)


def test_a_proxy_closing_before_answering() -> None:
    reader = TunnelAnswer()
    with pytest.raises(ProtocolViolation, match="before answering"):
        reader.feed_eof()
    reader.feed(b"HTTP/1.1 200")
    with pytest.raises(ProtocolViolation, match="in the middle of its answer"):
        reader.feed_eof()


# -- what the transport core sends -------------------------------------------------------------------


def transport(**options: Any) -> TransportBase:
    core = TransportBase(build_config(**options), clock=lambda: 0.0, rand=lambda: 0.5)
    for node in core.config.nodes:
        core.remember_headers(node)
    return core


def head_for(core: TransportBase, node: NodeConfig) -> bytes:
    head, _ = core.encode_for(probe_exchange(0.0, 1.0), node)
    return head


def test_absolute_form_and_proxy_authorization_for_http_nodes() -> None:
    core = transport(
        hosts=["http://127.0.0.1:9200/prefix", "http://127.0.0.2:9200", "https://es1:9200"],
        proxy=f"http://alice:{PASSWORD}@127.0.0.1:3128",
        no_proxy=["127.0.0.2"],
    )
    proxied, bypassed, tls = core.config.nodes
    head = head_for(core, proxied)
    assert head.startswith(b"GET http://127.0.0.1:9200/prefix/ HTTP/1.1\r\n")
    assert f"proxy-authorization: {basic('alice', PASSWORD)}\r\n".encode() in head
    assert b"host: 127.0.0.1:9200\r\n" in head
    # bypassed: direct, origin-form, no proxy credentials
    head = head_for(core, bypassed)
    assert head.startswith(b"GET / HTTP/1.1\r\n") and b"proxy-authorization" not in head
    # tunnelled: the proxy sees TLS only; credentials go in the CONNECT request
    head = head_for(core, tls)
    assert head.startswith(b"GET / HTTP/1.1\r\n") and b"proxy-authorization" not in head
    route = core.proxy_route(tls)
    assert route is not None and basic("alice", PASSWORD).encode() in route.request
    # a sniffed node follows the same rules
    sniffed = NodeConfig("http", "127.0.0.3", 9200)
    core.remember_headers(sniffed)
    assert head_for(core, sniffed).startswith(b"GET http://127.0.0.3:9200/ HTTP/1.1\r\n")
    core.forget_headers(sniffed)
    assert core._absolute is not None and sniffed not in core._absolute


def test_without_a_proxy_nothing_changes() -> None:
    core = transport(hosts=["http://127.0.0.1:9200"])
    assert core._absolute is None and core.proxy_route(core.config.nodes[0]) is None
    assert head_for(core, core.config.nodes[0]).startswith(b"GET / HTTP/1.1\r\n")


def test_a_407_to_an_absolute_form_request_is_the_proxys() -> None:
    core = transport(hosts=["http://127.0.0.1:9200"], proxy="http://127.0.0.1:3128")
    node = core.config.nodes[0]
    head = ResponseHead(
        407, "Proxy Authentication Required", "HTTP/1.1", {"content-type": "text/html"}
    )
    spec = probe_exchange(0.0, 1.0).spec._replace(ignore=frozenset())
    with pytest.raises(ProxyAuthenticationError, match="wants a user and password"):
        core.answer(spec, node, head, b"<html>denied</html>", 0.0)
    direct = transport(hosts=["http://127.0.0.1:9200"])
    with pytest.raises(Exception) as caught:  # a node's own 407 (none sends one) stays an ApiError
        direct.answer(spec, node, head, b"<html>denied</html>", 0.0)
    assert not isinstance(caught.value, ProxyAuthenticationError)


def test_proxy_endpoint_equality_ignores_derived_fields() -> None:
    a = ProxyEndpoint("p", 1, "u", None)
    assert a == ProxyEndpoint("p", 1, "u", None)
    assert a.authorization is not None and a.authorization.reveal() == basic("u", "")
