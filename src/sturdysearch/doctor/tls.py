"""TLS and credentials in transit: verification on, chain, host name, expiry, pin, protocol
version, credentials over plain http or across a redirect.

Pure: judges the handshakes a :class:`~sturdysearch.doctor.probe.NodeProbe` recorded with the
client's own TLS settings, and the client's configuration. The certificate's expiry is read
from its DER bytes (a few lines of ASN.1, so no ``cryptography`` dependency), also when the
handshake was refused, because "it expired" is then the answer the operator needs.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from urllib.parse import urlsplit

from sturdysearch._core.config import ClientConfig
from sturdysearch._core.nodes import NodeConfig
from sturdysearch.doctor.findings import Finding, ok
from sturdysearch.doctor.probe import NodeProbe

EXPIRY_WARN_DAYS = 30
_CHAIN_CODES = frozenset({2, 18, 19, 20, 21, 27, 28})
"""OpenSSL X509_V_ERR_* codes that mean "not issued by a CA this client trusts"."""
_HOSTNAME_CODES = frozenset({62, 64})
_EXPIRED = 10
_NOT_YET_VALID = 9


class DerError(ValueError):
    """The bytes are not the certificate structure expected."""


def _tlv(data: bytes, pos: int) -> tuple[int, int, int]:
    """Tag, start and end of the DER element at ``pos``."""
    if pos + 2 > len(data):
        raise DerError("truncated")
    tag, length = data[pos], data[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        if not 0 < count <= 4 or pos + count > len(data):
            raise DerError("bad length")
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    if pos + length > len(data):
        raise DerError("truncated")
    return tag, pos, pos + length


def _time(tag: int, raw: bytes) -> datetime.datetime:
    text = raw.decode("ascii").rstrip("Z")
    if tag == 0x17:  # UTCTime YYMMDDHHMMSS: 50-99 are 19xx (RFC 5280 4.1.2.5.1)
        year = int(text[:2])
        text = f"{1900 + year if year >= 50 else 2000 + year}{text[2:]}"
    elif tag != 0x18:  # GeneralizedTime YYYYMMDDHHMMSS
        raise DerError(f"unexpected time tag {tag:#x}")
    parsed = datetime.datetime.strptime(text[:14], "%Y%m%d%H%M%S")
    return parsed.replace(tzinfo=datetime.timezone.utc)


def validity(der: bytes) -> tuple[datetime.datetime, datetime.datetime]:
    """``(notBefore, notAfter)`` of an X.509 certificate in DER."""
    try:
        _, start, _ = _tlv(der, 0)  # Certificate
        _, pos, _ = _tlv(der, start)  # tbsCertificate
        tag, _, end = _tlv(der, pos)
        if tag == 0xA0:  # [0] version
            pos = end
        for _ in range(3):  # serialNumber, signature, issuer
            _, _, pos = _tlv(der, pos)
        _, vpos, _ = _tlv(der, pos)  # validity
        tag1, s1, e1 = _tlv(der, vpos)
        tag2, s2, e2 = _tlv(der, e1)
        return _time(tag1, der[s1:e1]), _time(tag2, der[s2:e2])
    except (ValueError, UnicodeDecodeError) as exc:
        raise DerError(f"cannot read the certificate's validity: {exc}") from None


def judge_verification(config: ClientConfig) -> Finding:
    """Whether the client verifies certificates at all (once per client)."""
    tls = config.tls
    if not any(n.is_tls for n in config.nodes):
        return ok("tls.verify", "no https:// node: nothing to verify (see tls.plaintext)")
    if tls.dangerously_skip_tls_verify:
        return Finding(
            "tls.verify",
            "warn",
            "TLS VERIFICATION IS OFF (dangerously_skip_tls_verify=True)",
            "The client accepts any certificate: anyone on the network path can pose as the "
            "cluster, read every request (credentials included) and change the answers.",
            "Trust the cluster's CA with ca_certs= (e.g. Elasticsearch's http_ca.crt), or pin "
            "the server certificate with ssl_assert_fingerprint=, and drop "
            "dangerously_skip_tls_verify.",
        )
    if tls.ssl_assert_fingerprint is not None:
        return ok("tls.verify", "verified by pinning the server certificate (see tls.pin)")
    source = "ca_certs" if tls.ca_certs is not None else "the system trust store"
    return ok("tls.verify", f"certificates verified against {source}, host names checked")


def judge_node(probe: NodeProbe, config: ClientConfig, now: datetime.datetime) -> list[Finding]:
    """The TLS findings of one https node whose handshake got as far as a certificate."""
    node = probe.url
    if probe.tls and probe.legacy_version is not None:
        return [judge_version(probe.legacy_version, node)]
    if not probe.tls or (probe.cert_der is None and probe.verify_code is None):
        return []
    findings: list[Finding] = []
    code, message = probe.verify_code, probe.verify_message or ""
    pinned = config.tls.ssl_assert_fingerprint is not None
    skipped = config.tls.dangerously_skip_tls_verify
    if skipped:
        findings.append(
            ok("tls.chain", "not checked: verification is off (see tls.verify)", node=node)
        )
    elif pinned:
        findings.append(ok("tls.chain", "not checked: the pin replaces it (tls.pin)", node=node))
    elif code in _CHAIN_CODES:
        findings.append(
            Finding(
                "tls.chain",
                "fail",
                f"certificate not trusted: {message}",
                "The node's certificate was not issued by a CA this client trusts, so every "
                "connection is refused (the client never falls back to not verifying).",
                "Pass ca_certs= with the cluster's CA certificate (Elasticsearch: "
                "config/certs/http_ca.crt; OpenSearch: the root-ca.pem the certificates were "
                "made with), or pin the server certificate with ssl_assert_fingerprint=.",
                node=node,
            )
        )
    elif code is not None and code not in _HOSTNAME_CODES | {_EXPIRED, _NOT_YET_VALID}:
        findings.append(
            Finding(
                "tls.chain",
                "fail",
                f"certificate refused: {message} (OpenSSL error {code})",
                "The certificate chain did not verify.",
                "Check the certificate the node serves (`openssl s_client -connect HOST:PORT "
                "-showcerts`) against the CA given in ca_certs=.",
                node=node,
            )
        )
    else:
        findings.append(ok("tls.chain", "chain verified up to a trusted CA", node=node))
    if not skipped and not pinned:
        if code in _HOSTNAME_CODES:
            findings.append(
                Finding(
                    "tls.hostname",
                    "fail",
                    f"certificate is not for {probe.host}: {message}",
                    "The certificate is trusted but names other hosts, so the client refuses "
                    "it: this is what stops someone else's valid certificate being accepted.",
                    "Connect with a name the certificate lists (its subjectAltName), or re-issue "
                    f"the certificate with {probe.host} in it. Do not turn verification off.",
                    node=node,
                )
            )
        else:
            findings.append(ok("tls.hostname", f"certificate matches {probe.host}", node=node))
    findings.append(judge_expiry(probe.cert_der, code, node, now))
    if pinned:
        if probe.pin_error:
            findings.append(
                Finding(
                    "tls.pin",
                    "fail",
                    "the server certificate does not match ssl_assert_fingerprint",
                    probe.pin_error,
                    "If the certificate was rotated on purpose, pin the new one (`openssl "
                    "s_client -connect HOST:PORT | openssl x509 -noout -fingerprint -sha256`); "
                    "otherwise something intercepts the connection.",
                    node=node,
                )
            )
        else:
            findings.append(ok("tls.pin", "server certificate matches the pin", node=node))
    findings.append(judge_version(probe.tls_version, node))
    return findings


def judge_expiry(
    der: bytes | None, verify_code: int | None, node: str, now: datetime.datetime
) -> Finding:
    if der is None:
        if verify_code == _EXPIRED:
            return _expired("the certificate has expired", node)
        return Finding("tls.expiry", "unknown", "no certificate to read", node=node)
    try:
        not_before, not_after = validity(der)
    except ValueError as exc:
        return Finding("tls.expiry", "unknown", str(exc), node=node)
    days = (not_after - now).total_seconds() / 86400
    when = not_after.strftime("%Y-%m-%d")
    details = {"not_after": not_after.isoformat(), "days_left": round(days, 1)}
    if days < 0 or verify_code == _EXPIRED:
        return _expired(f"certificate expired on {when} ({-days:.0f} days ago)", node, details)
    if not_before > now or verify_code == _NOT_YET_VALID:
        return Finding(
            "tls.expiry",
            "fail",
            f"certificate not valid before {not_before:%Y-%m-%d %H:%M} UTC",
            "The certificate is not valid yet: the node's or this machine's clock is wrong, or "
            "a certificate was deployed early.",
            "Check both clocks (NTP); redeploy the previous certificate until this one is valid.",
            node=node,
            details=details,
        )
    if days < EXPIRY_WARN_DAYS:
        return Finding(
            "tls.expiry",
            "warn",
            f"certificate expires in {days:.0f} days ({when})",
            "When it expires every client refuses the node at once; renewals left to the last "
            "week tend to become outages.",
            "Renew the node certificates now and reload them (Elasticsearch reloads files in "
            "place; OpenSearch: _plugins/_security/api/ssl/http/reloadcerts).",
            node=node,
            details=details,
        )
    return ok(
        "tls.expiry", f"certificate valid until {when} ({days:.0f} days)", node=node, **details
    )


def _expired(summary: str, node: str, details: dict[str, object] | None = None) -> Finding:
    return Finding(
        "tls.expiry",
        "fail",
        summary,
        "An expired certificate is refused by every verifying client: the cluster is down for "
        "them although every node runs.",
        "Renew the node's certificate and reload it; check the node's and this machine's clocks "
        "too.",
        node=node,
        details=details or {},
    )


def judge_version(version: str | None, node: str) -> Finding:
    if version in ("TLSv1.3", "TLSv1.2"):
        return ok("tls.version", f"negotiated {version}", node=node)
    if version is None:
        return Finding("tls.version", "unknown", "no protocol negotiated", node=node)
    return Finding(
        "tls.version",
        "fail",
        f"the node offers only {version}",
        "TLS older than 1.2 has known attacks and is refused by the client: no connection "
        "to this node can be made.",
        "Enable TLS 1.2 or 1.3 on the node (xpack.security.http.ssl.supported_protocols / "
        "plugins.security.ssl.http.enabled_protocols).",
        node=node,
    )


def judge_plaintext(config: ClientConfig) -> list[Finding]:
    """Credentials, or any traffic, over ``http://`` to a host that is not this machine."""
    plain = [n for n in config.nodes if not n.is_tls]
    if not plain:
        return [ok("tls.plaintext", "every node is reached over https://")]
    credentials = config.auth is not None and not config.auth.signs
    return [_plaintext_node(node, credentials) for node in plain]


def _plaintext_node(node: NodeConfig, credentials: bool) -> Finding:
    if node.is_loopback:
        return ok("tls.plaintext", "plain http, but to this machine (loopback)", node=node.url)
    if credentials:
        return Finding(
            "tls.plaintext",
            "fail",
            "credentials are sent in clear over http://",
            "Anyone on the network path can read the password or API key from the "
            "Authorization header of every request, and reuse it.",
            "Use https:// with the cluster's CA (ca_certs=); allow_credentials_over_http=True "
            "is only for a trusted hop such as a sidecar on the same host.",
            node=node.url,
        )
    return Finding(
        "tls.plaintext",
        "warn",
        "traffic is not encrypted (http://)",
        "Documents and queries cross the network in clear; the cluster accepts requests "
        "without credentials, so anyone who reaches the port can read and write.",
        "Turn security on in the cluster (TLS and passwords) and connect with https://.",
        node=node.url,
    )


def judge_redirects(probes: Sequence[NodeProbe]) -> list[Finding]:
    """A node (or the load balancer in front of it) answering ``GET /`` with a redirect: the
    client does not follow redirects, and credentials must not be carried to another origin
    or downgraded to http."""
    findings: list[Finding] = []
    for probe in probes:
        if probe.status is None or probe.status not in (301, 302, 303, 307, 308):
            continue
        target = probe.location or "(no Location)"
        split = urlsplit(target)
        downgrade = probe.tls and split.scheme == "http"
        findings.append(
            Finding(
                "tls.redirect",
                "fail" if downgrade else "warn",
                f"GET / is redirected ({probe.status}) to {target}",
                "Something in front of the node (a load balancer or a proxy) redirects. The "
                "client does not follow redirects, so calls fail; a client that does would "
                "carry the Authorization header to the new origin"
                + (", here in clear over http://." if downgrade else "."),
                "Point the client at the final URL, or fix the redirect rule in front of the "
                "cluster (e.g. an http->https redirect means the URL should be https://).",
                node=probe.url,
            )
        )
    if not findings and any(p.answered for p in probes):
        findings.append(ok("tls.redirect", "no node redirects GET /"))
    return findings
