"""Reach, per node: DNS, TCP connect, TLS handshake, first byte, latency percentiles.

Judged against the client's own timeouts: a connect that takes more than half of
``connect_timeout`` fails now and then under load, and a first byte slower than half of
``read_timeout`` turns into read timeouts on busier calls. Pure: it reads a
:class:`~sturdysearch.doctor.probe.NodeProbe`.

For a node reached through an HTTP proxy, DNS and TCP are those of the proxy, the ``CONNECT``
tunnel (an ``https://`` node) is part of ``reach.tcp``, and every time includes the hop
through the proxy: each summary says so ("via proxy http://...") and ``details.proxy`` names it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from sturdysearch._core.timeouts import Timeouts
from sturdysearch.doctor.findings import Finding, ok
from sturdysearch.doctor.probe import NodeProbe

SLOW_DNS = 1.0
"""Seconds: every new connection pays the resolver, so a slow one is felt on reconnects."""
SLOW_LATENCY = 1.0
"""Seconds of p95 for ``GET /``, which does no work: beyond this the node or the path is sick."""


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (``fraction`` 0..1) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def _via(probe: NodeProbe) -> str:
    return f" via proxy {probe.proxy}" if probe.proxy else ""


def _through(finding: Finding, probe: NodeProbe) -> Finding:
    """``finding`` marked as measured through the probe's proxy (summary and details)."""
    if not probe.proxy:
        return finding
    return Finding(
        finding.id,
        finding.status,
        finding.summary + _via(probe),
        finding.meaning,
        finding.fix,
        node=finding.node,
        details={**finding.details, "proxy": probe.proxy},
    )


def judge(probe: NodeProbe, timeouts: Timeouts) -> list[Finding]:
    """The reach findings of one node, in the order the steps happen; a failed step ends the
    list (what follows it could not be measured)."""
    return [_through(f, probe) for f in _judge(probe, timeouts)]


def _judge(probe: NodeProbe, timeouts: Timeouts) -> list[Finding]:
    node = probe.url
    host = probe.dial_host
    what = "the proxy's host" if probe.proxy else "The host"
    findings: list[Finding] = []
    if probe.dns.error is not None:
        return [
            Finding(
                "reach.dns",
                "fail",
                f"cannot resolve {host}: {probe.dns.error}",
                f"{what} name of this node does not resolve from this machine, so the client "
                "cannot connect to it at all.",
                "Check the spelling of the URL and this machine's DNS (resolv.conf, VPN, "
                "split-horizon DNS); inside Docker or Kubernetes use a name resolvable there.",
                node=node,
            )
        ]
    dns = probe.dns.seconds or 0.0
    if dns > SLOW_DNS:
        findings.append(
            Finding(
                "reach.dns",
                "warn",
                f"{host} took {_ms(dns)} to resolve",
                "Every new connection waits for the resolver; a slow one adds this to every "
                "reconnect and can eat a connect timeout.",
                "Fix the resolver, or use a local caching resolver (nscd, systemd-resolved).",
                node=node,
            )
        )
    else:
        findings.append(
            ok(
                "reach.dns",
                f"{host} -> {', '.join(probe.addresses)} in {_ms(dns)}",
                node=node,
                seconds=dns,
            )
        )
    tcp = probe.tcp
    if tcp is None or tcp.error is not None:
        findings.append(_tcp_failure(probe))
        return findings
    connect = tcp.seconds or 0.0
    tunnel = probe.tunnel
    if tunnel is not None and tunnel.error is not None:
        findings.append(
            Finding(
                "reach.tcp",
                "fail",
                f"the proxy did not open a tunnel to {probe.host}:{probe.port}: {tunnel.error}",
                "The TCP connection to the proxy works, but the proxy refused or failed the "
                "CONNECT request for this node, so no request can reach it (407: the proxy "
                "wants credentials; 403: its rules forbid this host or port; 502/503: it "
                "cannot reach the node).",
                "Check the proxy URL and credentials, and that the proxy may CONNECT to the "
                "node's host and port (squid: the SSL_ports / CONNECT rules).",
                node=node,
            )
        )
        return findings
    label = f"TCP connect to {host}:{probe.dial_port}"
    if tunnel is not None:
        connect += tunnel.seconds or 0.0
        label += f" and CONNECT tunnel to {probe.host}:{probe.port}"
    findings.append(_timed("reach.tcp", connect, timeouts.connect, label, "connect_timeout", node))
    if probe.tls:
        hs = probe.handshake
        if hs is None or hs.error is not None:
            reason = hs.error if hs is not None else "not attempted"
            findings.append(
                Finding(
                    "reach.tls",
                    "fail",
                    f"TLS handshake failed: {reason}",
                    "TCP connects, but the TLS handshake does not complete, so no request can "
                    "be sent. 'WRONG_VERSION_NUMBER' means the port speaks plain HTTP.",
                    "Use http:// for a node without TLS, or fix the server's TLS settings; see "
                    "the tls.* findings.",
                    node=node,
                )
            )
            return findings
        findings.append(
            _timed(
                "reach.tls",
                hs.seconds or 0.0,
                timeouts.connect,
                "TLS handshake",
                "connect_timeout",
                node,
                extra=f" ({probe.tls_version})" if probe.tls_version else "",
            )
        )
    first = probe.first_byte
    if first is None or first.error is not None:
        reason = first.error if first is not None else "not attempted"
        findings.append(
            Finding(
                "reach.http",
                "fail",
                f"no HTTP answer to GET /: {reason}",
                "The port accepts connections but nothing answers HTTP: a node stuck (GC, "
                "full disk), a firewall or load balancer that accepts and then drops, or "
                "something else listening on the port.",
                "Check the node's log and that the URL's port is the HTTP port (9200), not "
                "the transport port (9300).",
                node=node,
            )
        )
        return findings
    findings.append(
        _timed(
            "reach.http",
            first.seconds or 0.0,
            timeouts.read,
            "first byte of GET /",
            "read_timeout",
            node,
            extra=f" (HTTP {probe.status})",
        )
    )
    findings.append(judge_latency(probe.latencies, probe.latency_error, node))
    return findings


def _tcp_failure(probe: NodeProbe) -> Finding:
    tcp = probe.tcp
    reason = tcp.error if tcp is not None and tcp.error else "not attempted"
    if tcp is not None and tcp.timeout:
        meaning = (
            "Nothing answered the connection attempt within the deadline: a firewall or "
            "security group dropping packets, a wrong address, or a host that is down. A client "
            "waits the whole connect timeout for such a node on every attempt."
        )
        fix = (
            "Check firewalls and security groups between here and the node, and that the node "
            "runs and listens on this address (network.host / http.port)."
        )
    else:
        meaning = (
            "The host answered but nothing listens on this port (connection refused), or the "
            "network said the host is unreachable."
        )
        fix = "Check that the node runs, and the port (http.port, 9200 by default)."
    return Finding(
        "reach.tcp",
        "fail",
        f"cannot connect to {probe.dial_host}:{probe.dial_port}: {reason}",
        meaning,
        fix,
        node=probe.url,
    )


def _timed(
    id: str, seconds: float, limit: float, what: str, option: str, node: str, extra: str = ""
) -> Finding:
    if seconds > limit / 2:
        return Finding(
            id,
            "warn",
            f"{what} took {_ms(seconds)}{extra}, over half of {option}={limit:g} s",
            f"At this speed a little more load or packet loss makes the client's {option} "
            "expire, and the node is taken for dead.",
            f"Find what is slow on the path (network, overloaded node), or raise {option}.",
            node=node,
            details={"seconds": seconds, option: limit},
        )
    return ok(id, f"{what} in {_ms(seconds)}{extra}", node=node, seconds=seconds)


def judge_latency(latencies: Sequence[float], error: str | None, node: str) -> Finding:
    """p50/p95/max of the ``GET /`` series."""
    if not latencies:
        return Finding(
            "reach.latency",
            "unknown",
            f"no latency measured: {error or 'no sample'}",
            "The series of GET / requests did not get an answer.",
            "See reach.http for this node.",
            node=node,
        )
    p50, p95, top = percentile(latencies, 0.5), percentile(latencies, 0.95), max(latencies)
    summary = f"GET / p50 {_ms(p50)}, p95 {_ms(p95)}, max {_ms(top)} ({len(latencies)} calls)"
    details = {"p50": p50, "p95": p95, "max": top, "samples": len(latencies)}
    if p95 > SLOW_LATENCY:
        return Finding(
            "reach.latency",
            "warn",
            summary,
            "GET / does no work on the server, so this is the floor of every call: the "
            "network path or the node itself (GC pauses, overloaded threads) is slow.",
            "Check the node's heap and CPU (capacity.heap, capacity.gc) and the network path.",
            node=node,
            details=details,
        )
    return ok("reach.latency", summary, node=node, **details)
