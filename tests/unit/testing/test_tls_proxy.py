"""TLSProxy and the certificate helpers, checked with the stdlib `ssl` verifying for real.

Each bad certificate must fail for its own reason (the OpenSSL verify code), otherwise a
test meant to prove "expired certificates are rejected" could pass on an unknown CA.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from sturdysearch.testing.proxy import Fault
from sturdysearch.testing.tls import (
    CertAuthority,
    CertificateSet,
    IssuedCert,
    TLSProxy,
    sha256_fingerprint,
)

if TYPE_CHECKING:
    from conftest import Upstream

# OpenSSL X509_V_ERR_* codes, as `ssl.SSLCertVerificationError.verify_code` reports them.
CERT_NOT_YET_VALID = 9
CERT_HAS_EXPIRED = 10
UNABLE_TO_GET_ISSUER_CERT_LOCALLY = 20
HOSTNAME_MISMATCH = 62
IP_ADDRESS_MISMATCH = 64

MakeProxy = Callable[..., TLSProxy]


@pytest.fixture(scope="module")
def certs() -> CertificateSet:
    return CertificateSet.create()


@pytest.fixture
def make_proxy(upstream: Upstream) -> Iterator[MakeProxy]:
    started: list[TLSProxy] = []

    def make(cert: IssuedCert, **kwargs: object) -> TLSProxy:
        proxy = TLSProxy(upstream.url, cert, **kwargs)  # type: ignore[arg-type]
        started.append(proxy.start())
        return proxy

    yield make
    for proxy in started:
        proxy.close()


def https(
    proxy: TLSProxy, ctx: ssl.SSLContext, host: str = "127.0.0.1"
) -> http.client.HTTPSConnection:
    return http.client.HTTPSConnection(host, proxy.port, context=ctx, timeout=5)


def get(conn: http.client.HTTPConnection, path: str) -> tuple[int, bytes]:
    conn.request("GET", path)
    resp = conn.getresponse()
    return resp.status, resp.read()


def verify_error(proxy: TLSProxy, ctx: ssl.SSLContext, host: str = "127.0.0.1") -> int:
    conn = https(proxy, ctx, host)
    with pytest.raises(ssl.SSLCertVerificationError) as info:
        conn.connect()
    conn.close()
    return info.value.verify_code


def test_handshake_with_trusted_ca_and_forwarding(
    certs: CertificateSet, make_proxy: MakeProxy, upstream: Upstream
) -> None:
    proxy = make_proxy(certs.server)
    assert proxy.url == f"https://127.0.0.1:{proxy.port}"
    assert proxy.url_for_host("localhost") == f"https://localhost:{proxy.port}"
    conn = https(proxy, certs.ca.client_context())
    status, body = get(conn, "/json")
    assert status == 200 and json.loads(body)["path"] == "/json"
    conn.request("POST", "/echo", body=b"z" * 100_000)
    assert json.loads(conn.getresponse().read())["received"] == 100_000
    assert conn.sock is not None
    assert conn.sock.version() in ("TLSv1.2", "TLSv1.3")
    conn.close()
    assert proxy.stats.connections_accepted == 1
    assert proxy.stats.tls_handshake_failures == 0
    assert upstream.recorder.paths() == ["/json", "/echo"]


def test_localhost_name_verifies(certs: CertificateSet, make_proxy: MakeProxy) -> None:
    proxy = make_proxy(certs.server)
    conn = https(proxy, certs.ca.client_context(), host="localhost")
    assert get(conn, "/json")[0] == 200
    conn.close()


def test_unknown_ca_rejected(certs: CertificateSet, make_proxy: MakeProxy) -> None:
    proxy = make_proxy(certs.unknown_ca)
    assert verify_error(proxy, certs.ca.client_context()) == UNABLE_TO_GET_ISSUER_CERT_LOCALLY
    proxy.wait_for(lambda s: s.tls_handshake_failures == 1)
    # The same certificate is fine for a client that trusts its CA: only the CA is wrong.
    conn = https(proxy, certs.other_ca.client_context())
    assert get(conn, "/json")[0] == 200
    conn.close()


def test_expired_rejected(certs: CertificateSet, make_proxy: MakeProxy) -> None:
    proxy = make_proxy(certs.expired)
    assert verify_error(proxy, certs.ca.client_context()) == CERT_HAS_EXPIRED


def test_not_yet_valid_rejected(certs: CertificateSet, make_proxy: MakeProxy) -> None:
    proxy = make_proxy(certs.not_yet_valid)
    assert verify_error(proxy, certs.ca.client_context()) == CERT_NOT_YET_VALID


def test_wrong_host_rejected(certs: CertificateSet, make_proxy: MakeProxy) -> None:
    proxy = make_proxy(certs.wrong_host)
    assert verify_error(proxy, certs.ca.client_context()) == IP_ADDRESS_MISMATCH
    assert verify_error(proxy, certs.ca.client_context(), "localhost") == HOSTNAME_MISMATCH
    # Without host-name checking the chain itself verifies: the name is the only problem.
    ctx = certs.ca.client_context()
    ctx.check_hostname = False  # noqa: SSP101 (the test's subject)
    conn = https(proxy, ctx)
    assert get(conn, "/json")[0] == 200
    conn.close()


def test_fingerprint_matches_what_ssl_sees(certs: CertificateSet, make_proxy: MakeProxy) -> None:
    proxy = make_proxy(certs.unknown_ca)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False  # noqa: SSP101
    ctx.verify_mode = ssl.CERT_NONE  # noqa: SSP101 (pinning users skip CA checks, compare the hash)
    with (
        socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as raw,
        ctx.wrap_socket(raw) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    fp = certs.unknown_ca.fingerprint
    assert fp.digest == hashlib.sha256(der).digest()
    assert fp == sha256_fingerprint(der) == sha256_fingerprint(certs.unknown_ca.cert_pem)
    assert fp != certs.server.fingerprint

    lower, upper = fp.hex, fp.hex.upper()
    assert re.fullmatch(r"[0-9a-f]{64}", lower)
    assert set(fp.formats) == {
        lower,
        upper,
        ":".join(upper[i : i + 2] for i in range(0, 64, 2)),
        ":".join(lower[i : i + 2] for i in range(0, 64, 2)),
    }
    assert str(fp) == fp.format(colons=True, upper=True)
    assert re.fullmatch(r"([0-9A-F]{2}:){31}[0-9A-F]{2}", str(fp))


def test_client_certificate_required(certs: CertificateSet, make_proxy: MakeProxy) -> None:
    proxy = make_proxy(certs.server, client_ca=certs.ca)

    def attempt(ctx: ssl.SSLContext) -> int:
        conn = https(proxy, ctx)
        try:
            return get(conn, "/json")[0]
        finally:
            conn.close()

    assert attempt(certs.ca.client_context(client_cert=certs.client)) == 200
    # With TLS 1.3 the client learns of the rejection only when it reads, so accept the
    # error wherever it surfaces, but it must surface.
    rejected = (ssl.SSLError, ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected)
    with pytest.raises(rejected):
        attempt(certs.ca.client_context())
    with pytest.raises(rejected):
        attempt(certs.ca.client_context(client_cert=certs.client_unknown_ca))
    proxy.wait_for(lambda s: s.tls_handshake_failures == 2)
    assert proxy.stats.requests_seen == 1


def test_minimum_version_enforced(certs: CertificateSet, make_proxy: MakeProxy) -> None:
    proxy = make_proxy(certs.server, minimum_version=ssl.TLSVersion.TLSv1_3)
    old = certs.ca.client_context()
    old.maximum_version = ssl.TLSVersion.TLSv1_2
    conn = https(proxy, old)
    with pytest.raises(ssl.SSLError):
        conn.connect()
    conn.close()
    conn = https(proxy, certs.ca.client_context())
    assert get(conn, "/json")[0] == 200
    assert conn.sock is not None and conn.sock.version() == "TLSv1.3"
    conn.close()


def test_faults_apply_through_tls(
    certs: CertificateSet, make_proxy: MakeProxy, upstream: Upstream
) -> None:
    proxy = make_proxy(certs.server)
    conn = https(proxy, certs.ca.client_context())
    proxy.set_fault(Fault.status(429, headers={"Retry-After": "1"}).times(1))
    conn.request("GET", "/a")
    resp = conn.getresponse()
    resp.read()
    assert (resp.status, resp.headers["Retry-After"]) == (429, "1")
    assert get(conn, "/b") == (
        200,
        json.dumps({"ok": True, "method": "GET", "path": "/b"}).encode(),
    )

    proxy.set_fault(Fault.truncate(after_bytes=200))
    conn.request("GET", "/bytes/5000")
    resp = conn.getresponse()
    with pytest.raises(http.client.IncompleteRead):
        resp.read()
    conn.close()

    proxy.set_fault(Fault.reset_after_request())
    conn = https(proxy, certs.ca.client_context())
    with pytest.raises((ConnectionResetError, ssl.SSLError, http.client.RemoteDisconnected)):
        get(conn, "/c")
    conn.close()
    assert upstream.recorder.paths() == ["/b", "/bytes/5000", "/c"]


def test_write_helpers_produce_loadable_files(certs: CertificateSet, tmp_path: Path) -> None:
    ca_path = certs.ca.write_cert(tmp_path / "ca.pem")
    files = certs.server.write(tmp_path / "server", stem="node")
    assert files.cert.read_text() == certs.server.cert_pem
    assert files.cert.read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert "PRIVATE KEY" in files.key.read_text()
    assert (os.stat(files.key).st_mode & 0o077) == 0
    ctx = ssl.create_default_context(cafile=str(ca_path))
    ctx.load_cert_chain(files.chain, files.key)  # key and cert belong together
    assert certs.ca.fingerprint == sha256_fingerprint(ca_path.read_text())
    assert certs.server.identities == ("127.0.0.1", "localhost")


def test_issued_certs_are_distinct_and_from_the_right_ca(certs: CertificateSet) -> None:
    leaves = [
        certs.server,
        certs.wrong_host,
        certs.expired,
        certs.not_yet_valid,
        certs.unknown_ca,
        certs.client,
        certs.client_unknown_ca,
    ]
    assert len({c.fingerprint for c in leaves}) == len(leaves)
    ca = CertAuthority()
    assert ca.cert_pem != certs.ca.cert_pem
    assert ca.trustme.cert_pem.bytes().decode() == ca.cert_pem


def test_tls_proxy_close_leaves_no_threads(certs: CertificateSet, upstream: Upstream) -> None:
    earlier = set(threading.enumerate())  # a session-scoped proxy of another suite is not ours
    with TLSProxy(upstream.url, certs.server) as proxy:
        conn = https(proxy, certs.ca.client_context())
        assert get(conn, "/json")[0] == 200
        # A client that connects and never says hello must not block close().
        silent = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
        proxy.wait_for(lambda s: s.connections_accepted == 2)
    assert not [
        t
        for t in threading.enumerate()
        if t.name.startswith("sturdysearch-proxy-") and t not in earlier
    ]
    assert silent.recv(10) == b""
    silent.close()
    conn.close()
