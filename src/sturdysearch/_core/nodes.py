"""Node addresses: parsing, validation and redaction.

A node is given as a URL (``https://es1.internal:9200``, ``http://127.0.0.1:9200/prefix``). The
scheme is required: guessing ``http`` for a cluster that speaks TLS, or the reverse, is how
credentials end up on the wire in clear. Credentials embedded in a URL are moved out of it, so
that the URL can be logged.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from sturdysearch.errors import ConfigError

_DEFAULT_PORTS = {"http": 9200, "https": 9200}
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def is_loopback_host(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and the names of localhost: a host on this machine."""
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """One node's address. ``url`` never contains credentials."""

    scheme: str
    host: str
    port: int
    path_prefix: str = ""
    url: str = field(init=False, repr=False, compare=False)
    """``scheme://host:port/prefix``, computed once: it is on every request's path."""

    def __post_init__(self) -> None:
        host = f"[{self.host}]" if ":" in self.host else self.host
        object.__setattr__(self, "url", f"{self.scheme}://{host}:{self.port}{self.path_prefix}")

    @property
    def is_tls(self) -> bool:
        return self.scheme == "https"

    @property
    def is_loopback(self) -> bool:
        """True for 127.0.0.0/8, ::1 and localhost: traffic that never leaves the machine."""
        return is_loopback_host(self.host)

    @property
    def host_header(self) -> str:
        """``host:port``, without the port when it is the scheme's default (RFC 9110 7.2), as
        browsers, curl and botocore send it: an AWS SigV4 signature covers the Host header,
        and AWS's endpoints expect ``search-x.es.amazonaws.com``, not ``...:443``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        if (self.scheme, self.port) in (("https", 443), ("http", 80)):
            return host
        return f"{host}:{self.port}"

    def __str__(self) -> str:
        return self.url


@dataclass(frozen=True, slots=True)
class ParsedNode:
    node: NodeConfig
    username: str | None
    password: str | None


def parse_node(value: object) -> ParsedNode:
    """Parse one node URL; raise ``ConfigError`` that says how to write it correctly."""
    if isinstance(value, NodeConfig):
        return ParsedNode(value, None, None)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(
            f"a node must be a URL string such as 'https://localhost:9200', got {value!r}"
        )
    text = value.strip()
    if "://" not in text:
        shown = _redact("//" + text)[2:]
        raise ConfigError(
            f"node {shown!r} has no scheme: write 'https://{shown}' (or 'http://{shown}' for a "
            "cluster without TLS); the scheme is never guessed"
        )
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ConfigError(f"node {_redact(text)!r}: scheme must be http or https, not {scheme!r}")
    host = parts.hostname
    if not host:
        raise ConfigError(f"node {_redact(text)!r} has no host")
    try:
        port = parts.port or _DEFAULT_PORTS[scheme]
    except ValueError as exc:
        raise ConfigError(f"node {_redact(text)!r}: {exc}") from None
    if parts.query or parts.fragment:
        raise ConfigError(f"node {_redact(text)!r}: a node URL takes no query or fragment")
    prefix = parts.path.rstrip("/")
    if prefix and not prefix.startswith("/"):
        prefix = "/" + prefix
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    return ParsedNode(NodeConfig(scheme, host, port, prefix), username, password)


def _redact(text: str) -> str:
    """Drop the userinfo part of a URL so it can appear in an error message. The userinfo ends
    at the *last* ``@`` of the authority: a password may contain ``@`` too."""
    scheme, sep, rest = text.partition("//")
    authority, slash, path = rest.partition("/")
    if "@" in authority:
        authority = "***@" + authority.rsplit("@", 1)[1]
    return scheme + sep + authority + slash + path
