"""The cluster's own health: the health report where there is one (Elasticsearch 8.7+),
``_cluster/health`` elsewhere; unassigned shards explained by ``_cluster/allocation/explain``;
and whether there is a stable master.

A yellow cluster serves every request, but one more lost node can lose data; the explanation
of an unassigned shard is the one sentence an operator needs and rarely looks up.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sturdysearch.doctor.context import Answer, Context, refused
from sturdysearch.doctor.findings import Finding, Status, ok, unknown

HEALTH_REPORT_SINCE = (8, 7, 0)
_COLOR_STATUS: dict[str, Status] = {"green": "ok", "yellow": "warn", "red": "fail"}


def has_health_report(ctx: Context) -> bool:
    version = ctx.version
    return ctx.flavor == "elasticsearch" and version is not None and version >= HEALTH_REPORT_SINCE


def health_params(ctx: Context) -> dict[str, str]:
    """``_cluster/health`` asks the master: bounded by :func:`master_wait` so that a cluster
    without one answers 503 within the check's deadline."""
    return {master_timeout_param(ctx): f"{master_wait(ctx)}ms"}


def get_health(ctx: Context) -> Answer:
    return ctx.get("/_cluster/health", health_params(ctx))


def master_indicator(ctx: Context) -> Mapping[str, Any] | None:
    """The health report's ``master_is_stable`` indicator with its details (the current
    master), or ``None`` without a health report."""
    answer = ctx.get("/_health_report/master_is_stable")
    if not answer.ok or not isinstance(answer.body, Mapping):
        return None
    indicator = (answer.body.get("indicators") or {}).get("master_is_stable")
    return indicator if isinstance(indicator, Mapping) else None


def check_health(ctx: Context) -> list[Finding]:
    if has_health_report(ctx):
        answer = ctx.get("/_health_report", {"verbose": "false"})
        if answer.ok:
            return [judge_health_report(answer.body, master_indicator(ctx))]
    return [judge_cluster_health(get_health(ctx))]


def no_current_master(indicator: Mapping[str, Any] | None) -> bool:
    """The indicator names no current master. Elasticsearch 9.5.4's report stays green for a
    while after the master is lost, with ``current_master.node_id`` null."""
    if indicator is None:
        return False
    details = indicator.get("details")
    current = details.get("current_master") if isinstance(details, Mapping) else None
    return isinstance(current, Mapping) and current.get("node_id") is None


def judge_health_report(body: Any, master: Mapping[str, Any] | None = None) -> Finding:
    if no_current_master(master):
        return Finding(
            "cluster.health",
            "fail",
            f"no elected master (the health report says {body.get('status')}, but names no "
            "current master)",
            "Without a master the cluster cannot change its state and refuses writes "
            "(cluster.no_master_block); the health report's own status lags behind.",
            "See cluster.master.",
        )
    status = str(body.get("status")) if isinstance(body, Mapping) else "unknown"
    indicators = body.get("indicators") if isinstance(body, Mapping) else None
    sick = []
    for name, indicator in sorted((indicators or {}).items()):
        if isinstance(indicator, Mapping) and indicator.get("status") not in ("green", None):
            sick.append(f"{name} {indicator.get('status')}: {indicator.get('symptom')}")
    verdict = _COLOR_STATUS.get(status)
    if verdict is None:
        return unknown("cluster.health", f"health report status {status}", "; ".join(sick))
    if verdict == "ok":
        return ok("cluster.health", "health report: green", indicators=len(indicators or {}))
    return Finding(
        "cluster.health",
        verdict,
        f"health report: {status}; " + "; ".join(sick),
        "The health report's indicators say what is wrong and what it affects: yellow "
        "degrades resilience (one more failure can lose data), red means data or features "
        "are unavailable now.",
        "Follow the indicators: GET _health_report/<indicator> lists diagnoses with their "
        "help URLs.",
        details={"status": status, "indicators": sick},
    )


def judge_cluster_health(answer: Answer) -> Finding:
    if answer.status == 503 and "not_discovered" in str(answer.body):
        return Finding(
            "cluster.health",
            "fail",
            f"no elected master: _cluster/health cannot answer ({answer.error_text()})",
            "Without a master the cluster cannot report its health, change its state or "
            "accept writes (cluster.no_master_block).",
            "See cluster.master.",
        )
    if not answer.ok:
        return refused("cluster.health", answer, "_cluster/health")
    body = answer.body
    status = str(body.get("status"))
    nodes = body.get("number_of_nodes")
    unassigned = body.get("unassigned_shards", 0)
    summary = f"{status} with {nodes} node(s), {unassigned} unassigned shard(s)"
    verdict = _COLOR_STATUS.get(status)
    if verdict is None:
        return unknown("cluster.health", summary)
    if verdict == "ok":
        return ok("cluster.health", summary)
    what = "replicas are unassigned" if verdict == "warn" else "primary shards are unassigned"
    return Finding(
        "cluster.health",
        verdict,
        summary,
        f"Some {what}: "
        + (
            "every request is served, but one more node lost can lose data."
            if verdict == "warn"
            else "searches miss data and writes to those shards fail."
        ),
        "See cluster.unassigned for why; GET _cluster/allocation/explain tells it per shard.",
        details={"status": status, "unassigned_shards": unassigned},
    )


def check_unassigned(ctx: Context) -> list[Finding]:
    health = get_health(ctx)
    if not health.ok:
        return [refused("cluster.unassigned", health, "_cluster/health")]
    if not health.body.get("unassigned_shards"):
        return [judge_unassigned(health.body, None)]
    explain = ctx.get("/_cluster/allocation/explain", method="POST")
    return [judge_unassigned(health.body, explain)]


def judge_unassigned(health: Mapping[str, Any], explain: Answer | None) -> Finding:
    count = int(health.get("unassigned_shards") or 0)
    if count == 0:
        return ok("cluster.unassigned", "every shard is assigned")
    if explain is None or not explain.ok or not isinstance(explain.body, Mapping):
        reason = explain.error_text() if explain is not None else "not asked"
        return Finding(
            "cluster.unassigned",
            "warn",
            f"{count} unassigned shard(s); no explanation: {reason}",
            "Shards without a node hold no data copy.",
            "Ask GET _cluster/allocation/explain as a user with the monitor privilege.",
        )
    body = explain.body
    primary = bool(body.get("primary"))
    shard = f"[{body.get('index')}][{body.get('shard')}] {'primary' if primary else 'replica'}"
    raw_info = body.get("unassigned_info")
    info: Mapping[str, Any] = raw_info if isinstance(raw_info, Mapping) else {}
    why = body.get("explanation") or body.get("allocate_explanation") or "no explanation given"
    deciders = _deciders(body)
    summary = f"{count} unassigned shard(s), e.g. {shard} ({info.get('reason', '?')})"
    return Finding(
        "cluster.unassigned",
        "fail" if primary else "warn",
        summary,
        f"{why}" + (f" Deciders: {'; '.join(deciders)}" if deciders else ""),
        "A replica cannot share a node with its primary: add nodes or lower "
        "index.number_of_replicas. For other deciders (disk watermarks, allocation filters, "
        "max retries) fix the cause, then POST _cluster/reroute?retry_failed=true.",
        details={"unassigned_shards": count, "shard": shard, "deciders": deciders},
    )


def _deciders(body: Mapping[str, Any]) -> list[str]:
    """The distinct NO decisions of the node-by-node explanation."""
    seen: list[str] = []
    for node in body.get("node_allocation_decisions") or []:
        for decider in node.get("deciders") or [] if isinstance(node, Mapping) else []:
            if isinstance(decider, Mapping) and decider.get("decision") == "NO":
                text = f"{decider.get('decider')}: {decider.get('explanation')}"
                if text not in seen:
                    seen.append(text[:300])
    return seen[:3]


def check_master(ctx: Context) -> list[Finding]:
    if has_health_report(ctx):
        indicator = master_indicator(ctx)
        if indicator is not None:
            return [judge_master_indicator(indicator)]
    params = {"format": "json", master_timeout_param(ctx): f"{master_wait(ctx)}ms"}
    return [judge_cat_master(ctx.get("/_cat/master", params))]


def master_timeout_param(ctx: Context) -> str:
    """OpenSearch 2.0+ renamed ``master_timeout`` (the old name is deprecated there)."""
    version = ctx.version
    if ctx.flavor == "opensearch" and version is not None and version >= (2, 0, 0):
        return "cluster_manager_timeout"
    return "master_timeout"


def master_wait(ctx: Context) -> int:
    """Milliseconds the server may wait for a master: half of the check's bound, so that a
    cluster without one answers 503 (judged) instead of the request running out of time."""
    return max(100, int(ctx.options.timeout * 500))


def judge_master_indicator(indicator: Mapping[str, Any]) -> Finding:
    status = str(indicator.get("status"))
    symptom = str(indicator.get("symptom"))
    if no_current_master(indicator):
        status, symptom = "red", f"no current master (the indicator says {status}: {symptom})"
    if status == "green":
        return ok("cluster.master", symptom)
    return Finding(
        "cluster.master",
        _COLOR_STATUS.get(status, "unknown"),
        f"master {status}: {symptom}",
        "Without a stable elected master no index can be created, no mapping changed, no "
        "shard moved; a master that changes often points at network trouble or overloaded "
        "master-eligible nodes.",
        "GET _health_report/master_is_stable lists the diagnosis; check the master-eligible "
        "nodes' logs and their network.",
    )


def judge_cat_master(answer: Answer) -> Finding:
    if answer.ok and isinstance(answer.body, list) and answer.body:
        node = answer.body[0].get("node") if isinstance(answer.body[0], Mapping) else None
        if node not in (None, "", "-"):
            return ok("cluster.master", f"elected master: {node}")
    if answer.status not in (200, 500, 503):
        # 401/403: not allowed to ask; 404/405/400: not a node's answer (a proxy, a
        # gateway, a path prefix missing) - no verdict about the master.
        return refused("cluster.master", answer, "_cat/master")
    return Finding(
        "cluster.master",
        "fail",
        f"no elected master (HTTP {answer.status}: {answer.error_text()})",
        "The cluster has no master: it cannot change its state (create indices, allocate "
        "shards), and writes may be refused.",
        "Check that enough master-eligible nodes run and see each other "
        "(discovery.seed_hosts, cluster.initial_master_nodes only at bootstrap).",
    )
