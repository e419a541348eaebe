"""Bulk readiness of one index (``--index NAME``): refresh interval and replicas during a
load, mapping field count against ``index.mapping.total_fields.limit``, and the ingest
pipeline ``index.default_pipeline`` names.

The first two are the settings Elastic's "tune for indexing speed" guide changes for an
initial load; the last two are the ways every document of a load is refused at once (a
mapping explosion, a pipeline that was never created).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from sturdysearch.doctor.context import Answer, Context, refused
from sturdysearch.doctor.findings import Finding, ok

FIELDS_WARN_FRACTION = 0.9


def _index_path(name: str) -> str:
    return "/" + quote(name, safe=",*")


def check_index(ctx: Context) -> list[Finding]:
    name = ctx.options.index
    if name is None:
        return []
    settings = ctx.get(
        f"{_index_path(name)}/_settings", {"include_defaults": "true", "flat_settings": "true"}
    )
    if settings.status == 404:
        return [
            Finding(
                "index.exists",
                "fail",
                f"index {name} does not exist",
                "Writing to it creates it with dynamic mappings and default settings (unless "
                "action.auto_create_index forbids it, then every write fails).",
                "Create the index (or its template) with explicit mappings before the load.",
            )
        ]
    if not settings.ok:
        return [refused("index.exists", settings, f"{name}/_settings")]
    findings = [ok("index.exists", f"{name} exists")]
    findings += judge_settings(name, settings.body)
    mapping = ctx.get(f"{_index_path(name)}/_mapping")
    findings.append(
        judge_fields(name, mapping.body, settings.body)
        if mapping.ok
        else refused("index.fields", mapping, f"{name}/_mapping")
    )
    findings += check_pipelines(ctx, name, settings.body)
    return findings


def setting(body: Any, key: str, default: str | None = None) -> dict[str, str | None]:
    """``key`` per index of a ``flat_settings`` index-settings answer (set, else default)."""
    result: dict[str, str | None] = {}
    for index, data in sorted((body or {}).items()):
        if not isinstance(data, Mapping):
            continue
        value = (data.get("settings") or {}).get(key, (data.get("defaults") or {}).get(key))
        result[index] = str(value) if value is not None else default
    return result


def judge_settings(name: str, body: Any) -> list[Finding]:
    refresh = setting(body, "index.refresh_interval", "1s")
    replicas = setting(body, "index.number_of_replicas", "1")
    fast = [i for i, v in refresh.items() if v not in ("-1",) and _seconds(v) < 30]
    findings = []
    if fast:
        findings.append(
            Finding(
                "index.refresh",
                "warn",
                f"refresh_interval {refresh[fast[0]]} on {', '.join(fast[:3])}",
                "Each refresh writes a new segment that must be merged later: during a bulk "
                "load a 1 s refresh costs a large share of the indexing throughput.",
                f'During the load: PUT {name}/_settings {{"index.refresh_interval": "-1"}} '
                '(or "30s"); restore it afterwards (null gives the default back).',
            )
        )
    else:
        findings.append(
            ok(
                "index.refresh",
                f"refresh_interval {', '.join(sorted({str(v) for v in refresh.values()}))}",
            )
        )
    with_replicas = [i for i, v in replicas.items() if v not in ("0", None)]
    if with_replicas:
        findings.append(
            Finding(
                "index.replicas",
                "warn",
                f"{replicas[with_replicas[0]]} replica(s) on {', '.join(with_replicas[:3])}",
                "Every document is indexed once more per replica during the load; for an "
                "initial load it is cheaper to copy the finished segments afterwards.",
                f'For an initial load: PUT {name}/_settings {{"index.number_of_replicas": 0}}, '
                "and set the replicas back when it is done (before going live).",
            )
        )
    else:
        findings.append(ok("index.replicas", "no replicas during the load"))
    return findings


def _seconds(value: str | None) -> float:
    if value is None:
        return 1.0
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
    for unit in ("ms", "s", "m", "h", "d"):
        if value.endswith(unit):
            try:
                return float(value[: -len(unit)]) * units[unit]
            except ValueError:
                return 1.0
    return 1.0


def count_fields(properties: Any) -> int:
    """Fields as ``index.mapping.total_fields.limit`` counts them: every field and object,
    multi-fields included."""
    if not isinstance(properties, Mapping):
        return 0
    total = 0
    for field in properties.values():
        if not isinstance(field, Mapping):
            continue
        total += 1 + count_fields(field.get("properties")) + count_fields(field.get("fields"))
    return total


def judge_fields(name: str, mapping: Any, settings: Any) -> Finding:
    limits = setting(settings, "index.mapping.total_fields.limit", "1000")
    worst: tuple[float, str, int, int] = (-1.0, "", 0, 0)
    for index, data in sorted((mapping or {}).items()):
        mappings = data.get("mappings") if isinstance(data, Mapping) else None
        count = count_fields((mappings or {}).get("properties"))
        runtime = (mappings or {}).get("runtime")
        count += len(runtime) if isinstance(runtime, Mapping) else 0
        limit = int(limits.get(index) or 1000)
        if count / limit > worst[0]:
            worst = (count / limit, index, count, limit)
    share, index, count, limit = worst
    summary = f"{count} mapped fields of {limit} allowed on {index or name}"
    if share >= FIELDS_WARN_FRACTION:
        return Finding(
            "index.fields",
            "fail" if count >= limit else "warn",
            summary,
            "At index.mapping.total_fields.limit a document that adds a field is refused "
            "('Limit of total fields [N] has been exceeded'), and a bulk load dead-letters "
            "every such document. Dynamic mapping of keys that are data (ids, dates) gets "
            "there fast.",
            "Map such objects as 'flattened' (Elasticsearch) / 'flat_object' (OpenSearch) or "
            "disable dynamic mapping for them ('dynamic': false); raise the limit only for a "
            "known, bounded set of fields.",
            details={"fields": count, "limit": limit},
        )
    return ok("index.fields", summary, fields=count, limit=limit)


def check_pipelines(ctx: Context, name: str, settings: Any) -> list[Finding]:
    wanted: dict[str, str] = {}
    for key in ("index.default_pipeline", "index.final_pipeline"):
        for value in setting(settings, key, "_none").values():
            if value and value != "_none":
                wanted.setdefault(value, key)
    if not wanted:
        return [ok("index.pipeline", "no default or final ingest pipeline")]
    answers = {p: ctx.get(f"/_ingest/pipeline/{quote(p, safe='')}") for p in sorted(wanted)}
    return [judge_pipelines(wanted, answers)]


def judge_pipelines(wanted: Mapping[str, str], answers: Mapping[str, Answer]) -> Finding:
    missing = [p for p, a in answers.items() if a.status == 404]
    if missing:
        return Finding(
            "index.pipeline",
            "fail",
            f"pipeline {missing[0]} ({wanted[missing[0]]}) does not exist",
            "Every write to the index fails with 'pipeline with id [...] does not exist': a "
            "bulk load dead-letters every document.",
            f"Create the pipeline (PUT _ingest/pipeline/{missing[0]}) or remove the setting.",
        )
    unreadable = [p for p, a in answers.items() if not a.ok]
    if unreadable:
        return refused("index.pipeline", answers[unreadable[0]], "_ingest/pipeline")
    return ok("index.pipeline", "pipeline(s) exist: " + ", ".join(sorted(answers)))
