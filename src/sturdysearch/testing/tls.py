"""Certificates and a TLS-terminating proxy for testing how the client handles TLS.

The client's TLS checks (CA trust, host names, expiry, pinned fingerprints, client
certificates) can only be trusted if each is seen failing for the right reason, so this
module makes every bad certificate a one-liner. It builds on `trustme` (a dev dependency),
imported here and nowhere in the runtime library.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import ssl
import tempfile
import warnings
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import trustme
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from sturdysearch.testing.proxy import FaultProxy

__all__ = [
    "DEFAULT_HOSTS",
    "CertAuthority",
    "CertFiles",
    "CertificateSet",
    "Fingerprint",
    "IssuedCert",
    "TLSProxy",
    "server_context",
    "sha256_fingerprint",
]

DEFAULT_HOSTS: tuple[str, ...] = ("127.0.0.1", "localhost")
"""Names a proxy on 127.0.0.1 can be reached by; the default identities of server certs."""

WRONG_HOST = "wrong.example"


def _der_from(cert: bytes | str) -> bytes:
    """Accept DER bytes or PEM (text or bytes); only the first PEM block counts."""
    if isinstance(cert, str):
        cert = cert.encode("ascii")
    if cert.lstrip().startswith(b"-----BEGIN"):
        return x509.load_pem_x509_certificate(cert).public_bytes(Encoding.DER)
    return cert


@dataclass(frozen=True)
class Fingerprint:
    """A SHA-256 certificate fingerprint, in every spelling users paste into configs.

    Elasticsearch prints it as colon-separated hex, `openssl x509 -fingerprint` upper-case
    with colons, and most clients accept bare hex; tests must try them all.
    """

    digest: bytes

    @property
    def hex(self) -> str:
        """Lower-case hex without separators."""
        return self.digest.hex()

    def format(self, *, colons: bool = True, upper: bool = True) -> str:
        text = self.digest.hex(":") if colons else self.digest.hex()
        return text.upper() if upper else text

    @property
    def formats(self) -> tuple[str, ...]:
        """All four spellings: {with, without} colons x {upper, lower} case."""
        return tuple(
            self.format(colons=colons, upper=upper)
            for colons in (True, False)
            for upper in (True, False)
        )

    def __str__(self) -> str:
        return self.format()


def sha256_fingerprint(cert: bytes | str) -> Fingerprint:
    """The SHA-256 fingerprint of a certificate given as DER bytes or PEM."""
    return Fingerprint(hashlib.sha256(_der_from(cert)).digest())


@dataclass(frozen=True)
class CertFiles:
    """Paths written by `IssuedCert.write`."""

    cert: Path
    key: Path
    chain: Path


@dataclass(frozen=True)
class IssuedCert:
    """A leaf certificate with its key, as PEM text."""

    cert_pem: str
    """The leaf certificate alone."""
    key_pem: str
    chain_pem: str
    """The leaf followed by any intermediates (what a server presents)."""
    identities: tuple[str, ...]

    @classmethod
    def _from_trustme(cls, leaf: trustme.LeafCert, identities: tuple[str, ...]) -> IssuedCert:
        pems = [blob.bytes().decode("ascii") for blob in leaf.cert_chain_pems]
        return cls(
            cert_pem=pems[0],
            key_pem=leaf.private_key_pem.bytes().decode("ascii"),
            chain_pem="".join(pems),
            identities=identities,
        )

    @cached_property
    def der(self) -> bytes:
        return _der_from(self.cert_pem)

    @property
    def fingerprint(self) -> Fingerprint:
        """SHA-256 of the leaf's DER encoding, which is what `ssl` shows a client."""
        return sha256_fingerprint(self.der)

    def write(self, directory: str | os.PathLike[str], stem: str = "cert") -> CertFiles:
        """Write `<stem>.pem`, `<stem>.key` and `<stem>-chain.pem` for path-only APIs."""
        base = Path(directory)
        base.mkdir(parents=True, exist_ok=True)
        files = CertFiles(
            cert=base / f"{stem}.pem", key=base / f"{stem}.key", chain=base / f"{stem}-chain.pem"
        )
        files.cert.write_text(self.cert_pem, encoding="ascii")
        files.chain.write_text(self.chain_pem, encoding="ascii")
        files.key.write_text(self.key_pem, encoding="ascii")
        files.key.chmod(0o600)
        return files

    def load_into(self, ctx: ssl.SSLContext) -> None:
        """Present this certificate from `ctx` (server, or client for mutual TLS).

        `ssl` only loads keys from files, so they go through a private temporary directory.
        """
        with tempfile.TemporaryDirectory(prefix="sturdysearch-tls-") as tmp:
            files = self.write(tmp)
            ctx.load_cert_chain(files.chain, files.key)


class CertAuthority:
    """A throw-away certificate authority for one test session."""

    def __init__(self, *, name: str = "sturdysearch test CA") -> None:
        self._ca = trustme.CA(organization_name=name)

    @property
    def trustme(self) -> trustme.CA:
        """The underlying `trustme.CA`, for anything this wrapper does not cover."""
        return self._ca

    @property
    def cert_pem(self) -> str:
        return self._ca.cert_pem.bytes().decode("ascii")

    @property
    def fingerprint(self) -> Fingerprint:
        return sha256_fingerprint(self.cert_pem)

    def write_cert(self, path: str | os.PathLike[str]) -> Path:
        """Write the CA certificate (what clients put in `ca_certs`); returns the path."""
        target = Path(path)
        target.write_text(self.cert_pem, encoding="ascii")
        return target

    def issue(
        self,
        *identities: str,
        common_name: str | None = None,
        not_before: datetime.datetime | None = None,
        not_after: datetime.datetime | None = None,
    ) -> IssuedCert:
        """Issue a leaf for `identities` (host names, IPs), valid for servers and clients."""
        leaf = self._ca.issue_cert(
            *identities, common_name=common_name, not_before=not_before, not_after=not_after
        )
        return IssuedCert._from_trustme(leaf, identities)

    def server_cert(self, *hosts: str) -> IssuedCert:
        """A valid server certificate, for 127.0.0.1 and localhost unless told otherwise."""
        return self.issue(*(hosts or DEFAULT_HOSTS))

    def wrong_host_cert(self, host: str = WRONG_HOST) -> IssuedCert:
        """Trusted and in date, but for a name the client does not connect to."""
        return self.issue(host)

    def expired_cert(self, *hosts: str) -> IssuedCert:
        """Right names, trusted CA, but expired yesterday."""
        now = datetime.datetime.now(datetime.timezone.utc)
        return self.issue(
            *(hosts or DEFAULT_HOSTS),
            not_before=now - datetime.timedelta(days=30),
            not_after=now - datetime.timedelta(days=1),
        )

    def not_yet_valid_cert(self, *hosts: str) -> IssuedCert:
        """Right names, trusted CA, but valid only from tomorrow (a skewed clock's view)."""
        now = datetime.datetime.now(datetime.timezone.utc)
        return self.issue(
            *(hosts or DEFAULT_HOSTS),
            not_before=now + datetime.timedelta(days=1),
            not_after=now + datetime.timedelta(days=30),
        )

    def client_cert(self, name: str = "sturdysearch-test-client") -> IssuedCert:
        """A certificate for the client side of mutual TLS."""
        return self.issue(name, common_name=name)

    def trust(self, ctx: ssl.SSLContext) -> None:
        """Make `ctx` trust certificates issued by this CA."""
        ctx.load_verify_locations(cadata=self.cert_pem)

    def client_context(self, *, client_cert: IssuedCert | None = None) -> ssl.SSLContext:
        """A fully verifying client context (host names included) that trusts this CA."""
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cadata=self.cert_pem)
        if client_cert is not None:
            client_cert.load_into(ctx)
        return ctx


@dataclass(frozen=True)
class CertificateSet:
    """Every certificate a TLS test usually needs, from one trusted and one unknown CA."""

    ca: CertAuthority
    server: IssuedCert
    wrong_host: IssuedCert
    expired: IssuedCert
    not_yet_valid: IssuedCert
    other_ca: CertAuthority
    unknown_ca: IssuedCert
    """Right names and dates, signed by `other_ca`, which clients do not trust."""
    client: IssuedCert
    client_unknown_ca: IssuedCert

    @classmethod
    def create(cls, *hosts: str) -> CertificateSet:
        hosts = hosts or DEFAULT_HOSTS
        ca = CertAuthority()
        other = CertAuthority(name="sturdysearch unknown CA")
        return cls(
            ca=ca,
            server=ca.server_cert(*hosts),
            wrong_host=ca.wrong_host_cert(),
            expired=ca.expired_cert(*hosts),
            not_yet_valid=ca.not_yet_valid_cert(*hosts),
            other_ca=other,
            unknown_ca=other.server_cert(*hosts),
            client=ca.client_cert(),
            client_unknown_ca=other.client_cert(),
        )


def server_context(
    cert: IssuedCert,
    *,
    client_ca: CertAuthority | None = None,
    minimum_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2,
    maximum_version: ssl.TLSVersion | None = None,
) -> ssl.SSLContext:
    """A server-side context presenting `cert`, requiring a client cert if `client_ca`.

    `maximum_version` below TLS 1.2 makes a server of the old kind: it also lowers the
    minimum and OpenSSL's security level, which otherwise forbids TLS 1.0/1.1."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = minimum_version
    if maximum_version is not None:
        if maximum_version < ssl.TLSVersion.TLSv1_2:
            ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        with warnings.catch_warnings():  # the old protocols are the point here
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.maximum_version = maximum_version
    cert.load_into(ctx)
    if client_ca is not None:
        ctx.verify_mode = ssl.CERT_REQUIRED
        client_ca.trust(ctx)
    return ctx


class TLSProxy(FaultProxy):
    """A `FaultProxy` that speaks TLS to its clients and plain HTTP to the upstream.

    Faults apply as usual, after the handshake, so a test can combine e.g. a pinned
    fingerprint with a mid-response reset. `maximum_version` (e.g. ``TLSv1_1``) makes a node
    that offers only old protocols.
    """

    def __init__(
        self,
        upstream: str | tuple[str, int],
        cert: IssuedCert,
        *,
        client_ca: CertAuthority | None = None,
        minimum_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2,
        maximum_version: ssl.TLSVersion | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        upstream_ssl_context: ssl.SSLContext | None = None,
        connect_timeout: float = 5.0,
        join_timeout: float = 5.0,
    ) -> None:
        super().__init__(
            upstream,
            host=host,
            port=port,
            tls_context=server_context(
                cert,
                client_ca=client_ca,
                minimum_version=minimum_version,
                maximum_version=maximum_version,
            ),
            upstream_ssl_context=upstream_ssl_context,
            connect_timeout=connect_timeout,
            join_timeout=join_timeout,
        )
        self.cert = cert
