"""TLS settings: verification always on, private CAs and pinning made easy.

* Default: the system trust store, hostname checked, TLS 1.2 or newer.
* ``ca_certs``: a private CA, as a file path or as PEM text (what you copy from ``http_ca.crt``).
* ``ssl_assert_fingerprint``: the SHA-256 fingerprint of the server certificate (hex, with or
  without colons). The pin replaces chain and hostname validation, as in the official clients,
  and is checked right after every handshake before a byte of the request is sent.
* ``client_cert`` / ``client_key``: mutual TLS.
* ``dangerously_skip_tls_verify=True`` is the only way to turn verification off; the client logs
  a warning that names the risk, once per client. ``verify_certs=False`` (elasticsearch-py's
  spelling) is refused with a message pointing here, so that migrated code does not silently keep
  an insecure setting.
"""

from __future__ import annotations

import hashlib
import os
import re
import ssl
from dataclasses import dataclass

from sturdysearch.errors import ConfigError, TLSError

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def normalize_fingerprint(value: str) -> str:
    """Return the fingerprint as 64 lower-case hex digits, accepting colons and any case."""
    text = value.strip()
    label_ok = True
    if "=" in text:
        # openssl prints "sha256 Fingerprint=AB:CD:..." (or "SHA256 Fingerprint=...").
        label, _, text = text.partition("=")
        label_ok = "sha256" in label.lower()
    cleaned = text.replace(":", "").replace(" ", "").lower()
    if cleaned.startswith("sha256"):
        cleaned = cleaned.removeprefix("sha256")
    if not label_ok or not _HEX64.match(cleaned):
        raise ConfigError(
            "ssl_assert_fingerprint must be a SHA-256 fingerprint: 64 hex digits, colons allowed "
            "(Elasticsearch prints it at set-up; or run `openssl x509 -noout -fingerprint -sha256 "
            "-in cert.pem`)"
        )
    return cleaned


@dataclass(frozen=True, slots=True)
class TLSConfig:
    """TLS options of a client; validated at construction."""

    ca_certs: str | None = None
    """Path to a PEM file or directory, or PEM text, of the CA(s) to trust instead of the
    system store."""
    ssl_assert_fingerprint: str | None = None
    """SHA-256 of the server certificate; normalized to lower-case hex."""
    client_cert: str | None = None
    """Client certificate (PEM path) for mutual TLS."""
    client_key: str | None = None
    """Key of ``client_cert`` (PEM path), if not in the same file."""
    dangerously_skip_tls_verify: bool = False
    """Accept any certificate. Anyone on the path can read and change the traffic."""

    def __post_init__(self) -> None:
        if self.ssl_assert_fingerprint is not None:
            object.__setattr__(
                self, "ssl_assert_fingerprint", normalize_fingerprint(self.ssl_assert_fingerprint)
            )
        if self.dangerously_skip_tls_verify and (self.ca_certs or self.ssl_assert_fingerprint):
            raise ConfigError(
                "dangerously_skip_tls_verify=True contradicts ca_certs/ssl_assert_fingerprint: "
                "drop dangerously_skip_tls_verify, the CA or pin is the safe way"
            )
        if (
            self.ca_certs is not None
            and not _is_pem(self.ca_certs)
            and not os.path.exists(self.ca_certs)
        ):
            raise ConfigError(
                f"ca_certs={self.ca_certs!r} is neither PEM text nor an existing file or directory"
            )
        if self.client_key and not self.client_cert:
            raise ConfigError("client_key given without client_cert")
        for name in ("client_cert", "client_key"):
            path = getattr(self, name)
            if path is not None and not os.path.isfile(path):
                raise ConfigError(f"{name}={path!r} is not a readable file")

    @property
    def verifies_chain(self) -> bool:
        return not self.dangerously_skip_tls_verify and self.ssl_assert_fingerprint is None


def _is_pem(text: str) -> bool:
    return "-----BEGIN " in text


def build_ssl_context(config: TLSConfig) -> ssl.SSLContext:
    """Build the client-side ``SSLContext`` for ``config`` (reads the CA and key files)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if config.verifies_chain:
        ctx.check_hostname = True
        ctx.verify_mode = ssl.CERT_REQUIRED
        try:
            if config.ca_certs is None:
                ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
            elif _is_pem(config.ca_certs):
                ctx.load_verify_locations(cadata=config.ca_certs)
            elif os.path.isdir(config.ca_certs):
                ctx.load_verify_locations(capath=config.ca_certs)
            else:
                ctx.load_verify_locations(cafile=config.ca_certs)
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError(f"could not load ca_certs: {exc}") from None
    else:
        ctx.check_hostname = False  # noqa: SSP101 (this is dangerously_skip_tls_verify)
        ctx.verify_mode = ssl.CERT_NONE  # noqa: SSP101
    if config.client_cert:
        try:
            ctx.load_cert_chain(config.client_cert, config.client_key)
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError(f"could not load client_cert/client_key: {exc}") from None
    return ctx


def check_fingerprint(der_cert: bytes | None, expected: str, node: str) -> None:
    """Raise ``TLSError`` unless the server certificate's SHA-256 equals the pin."""
    if der_cert is None:
        raise TLSError("the server presented no certificate to check the pin against", node=node)
    actual = hashlib.sha256(der_cert).hexdigest()
    if actual != expected:
        raise TLSError(
            f"certificate fingerprint mismatch: expected SHA-256 {_colons(expected)}, the server "
            f"presented {_colons(actual)}. If the certificate was rotated on purpose, update "
            "ssl_assert_fingerprint; otherwise something is intercepting the connection",
            node=node,
        )


def check_pin(tls_object: ssl.SSLSocket | ssl.SSLObject | None, expected: str, node: str) -> None:
    """Check the pin right after a handshake, on a socket or an asyncio ``SSLObject``.

    On a mismatch it looks at the rest of the chain the server sent: a pin equal to the CA's
    fingerprint (the one Elasticsearch prints at set-up) is refused with a message of its
    own, because a CA fingerprint alone proves nothing: anyone can send the public CA
    certificate along with a certificate of their own. The CA file (``ca_certs=``) is what
    verifies that the server's certificate was issued by it."""
    der = tls_object.getpeercert(binary_form=True) if tls_object is not None else None
    try:
        check_fingerprint(der, expected, node)
    except TLSError:
        if tls_object is not None and any(
            hashlib.sha256(cert).hexdigest() == expected
            for cert in _presented_chain(tls_object)[1:]
        ):
            raise TLSError(
                "ssl_assert_fingerprint is the fingerprint of the CA certificate in the chain "
                "(what Elasticsearch prints at set-up), not of the server's own certificate. A "
                "CA fingerprint alone would accept any certificate presented beside the public "
                "CA certificate, so it is not accepted as a pin: pass ca_certs= with that CA "
                "(e.g. http_ca.crt), which verifies the chain, or pin the server certificate "
                "(`openssl s_client -connect HOST:PORT | openssl x509 -noout -fingerprint "
                "-sha256`)",
                node=node,
            ) from None
        raise


def _presented_chain(tls_object: ssl.SSLSocket | ssl.SSLObject) -> list[bytes]:
    """The certificates the server sent, leaf first (DER); empty where this Python cannot
    tell (the accessor is private before 3.13)."""
    inner = getattr(tls_object, "_sslobj", None)
    getter = getattr(inner, "get_unverified_chain", None)
    if getter is None:
        return []
    try:
        chain = getter() or []
        return [cert.public_bytes(_ENCODING_DER) for cert in chain]
    except (AttributeError, ValueError, ssl.SSLError):
        return []


_ENCODING_DER = 2  # _ssl.ENCODING_DER


def _colons(hexdigest: str) -> str:
    return ":".join(hexdigest[i : i + 2] for i in range(0, len(hexdigest), 2)).upper()


# OpenSSL X509_V_ERR_* codes (include/openssl/x509_vfy.h) that deserve a specific hint.
_VERIFY_HINTS = {
    10: (
        "the server certificate has expired",
        "renew the node's certificate (check the node's and this machine's clocks too)",
    ),
    9: ("the server certificate is not yet valid", "check the clocks of the node and this machine"),
    18: (
        "the server certificate is self-signed and not trusted",
        "pass ca_certs= with it, or pin it with ssl_assert_fingerprint=",
    ),
    19: (
        "the certificate chain ends in a CA that is not trusted",
        "pass ca_certs= with the cluster's CA certificate (e.g. Elasticsearch's http_ca.crt)",
    ),
    20: (
        "the certificate was issued by an unknown CA",
        "pass ca_certs= with the cluster's CA certificate (e.g. Elasticsearch's http_ca.crt)",
    ),
    21: (
        "the certificate was issued by an unknown CA",
        "pass ca_certs= with the cluster's CA certificate (e.g. Elasticsearch's http_ca.crt)",
    ),
    62: (
        "the certificate was issued for another host name",
        "connect with a host name the certificate lists, or re-issue it with this name",
    ),
    64: (
        "the certificate was issued for another IP address",
        "connect with a name/IP the certificate lists, or re-issue it with this address",
    ),
}


def is_tls_alert(exc: ssl.SSLError) -> bool:
    """True for a TLS alert from the peer (a refused client certificate, say), false for a
    connection merely cut (EOF, zero return, syscall errors)."""
    return not isinstance(exc, (ssl.SSLEOFError, ssl.SSLZeroReturnError, ssl.SSLSyscallError))


def describe_tls_failure(exc: ssl.SSLError, node: str) -> TLSError:
    """Turn an ``ssl`` exception into a ``TLSError`` that says what failed and what to do."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        hint = _VERIFY_HINTS.get(exc.verify_code)
        if hint is not None:
            what, fix = hint
            message = f"TLS verification failed: {what} ({exc.verify_message}); {fix}"
        else:
            message = (
                f"TLS verification failed: {exc.verify_message or exc}; check the server "
                "certificate, or pass ca_certs= / ssl_assert_fingerprint="
            )
    else:
        reason = getattr(exc, "reason", None) or str(exc)
        if reason == "WRONG_VERSION_NUMBER":
            message = (
                "TLS handshake failed (WRONG_VERSION_NUMBER): the node probably speaks plain "
                "HTTP; use an http:// URL for it"
            )
        elif reason in ("TLSV1_ALERT_PROTOCOL_VERSION", "UNSUPPORTED_PROTOCOL"):
            message = (
                f"TLS handshake failed ({reason}): the server offers only TLS older than 1.2, "
                "which is refused; upgrade the server's TLS settings"
            )
        elif reason and "CERTIFICATE_REQUIRED" in str(reason):
            message = (
                "TLS handshake failed: the server requires a client certificate; pass "
                "client_cert= (and client_key=)"
            )
        else:
            message = f"TLS handshake failed: {reason}"
    err = TLSError(message, node=node)
    err.__cause__ = exc
    return err
