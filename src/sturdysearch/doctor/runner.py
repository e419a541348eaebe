"""Runs the checks: first what needs no server (the client's configuration), then the raw
reach probes of every node, then, if any node answered, the server checks in parallel, each
under its own deadline, and last the connection-churn sample, alone, so that the doctor's
own requests do not count.

A check that raises or overruns its deadline becomes one ``unknown`` finding carrying the
error: a diagnosis must never end in a traceback, least of all on the sick cluster it is
meant for.
"""

from __future__ import annotations

import datetime
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sturdysearch.doctor import (
    auth,
    capacity,
    client_config,
    cluster,
    deprecations,
    discovery,
    identity,
    index,
    reach,
    tls,
)
from sturdysearch.doctor.context import Context, Options
from sturdysearch.doctor.findings import Finding, exit_code, unknown
from sturdysearch.doctor.probe import NodeProbe, probe_node

if TYPE_CHECKING:
    from sturdysearch import Client

AREAS = (
    "reach",
    "tls",
    "identity",
    "auth",
    "discovery",
    "config",
    "cluster",
    "capacity",
    "index",
    "upgrade",
)
"""The order findings are reported in: from the wire up to the data."""
PROBE_STEPS = 5
"""A probe has this many steps bounded by ``timeout`` (connect, handshake and its retry,
first byte, latency series), one more through a proxy (the CONNECT tunnel); DNS is bounded
by its thread's deadline."""


@dataclass(frozen=True, slots=True)
class Check:
    id: str
    """The finding reported as ``unknown`` when the check fails to run."""
    run: Callable[[Context], list[Finding]]


SERVER_CHECKS: tuple[Check, ...] = (
    Check("identity.versions", identity.check_versions),
    Check("identity.dialect", identity.check_dialect),
    Check("auth.credentials", auth.check_auth),
    Check("auth.api_key", auth.check_api_key),
    Check("discovery.publish", discovery.check_publish),
    Check("cluster.health", cluster.check_health),
    Check("cluster.unassigned", cluster.check_unassigned),
    Check("cluster.master", cluster.check_master),
    Check("capacity.disk", capacity.check_disk),
    Check("capacity.read_only", capacity.check_blocks),
    Check("capacity.shards", capacity.check_shards),
    Check("capacity.heap", capacity.check_jvm),
    Check("capacity.breakers", capacity.check_breakers),
    Check("capacity.rejections", capacity.check_rejections),
    Check("index.exists", index.check_index),
    Check("upgrade.deprecations", deprecations.check_deprecations),
)
CHURN = Check("capacity.connections", capacity.check_churn)


@dataclass(frozen=True, slots=True)
class Report:
    findings: tuple[Finding, ...]
    exit_code: int
    reachable: bool


def describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:400]


def run_all(checks: Sequence[Check], ctx: Context, deadline: float) -> list[Finding]:
    """Run ``checks`` in parallel threads; each gets ``deadline`` seconds from its start."""
    results: list[list[Finding]] = [[] for _ in checks]
    errors: list[BaseException | None] = [None] * len(checks)

    def target(i: int, check: Check) -> None:
        try:
            results[i] = check.run(ctx)
        except BaseException as exc:
            errors[i] = exc

    threads = [
        threading.Thread(target=target, args=(i, c), daemon=True, name=f"doctor-{c.id}")
        for i, c in enumerate(checks)
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    findings: list[Finding] = []
    for i, (check, thread) in enumerate(zip(checks, threads, strict=True)):
        thread.join(max(0.0, started + deadline - time.monotonic()))
        if thread.is_alive():
            findings.append(unknown(check.id, f"did not finish within {deadline:g} s"))
        elif errors[i] is not None:
            error = errors[i]
            assert error is not None
            findings.append(unknown(check.id, f"could not check: {describe(error)}"))
        else:
            findings.extend(results[i])
    return findings


def _probe_all(ctx: Context) -> list[Finding]:
    """Every configured node probed, directly or through the proxy the client uses for it."""
    config = ctx.config
    proxy = getattr(config, "proxy", None)
    timeout = ctx.options.timeout
    nodes = list(config.nodes)
    findings: list[Finding] = []
    probes: list[NodeProbe | None] = [None] * len(nodes)

    def target(i: int) -> None:
        node = nodes[i]
        via = proxy.endpoint_for(node) if proxy is not None else None
        probes[i] = probe_node(node, config.tls, timeout, via)

    threads = [threading.Thread(target=target, args=(i,), daemon=True) for i in range(len(nodes))]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout * (PROBE_STEPS + 1) + 1
    now = datetime.datetime.now(datetime.timezone.utc)
    measured = []
    for node, thread, i in zip(nodes, threads, range(len(nodes)), strict=True):
        thread.join(max(0.0, deadline - time.monotonic()))
        probe = probes[i]
        if probe is None:
            findings.append(
                unknown(
                    "reach.dns",
                    f"the probe did not finish within {timeout * (PROBE_STEPS + 1):g} s",
                    node=node.url,
                )
            )
            continue
        ctx.probes[node.url] = probe
        measured.append(probe)
        findings += reach.judge(probe, config.timeouts)
        findings += tls.judge_node(probe, config, now)
    findings += tls.judge_redirects(measured)
    if nodes and not measured:
        ctx.probes[nodes[0].url] = NodeProbe(nodes[0].url, nodes[0].host, nodes[0].port, False)
    return findings


def diagnose(client: object, options: Options) -> Report:
    """Every check against ``client`` (a :class:`sturdysearch.Client`)."""
    ctx = Context(client, options)  # type: ignore[arg-type]
    config = ctx.config
    retry = getattr(getattr(client, "_transport", None), "retry", None)
    from sturdysearch._core.retry import RetryPolicy

    findings = client_config.judge_config(
        config,
        retry if isinstance(retry, RetryPolicy) else RetryPolicy(),
        options.concurrency,
        options.environ,
    )
    findings += [auth.judge_scheme(config), tls.judge_verification(config)]
    findings += tls.judge_plaintext(config)
    findings += _probe_all(ctx)
    if not ctx.reachable:
        return Report(tuple(_ordered(findings)), exit_code(findings, reachable=False), False)
    deadline = options.timeout * 2 + 1
    working = working_client(ctx)
    if working is not None:
        ctx.client = working
    try:
        findings += run_all([Check("identity.server", identity.check_server)], ctx, deadline)
        findings += run_all(SERVER_CHECKS, ctx, deadline)
        findings += run_all([CHURN], ctx, deadline + options.churn_interval)
    finally:
        if working is not None:
            working.close()
    return Report(tuple(_ordered(findings)), exit_code(findings), True)


def working_client(ctx: Context) -> Client | None:
    """A twin of the judged client over only the nodes that answered the probes, or ``None``
    when all did (or a proxy is in the way: the twin is built from the judged configuration's
    parts, and a proxy's credentials are not among those it copies).

    Otherwise every check would pay a node that does not answer: the client finds it out
    only by waiting, and each check's deadline is short. The twin has the same credentials,
    TLS settings and headers; it is used for the calls only, never judged."""
    config = ctx.config
    if getattr(config, "proxy", None) is not None:
        return None
    answered = [n for n in config.nodes if (p := ctx.probes.get(n.url)) and p.answered]
    if not answered or len(answered) == len(config.nodes):
        return None
    from sturdysearch import Client

    return Client(
        [n.url for n in answered],
        auth=config.auth,
        tls=config.tls,
        headers=dict(config.headers),
        http_compress=config.http_compress,
        allow_credentials_over_http=config.allow_credentials_over_http,
    )


def _ordered(findings: Sequence[Finding]) -> list[Finding]:
    def area(finding: Finding) -> int:
        prefix = finding.id.split(".", 1)[0]
        return AREAS.index(prefix) if prefix in AREAS else len(AREAS)

    return sorted(findings, key=area)  # stable: the order within an area is kept
