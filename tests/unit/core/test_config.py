"""Client configuration (``sturdysearch._core.config``) and what a Client shows of it."""

from __future__ import annotations

import base64
import pickle
import socket
from collections.abc import Iterator
from typing import Any

import pytest

import sturdysearch
from sturdysearch._core.config import ClientConfig, PoolConfig, build_config
from sturdysearch._core.nodes import NodeConfig
from sturdysearch._core.timeouts import Timeouts
from sturdysearch.errors import ConfigError

PASSWORD = "Sup3rS3cretPassw0rd"
API_KEY = "QXBpS2V5SWQ6QXBpS2V5U2VjcmV0VmFsdWU="
TOKEN = "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0dG9rZW4.sig"
SECRETS = [PASSWORD, API_KEY, TOKEN, base64.b64encode(f"elastic:{PASSWORD}".encode()).decode()]


def no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


# -- nodes -------------------------------------------------------------------------------------


def test_single_host_string() -> None:
    config = build_config("https://es1:9200")
    assert config.nodes == (NodeConfig("https", "es1", 9200),)


def test_host_list_and_node_configs() -> None:
    node = NodeConfig("https", "es3", 9200)
    config = build_config(["https://es1:9200", "https://[::1]:9201/p", node])
    assert [n.url for n in config.nodes] == [
        "https://es1:9200",
        "https://[::1]:9201/p",
        "https://es3:9200",
    ]
    assert build_config(node).nodes == (node,)


@pytest.mark.parametrize(
    ("hosts", "message"),
    [
        (None, "give the cluster's node URLs"),
        ([], "list of nodes is empty"),
        ((), "list of nodes is empty"),
        ("localhost:9200", "https://localhost:9200"),
        (["https://a:9200", "https://a:9200"], "listed twice"),
        (["https://a", "https://A:9200/"], "listed twice"),
        (["http://[::1]:9200", "http://[::1]"], "listed twice"),
    ],
)
def test_bad_hosts(hosts: Any, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        build_config(hosts)
    assert message in str(info.value)


def test_same_host_different_scheme_or_prefix_is_not_duplicate() -> None:
    config = build_config(["http://a:9200", "https://a:9200", "https://a:9200/x"])
    assert len(config.nodes) == 3


# -- credentials -------------------------------------------------------------------------------


def test_credentials_in_url_moved_out() -> None:
    config = build_config(f"https://elastic:{PASSWORD}@es1:9200")
    assert config.nodes[0].url == "https://es1:9200"
    assert config.authorization is not None
    assert (
        config.authorization.reveal()
        == "Basic " + base64.b64encode(f"elastic:{PASSWORD}".encode()).decode()
    )
    no_secret(repr(config))


def test_same_credentials_in_every_url_accepted() -> None:
    config = build_config([f"https://u:{PASSWORD}@a", f"https://u:{PASSWORD}@b", "https://c"])
    assert config.authorization is not None
    assert [n.url for n in config.nodes] == ["https://a:9200", "https://b:9200", "https://c:9200"]


def test_different_credentials_in_urls_refused() -> None:
    with pytest.raises(ConfigError, match="different credentials") as info:
        build_config([f"https://u:{PASSWORD}@a", "https://u:other@b"])  # noqa: SSP113
    no_secret(str(info.value))


@pytest.mark.parametrize(
    "option", [{"basic_auth": ("u", "p")}, {"api_key": "k"}, {"bearer_auth": "t"}]
)
def test_credentials_in_url_and_option_refused(option: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="both in a node URL and as an option"):
        build_config(f"https://u:{PASSWORD}@a", **option)


@pytest.mark.parametrize(
    "creds",
    [{"basic_auth": ("elastic", PASSWORD)}, {"api_key": API_KEY}, {"bearer_auth": TOKEN}],
)
@pytest.mark.parametrize("host", ["http://es1:9200", "http://10.0.0.5", "http://[2001:db8::1]"])
def test_credentials_over_http_refused(creds: dict[str, Any], host: str) -> None:
    with pytest.raises(ConfigError) as info:
        build_config(["https://safe:9200", host], **creds)
    msg = str(info.value)
    assert "allow_credentials_over_http" in msg
    assert "in clear over http://" in msg
    assert "safe" not in msg  # only the exposed node is listed
    no_secret(msg)


def test_credentials_in_url_over_http_refused_without_leaking() -> None:
    with pytest.raises(ConfigError, match="allow_credentials_over_http") as info:
        build_config(f"http://elastic:{PASSWORD}@es1:9200")
    no_secret(str(info.value))


@pytest.mark.parametrize(
    "host",
    [
        "http://127.0.0.1:9200",
        "http://127.0.0.2:9200",
        "http://localhost:9200",
        "http://LocalHost",
        "http://[::1]:9200",
    ],
)
def test_credentials_over_http_to_loopback_allowed(host: str) -> None:
    config = build_config(host, basic_auth=("elastic", PASSWORD))
    assert config.authorization is not None


def test_credentials_over_http_with_flag() -> None:
    config = build_config("http://es1:9200", api_key=API_KEY, allow_credentials_over_http=True)
    assert config.allow_credentials_over_http is True
    assert config.authorization is not None


def test_no_credentials_over_http_is_fine() -> None:
    assert build_config("http://es1:9200").authorization is None


def test_one_kind_of_credentials_only() -> None:
    with pytest.raises(ConfigError, match="one kind of credentials"):
        build_config("https://a", basic_auth=("u", "p"), api_key="k")


# -- TLS and unknown options -------------------------------------------------------------------


def test_verify_certs_false_refused() -> None:
    with pytest.raises(ConfigError) as info:
        build_config("https://a", verify_certs=False)
    msg = str(info.value)
    assert "dangerously_skip_tls_verify" in msg
    assert "ca_certs" in msg
    assert "ssl_assert_fingerprint" in msg


def test_verify_certs_true_accepted() -> None:
    assert build_config("https://a", verify_certs=True).tls.verifies_chain


def test_dangerously_skip_tls_verify() -> None:
    config = build_config("https://a", dangerously_skip_tls_verify=True)
    assert config.tls.dangerously_skip_tls_verify
    assert not config.tls.verifies_chain


@pytest.mark.parametrize(
    ("options", "hint"),
    [
        ({"request_timeout": 10}, "use timeout= for the per-call deadline"),
        ({"ssl_context": object()}, "ca_certs=, ssl_assert_fingerprint="),
        ({"http_auth": ("u", "p")}, ""),
        ({"maxsize": 3, "retry_on_timeout": True}, ""),
    ],
)
def test_unknown_options_refused(options: dict[str, Any], hint: str) -> None:
    with pytest.raises(ConfigError, match="unknown option") as info:
        build_config("https://a", **options)
    msg = str(info.value)
    assert ", ".join(sorted(options)) in msg
    assert hint in msg


# -- timeouts, pool, headers -------------------------------------------------------------------


def test_defaults() -> None:
    config = build_config("https://a")
    assert config.timeouts == Timeouts()
    assert config.pool == PoolConfig()
    assert config.pool.connections_per_node == 16
    assert config.headers == ()
    assert config.http_compress is False
    assert config.authorization is None


def test_options_applied() -> None:
    config = build_config(
        "https://a",
        timeout=12,
        connect_timeout=1,
        read_timeout=3,
        connections_per_node=4,
        idle_timeout=5,
        headers={"X-Opaque-Id": "app"},
        http_compress=1,  # type: ignore[arg-type]
    )
    assert config.timeouts == Timeouts(connect=1, read=3, total=12)
    assert config.pool == PoolConfig(connections_per_node=4, idle_timeout=5)
    assert config.headers == (("x-opaque-id", "app"),)  # lower-cased: it replaces a built-in
    assert config.http_compress is True


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"timeout": None}, "timeout=None"),
        ({"timeout": 301}, "long_running"),
        ({"connect_timeout": 0}, "connect_timeout"),
        ({"read_timeout": float("inf")}, "read_timeout"),
        ({"connections_per_node": 0}, "connections_per_node"),
        ({"connections_per_node": 10_001}, "connections_per_node"),
        ({"connections_per_node": True}, "connections_per_node"),
        ({"connections_per_node": 2.0}, "connections_per_node"),
        ({"idle_timeout": -1}, "idle_timeout"),
        ({"headers": {"Authorization": "Basic x"}}, "basic_auth="),
        ({"headers": {"authorization": "Basic x"}}, "basic_auth="),
        ({"headers": {"X-A": "a\r\nX-B: b"}}, "line break"),
        ({"headers": {"X-A\n": "a"}}, "line break"),
    ],
)
def test_bad_options(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        build_config("https://a", **options)
    assert message in str(info.value)


# -- nothing secret is ever shown --------------------------------------------------------------


@pytest.mark.parametrize(
    ("hosts", "creds"),
    [
        ("https://es1:9200", {"basic_auth": ("elastic", PASSWORD)}),
        ("https://es1:9200", {"basic_auth": f"elastic:{PASSWORD}"}),
        ("https://es1:9200", {"api_key": API_KEY}),
        ("https://es1:9200", {"api_key": ("id", API_KEY)}),
        ("https://es1:9200", {"bearer_auth": TOKEN}),
        (f"https://elastic:{PASSWORD}@es1:9200", {}),
    ],
)
def test_config_repr_and_str_redacted(hosts: str, creds: dict[str, Any]) -> None:
    config = build_config(hosts, **creds)
    for text in (repr(config), str(config), f"{config!r}", repr([config])):
        no_secret(text)
        assert "<redacted>" in text
        assert "https://es1:9200" in text


def test_config_repr_without_credentials() -> None:
    assert "auth=None" in repr(build_config("https://es1:9200"))


def test_config_with_credentials_not_picklable() -> None:
    config = build_config("https://es1:9200", api_key=API_KEY)
    with pytest.raises(TypeError, match="not picklable"):
        pickle.dumps(config)


def test_config_is_frozen() -> None:
    config = build_config("https://es1:9200")
    with pytest.raises(AttributeError):
        config.http_compress = True  # type: ignore[misc]


@pytest.fixture
def no_sockets(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Fail the test if anything tries to open a connection."""
    attempts: list[Any] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(args)
        raise AssertionError(f"a socket was opened: {args!r}")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    yield attempts
    assert attempts == []


@pytest.mark.parametrize(
    ("hosts", "creds"),
    [
        (["https://es1:9200", "https://es2:9200"], {"basic_auth": ("elastic", PASSWORD)}),
        ("https://es1:9200", {"api_key": API_KEY}),
        ("https://es1:9200", {"bearer_auth": TOKEN}),
        (f"https://elastic:{PASSWORD}@es1:9200", {}),
        ("http://127.0.0.1:9200", {"api_key": ("id", API_KEY)}),
    ],
)
def test_client_repr_redacted_and_opens_no_socket(
    no_sockets: list[Any], hosts: Any, creds: dict[str, Any]
) -> None:
    client = sturdysearch.Client(hosts, **creds)
    try:
        for text in (repr(client), str(client), repr(client.config), str(client.config)):
            no_secret(text)
        assert repr(client).startswith("Client([")
        assert all(stats["open"] == 0 for stats in client.pool_stats().values())
    finally:
        client.close()


def test_client_construction_validates(no_sockets: list[Any]) -> None:
    with pytest.raises(ConfigError, match="dangerously_skip_tls_verify"):
        sturdysearch.Client("https://es1:9200", verify_certs=False)
    with pytest.raises(
        ConfigError, match="request_timeout= is not a sturdysearch keyword: use timeout="
    ):
        sturdysearch.Client("https://es1:9200", request_timeout=5)
    with pytest.raises(ConfigError, match="unknown option colour="):
        sturdysearch.Client("https://es1:9200", colour="blue")


@pytest.mark.parametrize(
    ("creds", "secret"),
    [
        ({"api_key": "c2VjcmV0a2V5\n"}, "c2VjcmV0a2V5"),
        ({"bearer_auth": "tok3n-s3cret\r\n"}, "tok3n-s3cret"),
        ({"api_key": API_KEY + "\n"}, API_KEY[:12]),
    ],
)
def test_credential_with_newline_refused_without_leaking(
    no_sockets: list[Any], creds: dict[str, Any], secret: str
) -> None:
    with pytest.raises(ValueError) as info:
        sturdysearch.Client("http://127.0.0.1:9200", **creds).close()
    assert secret not in str(info.value)
    assert isinstance(info.value, ConfigError)


def test_client_config_type() -> None:
    assert isinstance(build_config("https://a"), ClientConfig)
