"""HTTP proxies, without I/O: which node goes through which proxy, and the CONNECT exchange.

A forward proxy is used in one of two ways (RFC 9110 section 9.3.6, RFC 9112 section 3.2.2):

* an ``https://`` node is reached through a **CONNECT tunnel**: the driver opens TCP to the
  proxy, writes :attr:`ProxyRoute.request` (``CONNECT host:port HTTP/1.1``), feeds the answer to
  a :class:`TunnelAnswer` and, on a 2xx, runs the TLS handshake with the *node* through the
  tunnel (SNI and certificate check against the node's name, not the proxy's). The proxy only
  ever sees encrypted bytes;
* an ``http://`` node is reached in **absolute-form**: requests go to the proxy with the full
  URL as their target (``GET http://host:port/path``) and ``Proxy-Authorization`` among the
  node's fixed headers; the proxy reads, and may log, all of it.

The decision is made per node URL (:meth:`ProxyConfig.route`), so nodes found by sniffing take
the same way as the seeds. Everything here is computed once per node; the drivers only connect,
write and read, within the same connect budget as a direct connection.

The proxy's password lives in a :class:`~sturdysearch._core.auth.Secret` and in the bytes handed
to the socket, never in a ``repr``, a log record or an error message.
"""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from sturdysearch._core.auth import Secret, check_secret_text
from sturdysearch._core.http1 import ProtocolViolation, ResponseHead, parse_head
from sturdysearch._core.nodes import NodeConfig, is_loopback_host
from sturdysearch.errors import ConfigError, ProxyAuthenticationError, ProxyError

#: The proxy's answer to CONNECT may not exceed this (status line and headers): a proxy that
#: sends endless headers, or something that is not a proxy at all, is cut off here.
MAX_TUNNEL_ANSWER = 16 * 1024
_HEAD_END = b"\r\n\r\n"
_URL_EXAMPLE = "http://proxy.example.com:3128"

#: Environment variables ``proxy_from_env=True`` reads, in order of precedence, per node scheme
#: (the lower-case spelling first, as curl, urllib and requests do).
ENV_PROXY_VARS: Mapping[str, tuple[str, ...]] = {
    "https": ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"),
    "http": ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"),
}
ENV_NO_PROXY_VARS = ("no_proxy", "NO_PROXY")


def _shown(text: str) -> str:
    """A proxy URL as an error message may show it: the userinfo, which ends at the *last*
    ``@`` before the host (a password may contain ``@``), replaced by ``***``. Whatever follows
    an ``@`` anywhere is the host part, so this holds even for URLs ``urlsplit`` misreads."""
    scheme, sep, rest = text.rpartition("://")
    if "@" in rest:
        rest = "***@" + rest.rsplit("@", 1)[1]
    return f"{scheme}{sep}{rest}"


@dataclass(frozen=True, slots=True, repr=False)
class ProxyEndpoint:
    """One proxy: where it listens and how the client authenticates to it."""

    host: str
    port: int
    username: str | None = None
    password: Secret | None = None
    source: str = "proxy="
    """Where the URL came from (``proxy=``, or the environment variable's name): error
    messages tell the user what to fix."""
    url: str = field(init=False, compare=False)
    """``http://host:port``, with ``user:***@`` when there are credentials: safe to show."""
    authorization: Secret | None = field(init=False, compare=False)
    """The ``Proxy-Authorization`` value (Basic), or ``None`` without credentials."""

    def __post_init__(self) -> None:
        host = f"[{self.host}]" if ":" in self.host else self.host
        user = f"{self.username}:***@" if self.username is not None else ""
        object.__setattr__(self, "url", f"http://{user}{host}:{self.port}")
        auth = None
        if self.username is not None:
            secret = self.password.reveal() if self.password is not None else ""
            token = base64.b64encode(f"{self.username}:{secret}".encode()).decode("ascii")
            auth = Secret(f"Basic {token}")
        object.__setattr__(self, "authorization", auth)

    @property
    def is_loopback(self) -> bool:
        """True when the proxy runs on this machine (traffic to it never leaves it)."""
        return is_loopback_host(self.host)

    def where(self) -> str:
        """What to fix, spelled for a message: ``proxy=`` or ``HTTPS_PROXY``."""
        if self.source == "proxy=":
            return "proxy="
        return f"{self.source} (read because proxy_from_env=True)"

    def __repr__(self) -> str:
        return f"ProxyEndpoint({self.url!r})"


def parse_proxy_url(
    value: object, *, source: str = "proxy=", from_env: bool = False
) -> ProxyEndpoint:
    """Parse ``http://[user:password@]host:port`` into a :class:`ProxyEndpoint`.

    The port is required: tools disagree on the default (curl assumes 1080, others 80), so it
    is never guessed. Only ``http://`` proxies: the TLS of an ``https://`` *node* runs end to
    end through the CONNECT tunnel either way. A value from the environment may leave out the
    scheme (``proxy.corp:3128``), as curl and requests allow there. Messages never echo the
    userinfo."""
    if not isinstance(value, str) or not value.strip():
        got = "an empty string" if isinstance(value, str) else type(value).__name__
        raise ConfigError(f"{source} must be a proxy URL such as {_URL_EXAMPLE!r}, got {got}")
    text = value.strip()
    if "://" not in text:
        if not from_env:
            raise ConfigError(
                f"{source} {_shown(text)!r} has no scheme: write 'http://{_shown(text)}'"
            )
        text = "http://" + text
    shown = _shown(text)
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme == "https":
        raise ConfigError(
            f"{source} {shown!r}: TLS to the proxy itself (https://) is not supported; use the "
            "proxy's plain http:// port (traffic to https:// nodes stays encrypted end to end "
            "through the CONNECT tunnel)"
        )
    if scheme.startswith("socks"):
        raise ConfigError(
            f"{source} {shown!r}: SOCKS proxies are not supported; give an HTTP proxy "
            f"({_URL_EXAMPLE})"
        )
    if scheme != "http":
        raise ConfigError(f"{source} {shown!r}: the scheme must be http://, not {scheme!r}")
    if "@" in text.partition("://")[2] and "@" not in parts.netloc:
        # e.g. a password containing '/', '?' or '#': urlsplit ends the host part there.
        raise ConfigError(
            f"{source} {shown!r}: the user or password contains '/', '?' or '#'; "
            "percent-encode them (urllib.parse.quote(password, safe=''))"
        )
    try:
        host = parts.hostname
        port = parts.port
    except ValueError:
        raise ConfigError(f"{source} {shown!r}: the port is not a number from 0 to 65535") from None
    if not host:
        raise ConfigError(f"{source} {shown!r} has no host")
    if port is None or port == 0:
        raise ConfigError(
            f"{source} {shown!r} has no port: write it out, e.g. {_URL_EXAMPLE} (the port is "
            "never guessed: tools disagree on the default)"
        )
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError(f"{source} {shown!r}: a proxy URL takes no path, query or fragment")
    username = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    if username is not None or password is not None:
        if not username:
            raise ConfigError(f"{source} {shown!r}: the proxy user name is empty")
        check_secret_text(f"{source} user name", username)
        if password is not None:
            check_secret_text(f"{source} password", password)
    return ProxyEndpoint(
        host=host,
        port=port,
        username=username,
        password=Secret(password) if password is not None else None,
        source=source,
    )


# -- bypass rules (no_proxy) ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BypassRule:
    """One ``no_proxy`` entry: every host (``*``), a domain and its subdomains, or an address
    range; optionally on one port only."""

    entry: str
    """The entry as normalised (lower case, no surrounding dots or ``*.``)."""
    domain: str | None = None
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
    port: int | None = None

    def matches(self, host: str, port: int) -> bool:
        """Whether a node at ``host:port`` bypasses the proxy. Host names are compared as
        written, never resolved: an address range matches nodes given by address only."""
        if self.port is not None and self.port != port:
            return False
        if self.domain is not None:
            return self.domain == "*" or host == self.domain or host.endswith("." + self.domain)
        assert self.network is not None
        try:
            return ipaddress.ip_address(host) in self.network
        except ValueError:
            return False


def _parse_port(text: str, entry: str, source: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ConfigError(
            f"{source} entry {entry!r}: the port after ':' must be a number from 1 to 65535"
        )
    return int(text)


def parse_bypass(entry: str, *, source: str = "no_proxy=") -> BypassRule | None:
    """Parse one ``no_proxy`` entry; ``None`` for an empty one.

    Accepted, as curl and requests do: ``*``; ``example.com``, ``.example.com`` and
    ``*.example.com`` (the domain and every host under it); IP addresses; CIDR ranges
    (``10.0.0.0/8``, ``fd00::/8``); each of these with ``:port`` (``[::1]:9200`` for IPv6)."""
    text = entry.strip().lower()
    if not text:
        return None
    if text == "*":
        return BypassRule("*", domain="*")
    port: int | None = None
    if text.startswith("["):
        host, close, rest = text[1:].partition("]")
        if not close or (rest and not rest.startswith(":")):
            raise ConfigError(f"{source} entry {entry!r}: write an IPv6 address as [::1]:9200")
        if rest:
            port = _parse_port(rest[1:], entry, source)
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        port = _parse_port(port_text, entry, source)
    else:
        host = text  # a name, an IPv4 address or range, or an IPv6 address or range
    suffix = f":{port}" if port is not None else ""
    if "/" in host:
        try:
            network = ipaddress.ip_network(host, strict=False)
        except ValueError:
            raise ConfigError(
                f"{source} entry {entry!r} is not an address range such as 10.0.0.0/8"
            ) from None
        return BypassRule(f"{network}{suffix}", network=network, port=port)
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return BypassRule(f"{address}{suffix}", network=ipaddress.ip_network(address), port=port)
    domain = host.removeprefix("*.").strip(".")
    if not domain or any(c in domain for c in " \t*/\\@"):
        raise ConfigError(f"{source} entry {entry!r} is not a host name, domain, address or range")
    return BypassRule(f"{domain}{suffix}", domain=domain, port=port)


def parse_bypass_list(entries: object, *, source: str = "no_proxy=") -> tuple[BypassRule, ...]:
    """A ``no_proxy`` list: a sequence of entries, or one comma-separated string."""
    if isinstance(entries, str):
        items: Iterable[object] = entries.split(",")
    elif isinstance(entries, Iterable):
        items = entries
    else:
        raise ConfigError(
            f"{source} must be a list of hosts such as ['localhost', '.internal.example.com', "
            f"'10.0.0.0/8'], got {type(entries).__name__}"
        )
    rules: list[BypassRule] = []
    for item in items:
        if not isinstance(item, str):
            raise ConfigError(f"{source} entries must be strings, got {type(item).__name__}")
        for part in item.split(","):
            rule = parse_bypass(part, source=source)
            if rule is not None and rule not in rules:
                rules.append(rule)
    return tuple(rules)


# -- the configuration and the per-node decision ------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProxyRoute:
    """How the connections to one node go through a proxy, computed once per node."""

    proxy: ProxyEndpoint
    tunnel: bool
    """CONNECT tunnel (an ``https://`` node) or absolute-form requests (an ``http://`` one)."""
    origin: str
    """What absolute-form request targets start with (``http://host:port``); ``""`` for a
    tunnel, whose requests keep their origin-form target."""
    request: bytes = field(repr=False)
    """The CONNECT request for a tunnel (``b""`` otherwise); it carries the credentials."""


@dataclass(frozen=True, slots=True)
class ProxyConfig:
    """The client's proxies, validated at construction. ``http`` serves ``http://`` nodes,
    ``https`` the ``https://`` ones (``proxy=`` sets both; the environment may set them apart);
    a node matching a ``no_proxy`` rule is connected to directly."""

    http: ProxyEndpoint | None = None
    https: ProxyEndpoint | None = None
    no_proxy: tuple[BypassRule, ...] = ()

    def __repr__(self) -> str:
        bypass = [rule.entry for rule in self.no_proxy]
        return f"ProxyConfig(http={self.http!r}, https={self.https!r}, no_proxy={bypass!r})"

    def endpoint_for(self, node: NodeConfig) -> ProxyEndpoint | None:
        """The proxy ``node``'s connections go through, or ``None``: directly."""
        endpoint = self.https if node.is_tls else self.http
        if endpoint is None:
            return None
        host = node.host.lower().rstrip(".")
        if any(rule.matches(host, node.port) for rule in self.no_proxy):
            return None
        return endpoint

    def route(self, node: NodeConfig, *, user_agent: str) -> ProxyRoute | None:
        """How ``node`` is reached, or ``None`` when directly."""
        endpoint = self.endpoint_for(node)
        if endpoint is None:
            return None
        if not node.is_tls:
            return ProxyRoute(
                endpoint, tunnel=False, origin=f"http://{node.host_header}", request=b""
            )
        return ProxyRoute(
            endpoint, tunnel=True, origin="", request=connect_request(node, endpoint, user_agent)
        )


def proxy_settings(
    proxy: str | None,
    *,
    proxy_from_env: bool,
    no_proxy: object,
    environ: Mapping[str, str] | None,
) -> ProxyConfig | None:
    """The ``proxy=``, ``proxy_from_env=`` and ``no_proxy=`` options as one
    :class:`ProxyConfig`, or ``None`` for direct connections. ``environ`` is the process
    environment the driver passes in, read only with ``proxy_from_env=True``."""
    if not isinstance(proxy_from_env, bool):
        raise ConfigError(
            f"proxy_from_env must be True or False, got {type(proxy_from_env).__name__}"
        )
    if proxy is not None and proxy_from_env:
        raise ConfigError(
            "give proxy= or proxy_from_env=True, not both: proxy= names the proxy, "
            "proxy_from_env=True reads it from HTTPS_PROXY / HTTP_PROXY / NO_PROXY"
        )
    if proxy is not None:
        endpoint = parse_proxy_url(proxy)
        rules = parse_bypass_list(no_proxy) if no_proxy is not None else ()
        return ProxyConfig(http=endpoint, https=endpoint, no_proxy=rules)
    if no_proxy is not None:
        raise ConfigError(
            "no_proxy= only applies with proxy=; with proxy_from_env=True the bypass list is "
            "read from NO_PROXY"
        )
    if proxy_from_env:
        return proxy_from_environ(environ or {})
    return None


def proxy_from_environ(environ: Mapping[str, str]) -> ProxyConfig | None:
    """The proxies the environment names, or ``None`` if it names none.

    Empty variables count as unset. Under CGI (``REQUEST_METHOD`` set) the upper-case
    ``HTTP_PROXY`` is ignored: there it comes from the request's ``Proxy:`` header ("httpoxy",
    CVE-2016-5385), as urllib ignores it too."""
    cgi = "REQUEST_METHOD" in environ
    endpoints: dict[str, ProxyEndpoint | None] = {}
    for scheme, names in ENV_PROXY_VARS.items():
        endpoints[scheme] = None
        for name in names:
            if cgi and name == "HTTP_PROXY":
                continue
            value = environ.get(name, "").strip()
            if value:
                endpoints[scheme] = parse_proxy_url(value, source=name, from_env=True)
                break
    if endpoints["http"] is None and endpoints["https"] is None:
        return None
    rules: tuple[BypassRule, ...] = ()
    for name in ENV_NO_PROXY_VARS:
        value = environ.get(name, "").strip()
        if value:
            rules = parse_bypass_list(value, source=name)
            break
    return ProxyConfig(http=endpoints["http"], https=endpoints["https"], no_proxy=rules)


# -- the CONNECT exchange ---------------------------------------------------------------------


def connect_request(node: NodeConfig, proxy: ProxyEndpoint, user_agent: str) -> bytes:
    """``CONNECT host:port HTTP/1.1`` for ``node``, with ``Host`` (required by RFC 9112) and
    ``Proxy-Authorization`` when the proxy URL has credentials. The port is always written
    (authority-form, RFC 9110 section 9.3.6), even the scheme's default one that the node's
    own ``Host`` header leaves out."""
    host = f"[{node.host}]" if ":" in node.host else node.host
    authority = f"{host}:{node.port}"
    lines = [
        f"CONNECT {authority} HTTP/1.1",
        f"Host: {authority}",
        f"User-Agent: {user_agent}",
    ]
    if proxy.authorization is not None:
        lines.append(f"Proxy-Authorization: {proxy.authorization.reveal()}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class TunnelAnswer:
    """The proxy's answer to CONNECT, fed as received: the status line and headers, up to the
    blank line, at most :data:`MAX_TUNNEL_ANSWER` bytes. A refusal's body (an error page) is
    never read: the connection is dropped. Bytes after the head of a 2xx are kept in
    ``leftover``: the node cannot have spoken yet (TLS starts with the client), so any are an
    error."""

    __slots__ = ("_buf", "head", "leftover")

    def __init__(self) -> None:
        self._buf = bytearray()
        self.head: ResponseHead | None = None
        self.leftover = b""

    @property
    def done(self) -> bool:
        return self.head is not None

    def feed(self, data: bytes) -> bool:
        """Add received bytes; ``True`` once the head is complete. Raises
        ``ProtocolViolation`` for an oversized or malformed answer."""
        if self.head is not None:
            self.leftover += data
            return True
        buf = self._buf
        scan_from = max(0, len(buf) - 3)
        buf += data
        end = buf.find(_HEAD_END, scan_from)
        if end < 0 and len(buf) <= MAX_TUNNEL_ANSWER:
            return False
        if end < 0 or end > MAX_TUNNEL_ANSWER:
            raise ProtocolViolation(
                f"its answer to CONNECT is longer than {MAX_TUNNEL_ANSWER} bytes without "
                "ending its head (is this port an HTTP proxy?)"
            )
        self.head = parse_head(bytes(buf[:end]))
        self.leftover = bytes(buf[end + len(_HEAD_END) :])
        self._buf = bytearray()
        return True

    def feed_eof(self) -> None:
        """The proxy closed the connection: always an error before the head is complete."""
        if self.head is None:
            what = "before answering" if not self._buf else "in the middle of its answer"
            raise ProtocolViolation(f"it closed the connection {what} to CONNECT")


def tunnel_violation(exc: ProtocolViolation, proxy: ProxyEndpoint, node: str) -> ProxyError:
    """The error for an answer to CONNECT that is not HTTP, too long, or cut short."""
    return ProxyError(f"the proxy {proxy.url} failed to open a tunnel: {exc}", node=node)


def tunnel_refused(answer: TunnelAnswer, proxy: ProxyEndpoint, node: str) -> ProxyError | None:
    """``None`` when the tunnel is open (a 2xx and nothing after it), else the error to raise:
    :class:`ProxyAuthenticationError` for a 407, :class:`ProxyError` naming the proxy's status
    and reason for anything else."""
    head = answer.head
    assert head is not None
    if 200 <= head.status < 300:
        if answer.leftover:
            return ProxyError(
                f"the proxy {proxy.url} sent {len(answer.leftover)} unexpected bytes after "
                f"opening the tunnel ({head.status} {head.reason})",
                node=node,
            )
        return None
    if head.status == 407:
        return proxy_auth_error(proxy, node)
    why = ""
    if head.status in (502, 503, 504):
        why = " (the proxy could not reach the node)"
    elif head.status == 403:
        why = " (the proxy's rules forbid CONNECT to this host or port)"
    return ProxyError(
        f"the proxy {proxy.url} refused to open a tunnel: {head.status} {head.reason}{why}",
        node=node,
        status=head.status,
    )


def proxy_auth_error(proxy: ProxyEndpoint, node: str) -> ProxyAuthenticationError:
    """The proxy answered 407 (to CONNECT, or to an absolute-form request)."""
    if proxy.authorization is None:
        advice = (
            f"the proxy {proxy.url} wants a user and password; put them in {proxy.where()} as "
            "http://user:password@host:port"
        )
    else:
        advice = (
            f"check the user and password in {proxy.where()} (the proxy {proxy.url} refused them)"
        )
    return ProxyAuthenticationError(
        f"proxy authentication required: {advice}", node=node, status=407
    )
