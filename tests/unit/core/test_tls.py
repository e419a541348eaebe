"""The pure parts of ``sturdysearch.tls``: fingerprints, option validation, failure wording."""

from __future__ import annotations

import hashlib
import ssl
from pathlib import Path

import pytest

from sturdysearch.errors import ConfigError, TLSError
from sturdysearch.tls import (
    TLSConfig,
    check_fingerprint,
    describe_tls_failure,
    normalize_fingerprint,
)

NODE = "https://es1:9200"
DER = b"0\x82\x01\x0afake certificate bytes"
HEX = hashlib.sha256(DER).hexdigest()
COLONS = ":".join(HEX[i : i + 2] for i in range(0, 64, 2)).upper()
PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


@pytest.mark.parametrize(
    "value",
    [
        HEX,
        HEX.upper(),
        COLONS,
        COLONS.lower(),
        f"  {COLONS}  ",
        COLONS.replace(":", " "),
        f"sha256:{HEX}",
        f"SHA256={COLONS}",
        f"sha256={HEX}",
    ],
)
def test_normalize_fingerprint(value: str) -> None:
    assert normalize_fingerprint(value) == HEX


@pytest.mark.parametrize(
    "value",
    [
        "",
        HEX[:-1],
        HEX + "0",
        HEX[:-1] + "g",
        hashlib.sha1(DER).hexdigest(),
        f"sha1={hashlib.sha1(DER).hexdigest()}",
        "not a fingerprint",
    ],
)
def test_bad_fingerprint(value: str) -> None:
    with pytest.raises(ConfigError) as info:
        normalize_fingerprint(value)
    assert "64 hex digits" in str(info.value)
    assert "openssl x509" in str(info.value)


@pytest.mark.parametrize("prefix", ["sha256 Fingerprint=", "SHA256 Fingerprint="])
def test_openssl_output_accepted(prefix: str) -> None:
    assert normalize_fingerprint(prefix + COLONS) == HEX


# -- TLSConfig ---------------------------------------------------------------------------------


def test_defaults_verify() -> None:
    config = TLSConfig()
    assert config.verifies_chain
    assert not config.dangerously_skip_tls_verify


def test_fingerprint_normalized_and_replaces_chain_check() -> None:
    config = TLSConfig(ssl_assert_fingerprint=COLONS)
    assert config.ssl_assert_fingerprint == HEX
    assert not config.verifies_chain


def test_bad_fingerprint_option() -> None:
    with pytest.raises(ConfigError, match="ssl_assert_fingerprint"):
        TLSConfig(ssl_assert_fingerprint="abc")


def test_skip_verify() -> None:
    config = TLSConfig(dangerously_skip_tls_verify=True)  # noqa: SSP101
    assert not config.verifies_chain


@pytest.mark.parametrize("kwargs", [{"ca_certs": PEM}, {"ssl_assert_fingerprint": HEX}])
def test_skip_verify_contradicts_ca_or_pin(kwargs: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="contradicts"):
        TLSConfig(dangerously_skip_tls_verify=True, **kwargs)  # noqa: SSP101


def test_ca_certs_pem_text_file_and_dir(tmp_path: Path) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_text(PEM)
    assert TLSConfig(ca_certs=PEM).ca_certs == PEM
    assert TLSConfig(ca_certs=str(ca)).ca_certs == str(ca)
    assert TLSConfig(ca_certs=str(tmp_path)).ca_certs == str(tmp_path)


def test_ca_certs_missing(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.crt")
    with pytest.raises(ConfigError, match="neither PEM text nor an existing file"):
        TLSConfig(ca_certs=missing)


def test_client_cert_and_key(tmp_path: Path) -> None:
    cert = tmp_path / "c.pem"
    key = tmp_path / "k.pem"
    cert.write_text("x")
    key.write_text("y")
    config = TLSConfig(client_cert=str(cert), client_key=str(key))
    assert (config.client_cert, config.client_key) == (str(cert), str(key))
    with pytest.raises(ConfigError, match="client_key given without client_cert"):
        TLSConfig(client_key=str(key))
    with pytest.raises(ConfigError, match=r"client_cert=.* is not a readable file"):
        TLSConfig(client_cert=str(tmp_path / "missing.pem"))
    with pytest.raises(ConfigError, match=r"client_key=.* is not a readable file"):
        TLSConfig(client_cert=str(cert), client_key=str(tmp_path / "missing.pem"))
    with pytest.raises(ConfigError, match=r"client_cert=.* is not a readable file"):
        TLSConfig(client_cert=str(tmp_path))  # a directory


# -- check_fingerprint -------------------------------------------------------------------------


def test_check_fingerprint_match() -> None:
    check_fingerprint(DER, HEX, NODE)  # no exception


def test_check_fingerprint_mismatch() -> None:
    other = hashlib.sha256(b"other").hexdigest()
    with pytest.raises(TLSError) as info:
        check_fingerprint(DER, other, NODE)
    msg = str(info.value)
    assert "fingerprint mismatch" in msg
    assert ":".join(other[i : i + 2] for i in range(0, 64, 2)).upper() in msg
    assert COLONS in msg
    assert msg.endswith(f"(node {NODE})")
    assert info.value.request_sent is False


def test_check_fingerprint_no_certificate() -> None:
    with pytest.raises(TLSError, match="no certificate"):
        check_fingerprint(None, HEX, NODE)


# -- describe_tls_failure ----------------------------------------------------------------------


def verify_error(code: int, message: str) -> ssl.SSLCertVerificationError:
    exc = ssl.SSLCertVerificationError(1, f"[SSL: CERTIFICATE_VERIFY_FAILED] {message}")
    exc.verify_code = code
    exc.verify_message = message
    return exc


def ssl_error(reason: str | None, text: str = "handshake failure") -> ssl.SSLError:
    exc = ssl.SSLError(1, text)
    exc.reason = reason  # type: ignore[misc]
    return exc


@pytest.mark.parametrize(
    ("code", "message", "what", "fix"),
    [
        (10, "certificate has expired", "has expired", "renew"),
        (9, "certificate is not yet valid", "not yet valid", "clocks"),
        (18, "self-signed certificate", "self-signed", "ssl_assert_fingerprint="),
        (19, "self-signed certificate in certificate chain", "not trusted", "ca_certs="),
        (20, "unable to get local issuer certificate", "unknown CA", "http_ca.crt"),
        (21, "unable to verify the first certificate", "unknown CA", "ca_certs="),
        (62, "Hostname mismatch", "another host name", "re-issue"),
        (64, "IP address mismatch", "another IP address", "re-issue"),
    ],
)
def test_verify_failures_with_hints(code: int, message: str, what: str, fix: str) -> None:
    exc = verify_error(code, message)
    err = describe_tls_failure(exc, NODE)
    assert isinstance(err, TLSError)
    text = str(err)
    assert text.startswith("TLS verification failed: ")
    assert what in text
    assert fix in text
    assert f"({message})" in text
    assert err.node == NODE
    assert err.__cause__ is exc


def test_verify_failure_without_hint() -> None:
    err = describe_tls_failure(verify_error(23, "certificate revoked"), NODE)
    assert "certificate revoked" in str(err)
    assert "ca_certs= / ssl_assert_fingerprint=" in str(err)


def test_verify_failure_without_message() -> None:
    exc = verify_error(99, "")
    err = describe_tls_failure(exc, NODE)
    assert "TLS verification failed: " in str(err)
    assert "CERTIFICATE_VERIFY_FAILED" in str(err)


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("WRONG_VERSION_NUMBER", "use an http:// URL"),
        ("TLSV1_ALERT_PROTOCOL_VERSION", "older than 1.2"),
        ("UNSUPPORTED_PROTOCOL", "older than 1.2"),
        ("TLSV13_ALERT_CERTIFICATE_REQUIRED", "client_cert="),
        ("SSLV3_ALERT_CERTIFICATE_REQUIRED", "client_cert="),
        ("SSLV3_ALERT_HANDSHAKE_FAILURE", "TLS handshake failed: SSLV3_ALERT_HANDSHAKE_FAILURE"),
    ],
)
def test_handshake_failures(reason: str, expected: str) -> None:
    exc = ssl_error(reason)
    err = describe_tls_failure(exc, NODE)
    assert expected in str(err)
    assert err.__cause__ is exc
    assert str(err).endswith(f"(node {NODE})")


def test_handshake_failure_without_reason() -> None:
    err = describe_tls_failure(ssl_error(None, "EOF occurred in violation of protocol"), NODE)
    assert "TLS handshake failed: " in str(err)
    assert "EOF occurred" in str(err)


def test_ssl_eof_error_subclass() -> None:
    exc = ssl.SSLEOFError(8, "EOF occurred in violation of protocol")
    err = describe_tls_failure(exc, NODE)
    assert str(err).startswith("TLS handshake failed")
