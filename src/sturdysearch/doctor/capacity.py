"""Capacity and load: disk against the watermarks, read-only blocks, shards per node, heap
and old-generation GC, circuit-breaker trips, thread-pool rejections, and the server-side
sign of a client that opens a new connection per request.

Each of these is a way a healthy-looking cluster refuses work: past the flood-stage watermark
every index on the node becomes ``read_only_allow_delete`` and writes fail with 403/429; a
tripped breaker answers 429; a full write queue rejects bulk requests with 429 (the retries a
bulk load meets); a client that does not reuse connections pays a TCP and TLS handshake per
call and can exhaust the node's file descriptors. The judges are pure; they read the answers
of ``_nodes/stats/*`` and ``_cluster/settings``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any

from sturdysearch.doctor.cluster import get_health
from sturdysearch.doctor.context import Answer, Context, nodes_of, refused
from sturdysearch.doctor.findings import Finding, ok

HEAP_WARN = 85
HEAP_FAIL = 95
GC_WARN_FRACTION = 0.05
"""Share of the JVM's uptime spent in old-generation collections."""
SHARDS_WARN_FRACTION = 0.85
CHURN_WARN_PER_SECOND = 10.0
"""New HTTP connections per second, over all nodes: a pooled client opens almost none."""
WATERMARKS = ("low", "high", "flood_stage")
_SETTINGS_PARAMS = {"include_defaults": "true", "flat_settings": "true"}
_DISK = "cluster.routing.allocation.disk."
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?b?)\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1024, "m": 1024**2, "mb": 1024**2, "g": 1024**3}
_UNITS.update({"gb": 1024**3, "t": 1024**4, "tb": 1024**4, "p": 1024**5, "pb": 1024**5})


def flat_setting(body: Any, key: str) -> str | None:
    """A setting of a ``flat_settings=true`` answer: transient over persistent over default."""
    if not isinstance(body, Mapping):
        return None
    for section in ("transient", "persistent", "defaults"):
        values = body.get(section)
        if isinstance(values, Mapping) and key in values:
            return str(values[key])
    return None


def _explicit(body: Any, key: str) -> bool:
    return any(
        isinstance(body.get(s), Mapping) and key in body[s] for s in ("transient", "persistent")
    )


def parse_bytes(text: str) -> int | None:
    """``500mb``, ``1b``, ``20GB``, ``1024`` as bytes; ``None`` when it is not a size."""
    match = _SIZE.match(text)
    if match is None:
        return None
    return int(float(match[1]) * _UNITS[match[2].lower()])


def free_needed(value: str, total: int, headroom: int | None) -> int | None:
    """Free bytes a node must keep under the watermark ``value``: a percentage or ratio of
    used space (``85%``, ``0.85``), capped by ``headroom`` where one applies, or an absolute
    free size (``500mb``). ``None`` when the value does not parse."""
    text = value.strip()
    fraction: float | None = None
    if text.endswith("%"):
        try:
            fraction = float(text[:-1]) / 100
        except ValueError:
            return None
    else:
        try:
            number = float(text)
        except ValueError:
            number = None
        if number is not None and 0 <= number <= 1 and "." in text:
            fraction = number
    if fraction is not None:
        needed = int(total * (1 - fraction))
        return min(needed, headroom) if headroom is not None and headroom >= 0 else needed
    return parse_bytes(text)


def watermarks(settings: Any, total: int) -> dict[str, int]:
    """Free bytes needed at each watermark for a disk of ``total`` bytes."""
    result: dict[str, int] = {}
    for name in WATERMARKS:
        key = f"{_DISK}watermark.{name}"
        value = flat_setting(settings, key)
        if value is None:
            continue
        headroom_text = flat_setting(settings, f"{key}.max_headroom")
        headroom = None
        # The default headroom only applies while the watermark itself is the default.
        if headroom_text is not None and (
            _explicit(settings, f"{key}.max_headroom") or not _explicit(settings, key)
        ):
            headroom = -1 if headroom_text.strip() == "-1" else parse_bytes(headroom_text)
        needed = free_needed(value, total, headroom)
        if needed is not None:
            result[name] = needed
    return result


def _gib(n: float) -> str:
    return f"{n / 1024**3:.1f} GiB" if n >= 1024**3 else f"{n / 1024**2:.1f} MiB"


def check_disk(ctx: Context) -> list[Finding]:
    fs = ctx.get("/_nodes/stats/fs")
    if not fs.ok:
        return [refused("capacity.disk", fs, "_nodes/stats/fs")]
    settings = ctx.get("/_cluster/settings", _SETTINGS_PARAMS)
    if not settings.ok:
        return [refused("capacity.disk", settings, "_cluster/settings")]
    return [judge_disk(fs.body, settings.body)]


def judge_disk(fs_body: Any, settings: Any) -> Finding:
    enabled = (flat_setting(settings, f"{_DISK}threshold_enabled") or "true") == "true"
    worst: tuple[int, str, str] = (-1, "", "")
    levels = {"low": 1, "high": 2, "flood_stage": 3}
    lines = []
    for info in nodes_of(fs_body).values():
        name = str(info.get("name"))
        total_stats = (info.get("fs") or {}).get("total") or {}
        total = int(total_stats.get("total_in_bytes") or 0)
        available = int(total_stats.get("available_in_bytes") or 0)
        if total <= 0:
            continue
        needed = watermarks(settings, total)
        used = 100 * (total - available) / total
        lines.append(f"{name} {used:.0f}% used, {_gib(available)} free")
        for level in WATERMARKS:
            if level in needed and available < needed[level] and levels[level] > worst[0]:
                worst = (levels[level], name, level)
    summary = "; ".join(lines) or "no disk stats"
    if not enabled:
        return Finding(
            "capacity.disk",
            "warn",
            f"disk watermarks are off (threshold_enabled=false); {summary}",
            "With the disk threshold decider off, shards keep being allocated to full disks "
            "and nodes fill up until writes fail with disk-full errors and shards are lost.",
            'PUT _cluster/settings {"persistent": {"cluster.routing.allocation.disk.'
            'threshold_enabled": true}} (the default).',
        )
    if worst[0] < 0:
        return ok("capacity.disk", f"below the low watermark: {summary}")
    _, node, name = worst
    effect = {
        "low": "no new shards are allocated to it",
        "high": "its shards are moved away",
        "flood_stage": "every index with a shard on it is made read_only_allow_delete: writes fail",
    }[name]
    return Finding(
        "capacity.disk",
        "fail" if name == "flood_stage" else "warn",
        f"{node} is past the {name} watermark: {summary}",
        f"Past the {name} disk watermark {effect}.",
        "Free disk space (delete old indices, add disk or nodes), or review the watermarks "
        "(cluster.routing.allocation.disk.watermark.*); since 7.4 the block is lifted by "
        "itself once usage falls below the high watermark.",
        details={"node": node, "watermark": name},
    )


def check_blocks(ctx: Context) -> list[Finding]:
    blocks = ctx.get("/_all/_settings/index.blocks*", {"flat_settings": "true"})
    if not blocks.ok:
        return [refused("capacity.read_only", blocks, "_all/_settings/index.blocks*")]
    settings = ctx.get("/_cluster/settings", _SETTINGS_PARAMS)
    return [judge_blocks(blocks.body, settings.body if settings.ok else {})]


def judge_blocks(index_body: Any, settings: Any) -> Finding:
    allow_delete, other = [], []
    for index, data in sorted((index_body or {}).items()):
        values = (data.get("settings") or {}) if isinstance(data, Mapping) else {}
        if str(values.get("index.blocks.read_only_allow_delete")) == "true":
            allow_delete.append(index)
        elif any(str(values.get(f"index.blocks.{b}")) == "true" for b in ("read_only", "write")):
            other.append(index)
    cluster_blocks = [
        b
        for b in ("read_only", "read_only_allow_delete")
        if flat_setting(settings, f"cluster.blocks.{b}") == "true"
    ]
    if cluster_blocks:
        return Finding(
            "capacity.read_only",
            "fail",
            f"the whole cluster is blocked: cluster.blocks.{cluster_blocks[0]}",
            "Every write to every index is refused.",
            f'PUT _cluster/settings {{"persistent": {{"cluster.blocks.{cluster_blocks[0]}":'
            " null}} once the reason (usually a full disk) is fixed.",
        )
    if allow_delete:
        shown = ", ".join(allow_delete[:5]) + (" ..." if len(allow_delete) > 5 else "")
        return Finding(
            "capacity.read_only",
            "fail",
            f"{len(allow_delete)} index(es) read_only_allow_delete: {shown}",
            "The flood-stage disk watermark (or an operator) blocked writes: indexing fails "
            "with 403/429 'index read-only / allow delete (api)'.",
            'Free disk space; then PUT */_settings {"index.blocks.read_only_allow_delete": '
            "null} (Elasticsearch 7.4+ and OpenSearch lift it once disk use is below the high "
            "watermark).",
            details={"indices": allow_delete},
        )
    if other:
        return Finding(
            "capacity.read_only",
            "warn",
            f"{len(other)} index(es) refuse writes (index.blocks.read_only/write): "
            + ", ".join(other[:5]),
            "Writes to these indices fail: set by an operator, a shrink or an ILM/ISM step.",
            "Remove the block if writes are expected: PUT INDEX/_settings "
            '{"index.blocks.write": null}.',
            details={"indices": other},
        )
    return ok("capacity.read_only", "no index or cluster write block")


def check_shards(ctx: Context) -> list[Finding]:
    health = get_health(ctx)
    if not health.ok:
        return [refused("capacity.shards", health, "_cluster/health")]
    settings = ctx.get("/_cluster/settings", _SETTINGS_PARAMS)
    limit = flat_setting(settings.body, "cluster.max_shards_per_node") if settings.ok else None
    return [judge_shards(health.body, int(limit) if limit and limit.isdigit() else 1000)]


def judge_shards(health: Mapping[str, Any], per_node: int) -> Finding:
    shards = int(health.get("active_shards") or 0) + int(health.get("unassigned_shards") or 0)
    data_nodes = max(1, int(health.get("number_of_data_nodes") or 1))
    limit = per_node * data_nodes
    summary = f"{shards} shards of {limit} allowed ({per_node} per node x {data_nodes})"
    if shards >= limit * SHARDS_WARN_FRACTION:
        return Finding(
            "capacity.shards",
            "fail" if shards >= limit else "warn",
            summary,
            "At cluster.max_shards_per_node, creating an index (a daily index, a rollover) "
            "fails with 'this action would add [N] shards, but this cluster currently has "
            "[M]/[limit] maximum normal shards open'. Many small shards also cost heap.",
            "Delete or shrink old indices, use fewer primaries (aim for 10-50 GB per shard), "
            "or add data nodes; raising the limit only postpones it.",
            details={"shards": shards, "limit": limit},
        )
    return ok("capacity.shards", summary, shards=shards, limit=limit)


def check_jvm(ctx: Context) -> list[Finding]:
    answer = ctx.get("/_nodes/stats/jvm")
    if not answer.ok:
        return [refused("capacity.heap", answer, "_nodes/stats/jvm")]
    options = ctx.options
    return [
        judge_heap(answer.body, warn=options.heap_warn, fail=options.heap_fail),
        judge_gc(answer.body, warn_fraction=options.gc_warn / 100),
    ]


def judge_heap(body: Any, *, warn: float = HEAP_WARN, fail: float = HEAP_FAIL) -> Finding:
    levels = {
        str(info.get("name")): int(
            ((info.get("jvm") or {}).get("mem") or {}).get("heap_used_percent") or 0
        )
        for info in nodes_of(body).values()
    }
    if not levels:
        return Finding("capacity.heap", "unknown", "no JVM stats")
    _node, top = max(levels.items(), key=lambda item: item[1])
    summary = ", ".join(f"{n} {p}%" for n, p in sorted(levels.items()))
    if top >= warn or top >= fail:
        return Finding(
            "capacity.heap",
            "fail" if top >= fail else "warn",
            f"heap used: {summary} (warns at {warn:g}%, fails at {fail:g}%)",
            "A heap this full means long garbage collections and circuit breakers answering "
            "429; past it the node runs out of memory.",
            "Find what holds memory (too many shards, large aggregations, fielddata on text "
            "fields); give the node more heap (up to half the RAM, below 32 GB) or more nodes.",
            details={"heap_used_percent": levels, "warn": warn, "fail": fail},
        )
    return ok("capacity.heap", f"heap used: {summary}", heap_used_percent=levels)


def judge_gc(body: Any, *, warn_fraction: float = GC_WARN_FRACTION) -> Finding:
    shares: dict[str, float] = {}
    for info in nodes_of(body).values():
        jvm = info.get("jvm") or {}
        old = ((jvm.get("gc") or {}).get("collectors") or {}).get("old") or {}
        uptime = float(jvm.get("uptime_in_millis") or 0)
        if uptime > 0:
            shares[str(info.get("name"))] = (
                float(old.get("collection_time_in_millis") or 0) / uptime
            )
    if not shares:
        return Finding("capacity.gc", "unknown", "no GC stats")
    _node, top = max(shares.items(), key=lambda item: item[1])
    summary = ", ".join(f"{n} {s:.1%}" for n, s in sorted(shares.items()))
    if top >= warn_fraction:
        return Finding(
            "capacity.gc",
            "warn",
            f"time in old-generation GC since start: {summary}",
            "Old-generation collections stop the node's work; this much of its life spent in "
            "them means requests stall (timeouts, nodes leaving the cluster).",
            "Relieve heap pressure (see capacity.heap): fewer shards, smaller requests, more "
            "heap or nodes.",
            details={"old_gc_fraction": shares},
        )
    return ok("capacity.gc", f"time in old-generation GC since start: {summary}")


def check_breakers(ctx: Context) -> list[Finding]:
    answer = ctx.get("/_nodes/stats/breaker")
    if not answer.ok:
        return [refused("capacity.breakers", answer, "_nodes/stats/breaker")]
    return [judge_breakers(answer.body)]


def judge_breakers(body: Any) -> Finding:
    trips = []
    for info in nodes_of(body).values():
        for name, breaker in sorted((info.get("breakers") or {}).items()):
            tripped = int((breaker or {}).get("tripped") or 0)
            if tripped > 0:
                trips.append(f"{info.get('name')} {name} x{tripped}")
    if trips:
        return Finding(
            "capacity.breakers",
            "warn",
            f"circuit breakers tripped since start: {', '.join(trips)}",
            "A tripped breaker refused a request (429 circuit_breaking_exception) to keep the "
            "node from running out of memory: the parent breaker means the heap is too full, "
            "request/fielddata breakers point at large aggregations or bulk requests.",
            "Send smaller bulk requests and aggregations; relieve heap pressure "
            "(capacity.heap). The counters reset when a node restarts.",
            details={"tripped": trips},
        )
    return ok("capacity.breakers", "no circuit breaker tripped since the nodes started")


def check_rejections(ctx: Context) -> list[Finding]:
    answer = ctx.get("/_nodes/stats/thread_pool")
    if not answer.ok:
        return [refused("capacity.rejections", answer, "_nodes/stats/thread_pool")]
    return [judge_rejections(answer.body)]


def judge_rejections(body: Any) -> Finding:
    rejected = []
    for info in nodes_of(body).values():
        pools = info.get("thread_pool") or {}
        for pool in ("write", "bulk", "index", "search"):
            count = int((pools.get(pool) or {}).get("rejected") or 0)
            if count > 0:
                rejected.append(f"{info.get('name')} {pool} {count}")
    if rejected:
        return Finding(
            "capacity.rejections",
            "warn",
            f"thread-pool rejections since start: {', '.join(rejected)}",
            "A full queue rejects requests with 429 (es_rejected_execution_exception): the "
            "429s a bulk load meets. Clients that retry at once, or send more in parallel, "
            "make it worse.",
            "Lower the bulk concurrency or batch size, retry with backoff (BulkIndexer does), "
            "and spread shards over more nodes. Raising queue_size only hides it.",
            details={"rejected": rejected},
        )
    return ok("capacity.rejections", "no write or search rejections since the nodes started")


def _opened(body: Any) -> int:
    return sum(
        int((info.get("http") or {}).get("total_opened") or 0) for info in nodes_of(body).values()
    )


def check_churn(ctx: Context) -> list[Finding]:
    """``http.total_opened`` sampled twice, ``churn_interval`` apart: the doctor itself opens
    no connection in between (the runner runs this check alone)."""
    params = {"filter_path": "nodes.*.http.total_opened,nodes.*.name"}
    first_at, first = ctx.fresh("/_nodes/stats/http", params)
    if not first.ok:
        return [refused("capacity.connections", first, "_nodes/stats/http")]
    time.sleep(ctx.options.churn_interval)  # the measuring window, not a synchronisation
    second_at, second = ctx.fresh("/_nodes/stats/http", params)
    if not second.ok:
        return [refused("capacity.connections", second, "_nodes/stats/http")]
    return [judge_churn(_opened(first.body), _opened(second.body), second_at - first_at)]


def judge_churn(first: int, second: int, seconds: float) -> Finding:
    rate = max(0, second - first) / seconds if seconds > 0 else 0.0
    summary = (
        f"{rate:.1f} new HTTP connections/s over all nodes ({second - first} in {seconds:.1f} s)"
    )
    if rate > CHURN_WARN_PER_SECOND:
        return Finding(
            "capacity.connections",
            "warn",
            summary,
            "Some client opens a new connection for (nearly) every request instead of reusing "
            "them: each costs a TCP and often a TLS handshake, latency, and file descriptors "
            "(and TIME_WAIT sockets) on both sides.",
            "Create one client per process and share it; do not create a client per request "
            "or close it after each call. GET _nodes/stats/http (http.clients) names the agents.",
            details={"per_second": round(rate, 1)},
        )
    return ok("capacity.connections", summary, per_second=round(rate, 1))


def answer_body(answer: Answer) -> Any:
    return answer.body if answer.ok else {}
