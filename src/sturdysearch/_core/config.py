"""The client's configuration, validated once at construction.

Every option has its default and its meaning beside it, here and nowhere else. A bad value fails
here, with a message that says how to fix it, rather than on the first request in production.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sturdysearch._core.auth import Auth, Secret
from sturdysearch._core.budget import BudgetConfig
from sturdysearch._core.health import HealthConfig
from sturdysearch._core.nodes import NodeConfig, parse_node
from sturdysearch._core.proxy import ProxyConfig, proxy_settings
from sturdysearch._core.timeouts import (
    DEFAULT_CONNECT,
    DEFAULT_READ,
    DEFAULT_TOTAL,
    Timeouts,
    check_seconds,
)
from sturdysearch.auth import from_options
from sturdysearch.errors import ConfigError
from sturdysearch.tls import TLSConfig

logger = logging.getLogger("sturdysearch")

DEFAULT_CONNECTIONS_PER_NODE = 16
USER_AGENT = "sturdysearch-py/0.1.0"


@dataclass(frozen=True, slots=True)
class PoolConfig:
    """Connection pool per node."""

    connections_per_node: int = DEFAULT_CONNECTIONS_PER_NODE
    """Most sockets open to one node at once; callers beyond it wait (within their deadline)."""
    idle_timeout: float = 30.0
    """Idle sockets older than this are closed rather than reused, before a load balancer or
    firewall drops them silently (they commonly do after 60 s or more)."""

    def __post_init__(self) -> None:
        if (
            isinstance(self.connections_per_node, bool)
            or not isinstance(self.connections_per_node, int)
            or not 1 <= self.connections_per_node <= 10_000
        ):
            raise ConfigError(
                f"connections_per_node={self.connections_per_node!r} must be an integer from 1 "
                "to 10000"
            )
        check_seconds("idle_timeout", self.idle_timeout)


@dataclass(frozen=True, slots=True)
class SniffConfig:
    """Node discovery. All off by default: sniffing behind a load balancer, Docker or
    Kubernetes finds addresses the client cannot reach, so it is opt-in."""

    on_start: bool = False
    """Sniff once, in the background, when the client starts."""
    interval: float | None = None
    """Seconds between background sniffs; ``None`` for never."""
    on_node_failure: bool = False
    """Sniff in the background after a node is ejected."""
    timeout: float = 5.0
    """Deadline of one ``GET _nodes/http``."""

    def __post_init__(self) -> None:
        if self.interval is not None:
            check_seconds("sniff_interval", self.interval)
        check_seconds("sniff_timeout", self.timeout)


@dataclass(frozen=True, slots=True)
class ClientConfig:
    nodes: tuple[NodeConfig, ...]
    timeouts: Timeouts = field(default_factory=Timeouts)
    tls: TLSConfig = field(default_factory=TLSConfig)
    pool: PoolConfig = field(default_factory=PoolConfig)
    auth: Auth | None = None
    """How the client authenticates (``sturdysearch.auth``); ``None``: anonymously."""
    headers: tuple[tuple[str, str], ...] = ()
    http_compress: bool = False
    allow_credentials_over_http: bool = False
    health: HealthConfig = field(default_factory=HealthConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    sniff: SniffConfig = field(default_factory=SniffConfig)
    hedge_after: float | None = None
    """Seconds after which an unanswered idempotent call is also sent to another node (never
    a ``long_running`` one: bulk requests and waits for tasks are slow by nature)."""
    proxy: ProxyConfig | None = None
    """The HTTP proxies nodes are reached through (``_core.proxy``); ``None``: directly."""

    @property
    def authorization(self) -> Secret | None:
        """The fixed ``Authorization`` value of a non-signing scheme."""
        return None if self.auth is None else self.auth.authorization()

    def __repr__(self) -> str:
        return (
            f"ClientConfig(nodes={[n.url for n in self.nodes]}, timeouts={self.timeouts}, "
            f"pool={self.pool}, auth={self.auth!r}, http_compress={self.http_compress}, "
            f"proxy={self.proxy!r})"
        )


def build_config(
    hosts: str | Sequence[str | NodeConfig] | None,
    *,
    auth: Auth | None = None,
    basic_auth: str | Sequence[str] | None = None,
    api_key: str | Sequence[str] | None = None,
    bearer_auth: str | None = None,
    cloud_id: str | None = None,
    tls: TLSConfig | None = None,
    ca_certs: str | None = None,
    ssl_assert_fingerprint: str | None = None,
    client_cert: str | None = None,
    client_key: str | None = None,
    dangerously_skip_tls_verify: bool = False,
    verify_certs: bool | None = None,
    timeouts: Timeouts | None = None,
    timeout: float = DEFAULT_TOTAL,
    connect_timeout: float = DEFAULT_CONNECT,
    read_timeout: float = DEFAULT_READ,
    connections_per_node: int = DEFAULT_CONNECTIONS_PER_NODE,
    idle_timeout: float = 30.0,
    headers: Mapping[str, str] | None = None,
    http_compress: bool = False,
    allow_credentials_over_http: bool = False,
    probe_timeout: float = 2.0,
    probe_backoff_base: float = 0.5,
    probe_backoff_cap: float = 60.0,
    retry_budget_ratio: float = 0.1,
    retry_budget_max_tokens: float = 10.0,
    sniff_on_start: bool = False,
    sniff_interval: float | None = None,
    sniff_on_node_failure: bool = False,
    sniff_timeout: float = 5.0,
    hedge_after: float | None = None,
    proxy: str | None = None,
    proxy_from_env: bool = False,
    no_proxy: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
    **unknown: Any,
) -> ClientConfig:
    """Validate the client's keyword options into a :class:`ClientConfig`, one concern per
    helper below; each raises :class:`ConfigError` saying how to fix what it refuses.

    ``environ`` is the process environment, read for ``proxy_from_env=True`` only: the clients
    pass ``os.environ`` (the core reads no process state of its own)."""
    check_unknown(unknown)
    if cloud_id is not None:
        if hosts is not None:
            raise ConfigError("give the node URLs or cloud_id=, not both")
        hosts = [cloud_id_url(cloud_id)]
    nodes, url_user = parse_hosts(hosts)
    proxies = proxy_settings(
        proxy, proxy_from_env=proxy_from_env, no_proxy=no_proxy, environ=environ
    )
    chosen = check_credentials(
        nodes,
        url_user,
        auth=auth,
        basic_auth=basic_auth,
        api_key=api_key,
        bearer_auth=bearer_auth,
        allow_credentials_over_http=allow_credentials_over_http,
        proxy=proxies,
    )
    return ClientConfig(
        nodes=nodes,
        timeouts=one_of(
            "timeouts",
            timeouts,
            lambda: Timeouts(connect=connect_timeout, read=read_timeout, total=timeout),
            timeout=(timeout, DEFAULT_TOTAL),
            connect_timeout=(connect_timeout, DEFAULT_CONNECT),
            read_timeout=(read_timeout, DEFAULT_READ),
        ),
        tls=tls_settings(
            tls,
            ca_certs=ca_certs,
            ssl_assert_fingerprint=ssl_assert_fingerprint,
            client_cert=client_cert,
            client_key=client_key,
            dangerously_skip_tls_verify=dangerously_skip_tls_verify,
            verify_certs=verify_certs,
        ),
        pool=PoolConfig(connections_per_node=connections_per_node, idle_timeout=idle_timeout),
        auth=chosen,
        headers=header_pairs(headers),
        http_compress=bool(http_compress),
        allow_credentials_over_http=allow_credentials_over_http,
        health=HealthConfig(
            probe_timeout=probe_timeout,
            probe_backoff_base=probe_backoff_base,
            probe_backoff_cap=probe_backoff_cap,
        ),
        budget=BudgetConfig(
            ratio=retry_budget_ratio,
            max_tokens=retry_budget_max_tokens,
            initial_tokens=retry_budget_max_tokens,
        ),
        sniff=SniffConfig(
            on_start=sniff_on_start,
            interval=sniff_interval,
            on_node_failure=sniff_on_node_failure,
            timeout=sniff_timeout,
        ),
        hedge_after=None if hedge_after is None else check_seconds("hedge_after", hedge_after),
        proxy=proxies,
    )


def check_unknown(unknown: Mapping[str, Any]) -> None:
    """Options the client does not have (the typed constructor catches most of them first)."""
    if not unknown:
        return
    names = ", ".join(sorted(unknown))
    hint = ""
    if "request_timeout" in unknown:
        hint = " (use timeout= for the per-call deadline, read_timeout= per socket read)"
    elif "ssl_context" in unknown:
        hint = " (use ca_certs=, ssl_assert_fingerprint=, client_cert=)"
    raise ConfigError(f"unknown option(s): {names}{hint}")


T = TypeVar("T")


def one_of(name: str, given: T | None, build: Callable[[], T], **keywords: tuple[Any, Any]) -> T:
    """A settings object given as ``name=`` or built from its keywords, not both: ``keywords``
    maps each keyword to ``(value, default)``; one that differs from its default next to the
    object is a ``ConfigError`` naming both spellings."""
    if given is None:
        return build()
    changed = [key for key, (value, default) in keywords.items() if value != default]
    if changed:
        spelled = ", ".join(f"{key}=" for key in changed)
        raise ConfigError(f"give {name}={type(given).__name__}(...) or {spelled}, not both")
    return given


def parse_hosts(
    hosts: str | Sequence[str | NodeConfig] | None,
) -> tuple[tuple[NodeConfig, ...], tuple[str, str] | None]:
    """The nodes, each once, and the credentials their URLs carry (the same in every URL)."""
    if hosts is None:
        raise ConfigError("give the cluster's node URLs, e.g. Client(['https://localhost:9200'])")
    host_list = [hosts] if isinstance(hosts, (str, NodeConfig)) else list(hosts)
    if not host_list:
        raise ConfigError("the list of nodes is empty")
    nodes: list[NodeConfig] = []
    url_user: tuple[str, str] | None = None
    for item in host_list:
        parsed = parse_node(item)
        if parsed.username is not None:
            pair = (parsed.username, parsed.password or "")
            if url_user is not None and url_user != pair:
                raise ConfigError("node URLs carry different credentials; use basic_auth= once")
            url_user = pair
        if parsed.node in nodes:
            raise ConfigError(f"node {parsed.node.url} is listed twice")
        nodes.append(parsed.node)
    return tuple(nodes), url_user


def check_credentials(
    nodes: Sequence[NodeConfig],
    url_user: tuple[str, str] | None,
    *,
    auth: Auth | None = None,
    basic_auth: str | Sequence[str] | None,
    api_key: str | Sequence[str] | None,
    bearer_auth: str | None,
    allow_credentials_over_http: bool,
    proxy: ProxyConfig | None = None,
) -> Auth | None:
    """The one way the client authenticates, refusing credentials that would travel in clear
    to a host that is not this machine (a loopback ``http://`` node reached through a proxy on
    another machine counts as remote: the request crosses the network to the proxy)."""
    if url_user is not None:
        if any(v is not None for v in (auth, basic_auth, api_key, bearer_auth)):
            raise ConfigError("credentials are given both in a node URL and as an option")
        basic_auth = url_user
    chosen = from_options(
        auth=auth, basic_auth=basic_auth, api_key=api_key, bearer_auth=bearer_auth
    )
    if chosen is not None and not chosen.signs and not allow_credentials_over_http:
        exposed = [n.url for n in nodes if not n.is_tls and not _stays_local(n, proxy)]
        if exposed:
            raise ConfigError(
                f"credentials would be sent in clear over http:// to {', '.join(exposed)}; use "
                "https:// URLs, or pass allow_credentials_over_http=True if the network is "
                "trusted (e.g. a sidecar)"
            )
    return chosen


def _stays_local(node: NodeConfig, proxy: ProxyConfig | None) -> bool:
    """Whether plain-http traffic to ``node`` never leaves this machine."""
    if not node.is_loopback:
        return False
    endpoint = proxy.endpoint_for(node) if proxy is not None else None
    return endpoint is None or endpoint.is_loopback


def cloud_id_url(cloud_id: str) -> str:
    """The Elasticsearch URL an Elastic Cloud id names.

    A cloud id is ``name:base64("host[:port]$es_uuid$kibana_uuid")``; the deployment answers at
    ``https://es_uuid.host:port``, port 443 unless the id says otherwise."""
    if not isinstance(cloud_id, str) or ":" not in cloud_id:
        raise ConfigError(
            "cloud_id must look like 'name:base64...' (copy it from the Cloud console)"
        )
    _, _, encoded = cloud_id.partition(":")
    try:
        decoded = base64.b64decode(encoded.encode("ascii"), validate=False).decode("utf-8")
    except (ValueError, UnicodeError):
        raise ConfigError("cloud_id is not valid: its part after ':' is not base64") from None
    parts = decoded.split("$")
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise ConfigError("cloud_id is not valid: it does not name a host and a deployment")
    host, _, port = parts[0].partition(":")
    es_uuid, _, es_port = parts[1].partition(":")
    port = es_port or port or "443"
    if not port.isdigit():
        raise ConfigError("cloud_id is not valid: its port is not a number")
    return f"https://{es_uuid}.{host}:{port}"


def tls_settings(
    tls: TLSConfig | None,
    *,
    ca_certs: str | None,
    ssl_assert_fingerprint: str | None,
    client_cert: str | None,
    client_key: str | None,
    dangerously_skip_tls_verify: bool,
    verify_certs: bool | None,
) -> TLSConfig:
    """``tls=TLSConfig(...)`` or the TLS keywords; ``verify_certs=False`` is refused with the
    safe ways to say what the caller meant."""
    if verify_certs is False:
        raise ConfigError(
            "verify_certs=False is not accepted: trust the cluster's CA with ca_certs=..., or pin "
            "its certificate with ssl_assert_fingerprint=...; if you really must accept any "
            "certificate, say so with dangerously_skip_tls_verify=True"
        )
    return one_of(
        "tls",
        tls,
        lambda: TLSConfig(
            ca_certs=ca_certs,
            ssl_assert_fingerprint=ssl_assert_fingerprint,
            client_cert=client_cert,
            client_key=client_key,
            dangerously_skip_tls_verify=dangerously_skip_tls_verify,
        ),
        ca_certs=(ca_certs, None),
        ssl_assert_fingerprint=(ssl_assert_fingerprint, None),
        client_cert=(client_cert, None),
        client_key=(client_key, None),
        dangerously_skip_tls_verify=(dangerously_skip_tls_verify, False),
    )


def header_pairs(headers: Mapping[str, str] | None) -> tuple[tuple[str, str], ...]:
    """The caller's extra headers, lower-cased (so that they replace the built-in ones of the
    same name, ``accept`` or ``user-agent``, instead of being sent beside them), refusing
    credentials, framing headers and line breaks."""
    pairs: list[tuple[str, str]] = []
    for name, value in (headers or {}).items():
        if name.lower() == "authorization":
            raise ConfigError(
                "pass credentials with auth= (sturdysearch.auth), basic_auth=, api_key= or "
                "bearer_auth=, not as a header"
            )
        if name.lower() == "proxy-authorization":
            raise ConfigError(
                "pass proxy credentials in the proxy URL: proxy='http://user:password@host:port'"
            )
        if name.lower() in ("host", "content-length", "transfer-encoding", "connection"):
            raise ConfigError(f"header {name!r} frames the request and is set by the client itself")
        if "\r" in name or "\n" in name or "\r" in value or "\n" in value:
            raise ConfigError(f"header {name!r} contains a line break")
        pairs.append((name.lower(), value))
    return tuple(pairs)
