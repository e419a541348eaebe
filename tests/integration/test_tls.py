"""TLS: verified by default, private CAs and pins easy, every failure explained."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sturdysearch.errors import AuthenticationError, ConfigError, TLSError
from sturdysearch.testing.tls import CertAuthority, TLSProxy

MakeClient = Callable[..., Any]


@pytest.fixture(scope="module")
def ca() -> CertAuthority:
    return CertAuthority()


@pytest.fixture
def tls_proxy(node_url: str, ca: CertAuthority) -> Iterator[TLSProxy]:
    with TLSProxy(node_url, cert=ca.server_cert("127.0.0.1", "localhost")) as p:
        yield p


def test_private_ca_as_path_and_as_pem_text(
    make_client: MakeClient, tls_proxy: TLSProxy, ca: CertAuthority, tmp_path: Path
) -> None:
    ca_file = ca.write_cert(tmp_path / "ca.pem")
    with make_client([tls_proxy.url], ca_certs=str(ca_file)) as client:
        assert client.ping()
    with make_client([tls_proxy.url_for_host("localhost")], ca_certs=ca.cert_pem) as client:
        assert client.info().version


def test_system_trust_store_rejects_a_private_ca(
    make_client: MakeClient, tls_proxy: TLSProxy
) -> None:
    with make_client([tls_proxy.url]) as client, pytest.raises(TLSError) as caught:
        client.ping()
    assert "unknown CA" in str(caught.value) or "not trusted" in str(caught.value)
    assert "ca_certs" in str(caught.value)


def test_unknown_ca(make_client: MakeClient, tls_proxy: TLSProxy) -> None:
    other = CertAuthority(name="some other CA")
    with (
        make_client([tls_proxy.url], ca_certs=other.cert_pem) as client,
        pytest.raises(TLSError) as e,
    ):
        client.ping()
    assert "unknown CA" in str(e.value)


def test_wrong_host(make_client: MakeClient, node_url: str, ca: CertAuthority) -> None:
    with TLSProxy(node_url, cert=ca.wrong_host_cert()) as p:
        with make_client([p.url], ca_certs=ca.cert_pem) as client, pytest.raises(TLSError) as e:
            client.ping()
    assert "another" in str(e.value)  # "issued for another host name / IP address"


def test_expired(make_client: MakeClient, node_url: str, ca: CertAuthority) -> None:
    with TLSProxy(node_url, cert=ca.expired_cert("127.0.0.1")) as p:
        with make_client([p.url], ca_certs=ca.cert_pem) as client, pytest.raises(TLSError) as e:
            client.ping()
    assert "expired" in str(e.value)


def test_tls_failures_are_not_retried(
    make_client: MakeClient, node_url: str, ca: CertAuthority
) -> None:
    with TLSProxy(node_url, cert=ca.expired_cert("127.0.0.1")) as p:
        with make_client([p.url], ca_certs=ca.cert_pem) as client, pytest.raises(TLSError):
            client.ping()
        assert p.stats.connections_accepted == 1


def test_pinned_fingerprint(make_client: MakeClient, node_url: str, ca: CertAuthority) -> None:
    leaf = ca.server_cert("127.0.0.1")
    with TLSProxy(node_url, cert=leaf) as p:
        for spelling in leaf.fingerprint.formats:
            with make_client([p.url], ssl_assert_fingerprint=spelling) as client:
                assert client.ping()


def test_mismatched_fingerprint(make_client: MakeClient, node_url: str, ca: CertAuthority) -> None:
    other = ca.server_cert("127.0.0.1")
    with TLSProxy(node_url, cert=ca.server_cert("127.0.0.1")) as p:
        with make_client([p.url], ssl_assert_fingerprint=other.fingerprint.hex) as client:
            with pytest.raises(TLSError) as caught:
                client.ping()
    assert "fingerprint mismatch" in str(caught.value)
    assert p.stats.requests_seen == 0  # nothing was sent to an unverified peer


def test_client_certificate(
    make_client: MakeClient, node_url: str, ca: CertAuthority, tmp_path: Path
) -> None:
    client_cert = ca.client_cert()
    files = client_cert.write(tmp_path, "client")
    # Under TLS 1.3 the server rejects a missing client certificate after the client's side of
    # the handshake has finished: both clients read the alert that arrives on the first read
    # and say so.
    with TLSProxy(node_url, cert=ca.server_cert("127.0.0.1"), client_ca=ca) as p:
        with make_client([p.url], ca_certs=ca.cert_pem) as client:
            with pytest.raises(TLSError, match="certificate"):
                client.ping()
        with make_client(
            [p.url], ca_certs=ca.cert_pem, client_cert=str(files.cert), client_key=str(files.key)
        ) as client:
            assert client.ping()


def test_skipping_verification_is_explicit_and_warned(
    make_client: MakeClient, tls_proxy: TLSProxy, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(ConfigError, match="dangerously_skip_tls_verify"):
        make_client([tls_proxy.url], verify_certs=False)
    with caplog.at_level(logging.WARNING, logger="sturdysearch"):
        with make_client([tls_proxy.url], dangerously_skip_tls_verify=True) as client:
            assert client.ping()
            assert client.ping()
    warnings = [r for r in caplog.records if "verification is OFF" in r.getMessage()]
    assert len(warnings) == 1


def test_credentials_never_sent_over_plain_http_to_remote_hosts(make_client: MakeClient) -> None:
    with pytest.raises(ConfigError, match="https"):
        make_client(["http://search.example.com:9200"], basic_auth=("elastic", "s3cret"))
    make_client(
        ["http://search.example.com:9200"], api_key="k", allow_credentials_over_http=True
    ).close()


def test_wrong_credentials_are_typed(
    make_client: MakeClient, tls_proxy: TLSProxy, ca: CertAuthority
) -> None:
    # The test nodes run without security, so a 401 is injected; the point is the mapping.
    from sturdysearch.testing.faults import Fault

    tls_proxy.set_fault(
        Fault.status(
            401, body=b'{"error":{"type":"security_exception","reason":"bad creds"},"status":401}'
        )
    )
    with make_client([tls_proxy.url], ca_certs=ca.cert_pem, basic_auth=("u", "wrong")) as client:
        with pytest.raises(AuthenticationError) as caught:
            client.info()
    assert caught.value.error_type == "security_exception"
    assert "wrong" not in str(caught.value) and "wrong" not in repr(caught.value)
