"""How credentials reach the request bytes: the client's own, a view's per-call ones
(``client.options(auth=...)``), a signing scheme per attempt, and which credentials a refused
call carried. Pure logic: the bytes come from ``TransportBase.encode_for`` with no socket."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from sturdysearch import AsyncClient, Client
from sturdysearch._core.auth import Auth
from sturdysearch._core.config import build_config, cloud_id_url
from sturdysearch._core.driver import CallerTransport, TransportBase
from sturdysearch._core.request import RequestSpec
from sturdysearch.auth import ApiKey, BasicAuth, BearerToken
from sturdysearch.errors import AuthenticationError, AuthorizationError, ConfigError


class _Guard:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


class RecordingSigner(Auth):
    """Signs with a counter, and records what it was asked to sign."""

    signs = True

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str, bytes | None]] = []

    def sign(
        self, method: str, host: str, target: str, body: bytes | None
    ) -> list[tuple[str, str]]:
        self.seen.append((method, host, target, body))
        return [("x-test-signature", str(len(self.seen)))]

    @property
    def scheme(self) -> str:
        return "recording"


def head_of(transport: TransportBase, spec: RequestSpec) -> str:
    node = transport.config.nodes[0]
    transport.remember_headers(node)
    call = transport.start_call(spec, _Guard())
    head, _ = transport.encode_for(call, node)
    return head.decode("latin-1")


def transport_for(**options: Any) -> TransportBase:
    return TransportBase(
        build_config("https://es1:9200", **options), clock=lambda: 0.0, rand=lambda: 0.5
    )


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_client_credentials_are_in_every_request() -> None:
    head = head_of(transport_for(auth=BasicAuth("u", "p")), RequestSpec("GET", "/"))
    assert f"authorization: Basic {b64('u:p')}\r\n" in head


def test_per_call_credentials_replace_the_clients() -> None:
    transport = transport_for(auth=BasicAuth("u", "p"))
    head = head_of(transport, RequestSpec("GET", "/", auth=ApiKey(id="i", api_key="k")))
    assert head.count("authorization:") == 1
    assert f"authorization: ApiKey {b64('i:k')}\r\n" in head
    # and the next call without them is the client's again
    assert f"authorization: Basic {b64('u:p')}\r\n" in head_of(transport, RequestSpec("GET", "/"))


def test_per_call_credentials_on_an_anonymous_client() -> None:
    head = head_of(transport_for(), RequestSpec("GET", "/", auth=BearerToken("t")))
    assert "authorization: Bearer t\r\n" in head


def test_a_signer_signs_the_exact_target_and_body_of_each_attempt() -> None:
    signer = RecordingSigner()
    transport = transport_for(auth=signer)
    spec = RequestSpec("POST", "/i/_doc/a%3Ab", params={"refresh": "true"}, body=b'{"a":1}')
    first = head_of(transport, spec)
    second = head_of(transport, spec)
    assert signer.seen == [("POST", "es1:9200", "/i/_doc/a%3Ab?refresh=true", b'{"a":1}')] * 2
    assert "x-test-signature: 1\r\n" in first and "x-test-signature: 2\r\n" in second
    assert "authorization:" not in first


def test_a_signer_signs_the_compressed_body() -> None:
    signer = RecordingSigner()
    transport = transport_for(auth=signer, http_compress=True)
    body = b'{"field": "' + b"x" * 4000 + b'"}'
    head_of(transport, RequestSpec("POST", "/_bulk", body=body))
    signed_body = signer.seen[0][3]
    assert signed_body is not None and signed_body[:2] == b"\x1f\x8b"  # gzip: the wire bytes


def test_per_call_signer_on_a_client_with_fixed_credentials_drops_them() -> None:
    signer = RecordingSigner()
    transport = transport_for(auth=BasicAuth("u", "p"))
    head = head_of(transport, RequestSpec("GET", "/", auth=signer))
    assert "authorization:" not in head and "x-test-signature: 1" in head


def test_a_signer_may_use_plain_http_to_a_remote_host() -> None:
    """SigV4 sends no reusable secret (the signature covers one request, for minutes), so
    the clear-text refusal does not apply to it."""
    build_config("http://search.example:80", auth=RecordingSigner())
    with pytest.raises(ConfigError, match="in clear"):
        build_config("http://search.example:80", auth=BasicAuth("u", "p"))


@pytest.mark.parametrize("status,kind", [(401, AuthenticationError), (403, AuthorizationError)])
def test_a_refused_call_names_its_credentials_redacted(status: int, kind: type[Any]) -> None:
    transport = transport_for(auth=ApiKey(id="key-7", api_key="SECRETSECRET"))
    call = transport.start_call(RequestSpec("GET", "/"), _Guard())
    error = kind(status, error_type="security_exception", reason="api key is expired")
    transport.call_failed(call, error)
    assert "sent with ApiKey(id='key-7', api_key=<redacted>)" in str(error)
    assert "SECRETSECRET" not in str(error) and error.credentials is not None


def test_a_refused_anonymous_call_says_how_to_authenticate() -> None:
    transport = transport_for()
    call = transport.start_call(RequestSpec("GET", "/"), _Guard())
    error = AuthenticationError(401, error_type="security_exception", reason="missing auth")
    transport.call_failed(call, error)
    assert "no credentials (pass auth=" in str(error)


# -- client.options(auth=...) -----------------------------------------------------------------


@pytest.mark.parametrize("cls", [Client, AsyncClient])
def test_options_view_shares_the_transport_and_has_its_own_namespaces(cls: Any) -> None:
    client = cls("https://es1:9200", auth=BasicAuth("u", "p"))
    view = client.options(auth=ApiKey("k"))
    assert isinstance(view, cls) and view is not client
    assert isinstance(view._transport, CallerTransport)
    assert view._transport.transport is client._transport
    assert view.config is client.config
    assert view.indices is not client.indices and view.indices._client is view
    assert client.indices._client is client
    # a view of a view carries only the newest credentials, over the same transport
    again = view.options(auth=BearerToken("t"))
    assert again._transport.transport is client._transport
    assert again._transport.auth == BearerToken("t")
    with pytest.raises(ConfigError, match=r"sturdysearch\.auth"):
        client.options(auth=("u", "p"))


# -- Elastic Cloud ids -------------------------------------------------------------------------


def cloud_id(name: str, decoded: str) -> str:
    return f"{name}:{base64.b64encode(decoded.encode()).decode()}"


@pytest.mark.parametrize(
    ("decoded", "url"),
    [
        ("us-east-1.aws.found.io$abc123$kib456", "https://abc123.us-east-1.aws.found.io:443"),
        ("eu-west-1.aws.found.io:9243$abc$kib", "https://abc.eu-west-1.aws.found.io:9243"),
        ("host.example$es1:9999$kib", "https://es1.host.example:9999"),
        ("host.example$es1", "https://es1.host.example:443"),
    ],
)
def test_cloud_id_names_the_deployment(decoded: str, url: str) -> None:
    assert cloud_id_url(cloud_id("my-deployment", decoded)) == url
    config = build_config(None, cloud_id=cloud_id("d", decoded), api_key="k")
    assert [n.url for n in config.nodes] == [url]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("no-colon", "name:base64"),
        ("d:!!!notbase64", "not valid"),
        (cloud_id("d", "only-host"), "does not name a host and a deployment"),
        (cloud_id("d", "host$es:port$k"), "port is not a number"),
    ],
)
def test_bad_cloud_ids(value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        cloud_id_url(value)


def test_cloud_id_and_hosts_are_exclusive() -> None:
    with pytest.raises(ConfigError, match="not both"):
        build_config("https://a:9200", cloud_id=cloud_id("d", "h$e$k"))
