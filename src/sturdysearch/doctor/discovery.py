"""Discovery: are the addresses the nodes publish (``_nodes/http``) reachable from here?

Sniffing clients, and every client that follows the cluster's view of itself, connect to the
``http.publish_address`` of each node. Behind Docker, Kubernetes or a cloud NAT those are
internal addresses (``172.17.0.2:9200``, a pod IP) that answer only inside: the classic trap
where the seed URL works and everything after the first sniff times out. Each address gets a
short ``GET /`` from this host, with the seed's scheme (a TCP connect alone proves nothing:
NATs and proxies accept connections to any address).
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sturdysearch._core.config import ClientConfig
from sturdysearch._core.sniff import parse_publish_address
from sturdysearch.doctor.context import Context, nodes_of, refused
from sturdysearch.doctor.findings import Finding, ok, unknown
from sturdysearch.doctor.probe import parse_head
from sturdysearch.errors import SturdySearchError

CONNECT_DEADLINE = 2.0
MAX_ANSWER = 64 * 1024


@dataclass(frozen=True, slots=True)
class Published:
    name: str
    address: str
    url: str | None
    """The URL a sniffing client would use, or ``None`` when the address does not parse."""
    error: str | None = None


def published(body: Any, scheme: str) -> list[Published]:
    """The HTTP publish address of every node in a ``_nodes/http`` answer."""
    found: list[Published] = []
    for node_id, info in sorted(nodes_of(body).items()):
        name = str(info.get("name") or node_id)
        http = info.get("http")
        address = http.get("publish_address") if isinstance(http, Mapping) else None
        if not isinstance(address, str):
            found.append(Published(name, "", None, "no HTTP publish address (http disabled?)"))
            continue
        try:
            node = parse_publish_address(address, scheme=scheme)
        except SturdySearchError as exc:
            found.append(Published(name, address, None, str(exc)))
            continue
        found.append(Published(name, address, node.url))
    return found


def _answers_http(
    host: str, port: int, use_tls: bool, timeout: float, cluster_name: str | None = None
) -> str | None:
    """``None`` when ``host:port`` answers ``GET /`` as a node of this cluster within
    ``timeout``, else what went wrong. A TCP connect, or any HTTP answer, proves little:
    NATs, proxies and some networks accept connections to any address and answer with their
    own 404, so the answer must look like a node (see :func:`looks_like_node`). No
    credentials are sent; over TLS the certificate is not checked here (``tls.*`` judges the
    seeds' certificates)."""
    deadline = time.monotonic() + timeout
    try:
        sock: socket.socket = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        return "timed out" if isinstance(exc, socket.timeout) else (exc.strerror or str(exc))
    data = b""
    try:
        if use_tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False  # noqa: SSP101 (reachability only; nothing secret)
            context.verify_mode = ssl.CERT_NONE  # noqa: SSP101
            sock = context.wrap_socket(sock, server_hostname=host)
        request = f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n"
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        sock.sendall(request.encode())
        while len(data) < MAX_ANSWER:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = sock.recv(8192)
            if not chunk:
                break
            data += chunk
    except (OSError, ssl.SSLError) as exc:
        if not data:
            reason = "timed out" if isinstance(exc, socket.timeout) else str(exc)
            return f"no HTTP answer: {reason}"
    finally:
        sock.close()
    return looks_like_node(data, cluster_name)


def looks_like_node(data: bytes, cluster_name: str | None) -> str | None:
    """``None`` when a raw HTTP answer to ``GET /`` comes from an Elasticsearch/OpenSearch
    node (of ``cluster_name`` when the body says), else why not: the
    ``X-Elastic-Product`` header, a root document naming the cluster, or a 401 asking for
    credentials (a secured node) count as a node."""
    head, _, body = data.partition(b"\r\n\r\n")
    status, _ = parse_head(head + b"\r\n\r\n")
    if status is None:
        return "no HTTP answer (connection accepted, then nothing)"
    headers = {}
    for line in head.split(b"\r\n")[1:]:
        name, sep, value = line.partition(b":")
        if sep:
            headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
    try:
        document = json.loads(body) if body.strip().startswith(b"{") else None
    except ValueError:
        document = None
    named = document.get("cluster_name") if isinstance(document, dict) else None
    if named is not None:
        if cluster_name is None or named == cluster_name:
            return None
        return f"answers as a node of another cluster ({named})"
    if "x-elastic-product" in headers or (status == 401 and "www-authenticate" in headers):
        return None
    server = headers.get("server")
    return (
        f"something else answers there (HTTP {status}"
        + (f", server: {server[:40]}" if server else "")
        + "), not a node of this cluster"
    )


def check_publish(ctx: Context) -> list[Finding]:
    answer = ctx.get("/_nodes/http")
    if not answer.ok:
        return [refused("discovery.publish", answer, "_nodes/http")]
    scheme = ctx.config.nodes[0].scheme
    targets = published(answer.body, scheme)
    named = answer.body.get("cluster_name")
    cluster_name = named if isinstance(named, str) else None
    results: dict[int, str | None] = {}
    deadline = min(CONNECT_DEADLINE, ctx.options.timeout)

    def attempt(i: int, target: Published) -> None:
        node = parse_publish_address(target.address, scheme=scheme)
        results[i] = _answers_http(node.host, node.port, node.is_tls, deadline, cluster_name)

    threads = [
        threading.Thread(target=attempt, args=(i, t), daemon=True)
        for i, t in enumerate(targets)
        if t.url is not None
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(deadline + 1)
    checked = [
        Published(
            t.name, t.address, t.url, t.error if t.url is None else results.get(i, "no result")
        )
        for i, t in enumerate(targets)
    ]
    return judge_publish(checked, ctx.config)


def sniffing(config: ClientConfig) -> bool:
    sniff = config.sniff
    return sniff.on_start or sniff.interval is not None or sniff.on_node_failure


def judge_publish(targets: Sequence[Published], config: ClientConfig) -> list[Finding]:
    if not targets:
        return [unknown("discovery.publish", "_nodes/http listed no node")]
    sniffs = sniffing(config)
    findings: list[Finding] = []
    for target in targets:
        if target.error is None:
            continue
        findings.append(
            Finding(
                "discovery.publish",
                "fail" if sniffs else "warn",
                f"{target.name} publishes {target.address or 'nothing'}, not reachable from "
                f"here: {target.error}",
                "This is the address the node tells clients to use. Sniffing clients (this one"
                + (", which sniffs" if sniffs else " when sniffing is on")
                + ", Logstash, Beats, older clients by default) replace the seed URLs with it "
                "and then cannot connect: typical behind Docker, Kubernetes or NAT, where the "
                "published address is internal.",
                "Keep sniffing off and use the seed URLs (a load balancer or service name), "
                "or set http.publish_host on each node to an address clients can reach.",
                node=target.url,
            )
        )
    if not findings:
        listed = ", ".join(t.address for t in targets)
        findings.append(ok("discovery.publish", f"published addresses reachable: {listed}"))
    return findings
