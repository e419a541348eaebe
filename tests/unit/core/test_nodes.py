"""Node URL parsing (``sturdysearch._core.nodes``)."""

from __future__ import annotations

import pytest

from sturdysearch._core.nodes import NodeConfig, parse_node
from sturdysearch.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "scheme", "host", "port", "prefix", "url"),
    [
        (
            "https://es1.internal:9200",
            "https",
            "es1.internal",
            9200,
            "",
            "https://es1.internal:9200",
        ),
        ("http://127.0.0.1:9201", "http", "127.0.0.1", 9201, "", "http://127.0.0.1:9201"),
        ("https://es1", "https", "es1", 9200, "", "https://es1:9200"),
        ("http://es1", "http", "es1", 9200, "", "http://es1:9200"),
        (
            "HTTPS://ES1.Example.COM",
            "https",
            "es1.example.com",
            9200,
            "",
            "https://es1.example.com:9200",
        ),
        ("http://[::1]:9200", "http", "::1", 9200, "", "http://[::1]:9200"),
        ("http://[::1]", "http", "::1", 9200, "", "http://[::1]:9200"),
        (
            "https://[2001:db8::7]:443/es",
            "https",
            "2001:db8::7",
            443,
            "/es",
            "https://[2001:db8::7]:443/es",
        ),
        ("http://h:9200/prefix", "http", "h", 9200, "/prefix", "http://h:9200/prefix"),
        ("http://h:9200/prefix/", "http", "h", 9200, "/prefix", "http://h:9200/prefix"),
        ("http://h:9200/a/b//", "http", "h", 9200, "/a/b", "http://h:9200/a/b"),
        ("http://h:9200/", "http", "h", 9200, "", "http://h:9200"),
        ("  https://h:9243  ", "https", "h", 9243, "", "https://h:9243"),
    ],
)
def test_parse(text: str, scheme: str, host: str, port: int, prefix: str, url: str) -> None:
    parsed = parse_node(text)
    node = parsed.node
    assert (node.scheme, node.host, node.port, node.path_prefix) == (scheme, host, port, prefix)
    assert node.url == url
    assert str(node) == url
    assert parsed.username is None and parsed.password is None


@pytest.mark.parametrize(
    ("text", "user", "password"),
    [
        ("https://elastic:changeme@es1:9200", "elastic", "changeme"),  # noqa: SSP113 (test data)
        ("https://elastic:p%40ss%3Aw%2Frd@es1:9200", "elastic", "p@ss:w/rd"),
        ("https://us%C3%A9r:pw@es1:9200", "usér", "pw"),  # noqa: SSP113 (test data)
        ("https://elastic@es1:9200", "elastic", None),
        ("https://elastic:@es1:9200", "elastic", None),
        ("http://elastic:secret@[::1]:9200", "elastic", "secret"),  # noqa: SSP113
    ],
)
def test_credentials_moved_out_of_url(text: str, user: str, password: str | None) -> None:
    parsed = parse_node(text)
    assert parsed.username == user
    assert parsed.password == password
    assert "@" not in parsed.node.url
    if password:
        assert password not in parsed.node.url
        assert password not in repr(parsed.node)
    assert user not in parsed.node.url


@pytest.mark.parametrize("text", ["localhost:9200", "es1.internal", "127.0.0.1:9200", "[::1]:9200"])
def test_scheme_required_message_suggests_https(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_node(text)
    msg = str(info.value)
    assert "no scheme" in msg
    assert f"'https://{text}'" in msg
    assert "never guessed" in msg


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("ftp://h:21", "scheme must be http or https"),
        ("ws://h:9200", "scheme must be http or https"),
        ("http://:9200", "has no host"),
        ("http://", "has no host"),
        ("http://h:99999", "Port out of range"),
        ("http://h:port", "h:port"),
        ("http://h:9200?x=1", "no query or fragment"),
        ("http://h:9200#frag", "no query or fragment"),
        ("", "must be a URL string"),
        ("   ", "must be a URL string"),
        (None, "must be a URL string"),
        (9200, "must be a URL string"),
        (b"http://h:9200", "must be a URL string"),
    ],
)
def test_bad_nodes(value: object, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_node(value)
    assert message in str(info.value)


@pytest.mark.parametrize(
    "text",
    [
        "ftp://elastic:hunter2@h:21",
        "http://elastic:hunter2@h:99999",  # noqa: SSP113 (test data)
        "http://elastic:hunter2@h:9200?x=1",  # noqa: SSP113 (test data)
        "http://elastic:hunter2@:9200",
    ],
)
def test_errors_redact_credentials(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_node(text)
    assert "hunter2" not in str(info.value)
    assert "***@" in str(info.value)


def test_redaction_with_at_sign_in_password() -> None:
    with pytest.raises(ConfigError) as info:
        parse_node("http://elastic:hunter@2secret@host:99999")  # noqa: SSP113 (test data)
    assert "2secret" not in str(info.value)


def test_schemeless_error_redacts_credentials() -> None:
    with pytest.raises(ConfigError) as info:
        parse_node("elastic:changeme@localhost:9200")
    assert "changeme" not in str(info.value)


def test_node_config_passthrough() -> None:
    node = NodeConfig("https", "h", 9200)
    parsed = parse_node(node)
    assert parsed.node is node
    assert parsed.username is None


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("::1", True),
        ("localhost", True),
        ("LOCALHOST", True),
        ("localhost.localdomain", True),
        ("ip6-localhost", True),
        ("10.0.0.1", False),
        ("192.168.1.1", False),
        ("::", False),
        ("2001:db8::1", False),
        ("es1.internal", False),
        ("localhost.evil.com", False),
        ("127.0.0.1.nip.io", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert NodeConfig("http", host, 9200).is_loopback is loopback


@pytest.mark.parametrize(("scheme", "tls"), [("https", True), ("http", False)])
def test_is_tls(scheme: str, tls: bool) -> None:
    assert NodeConfig(scheme, "h", 9200).is_tls is tls


@pytest.mark.parametrize(
    ("scheme", "host", "port", "header"),
    [
        ("http", "es1", 9200, "es1:9200"),
        ("http", "::1", 9200, "[::1]:9200"),
        ("http", "10.0.0.1", 80, "10.0.0.1"),  # the default port is left out, as curl does
        ("https", "search-x.es.amazonaws.com", 443, "search-x.es.amazonaws.com"),
        ("https", "es1", 80, "es1:80"),
        ("http", "es1", 443, "es1:443"),
        ("https", "::1", 443, "[::1]"),
    ],
)
def test_host_header(scheme: str, host: str, port: int, header: str) -> None:
    assert NodeConfig(scheme, host, port).host_header == header


def test_nodes_equal_and_hashable() -> None:
    a = parse_node("http://H:9200/").node
    b = parse_node("http://h").node
    assert a == b
    assert len({a, b}) == 1
