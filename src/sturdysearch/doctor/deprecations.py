"""Deprecations before an upgrade: ``_migration/deprecations`` (Elasticsearch).

Settings and mappings that the next major refuses make the upgraded node fail to start or the
index fail to open; the API lists them while there is still time. OpenSearch has no such API
(its upgrade notes list breaking changes), and Elasticsearch builds without the x-pack
deprecation module answer "no handler" or 405 (:data:`NOT_SERVED`): both are ``unknown``,
with a note.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sturdysearch.doctor.context import Answer, Context, refused
from sturdysearch.doctor.findings import Finding, ok, unknown

SECTIONS = (
    "cluster_settings",
    "node_settings",
    "index_settings",
    "ml_settings",
    "data_streams",
    "templates",
    "ilm_policies",
)


def check_deprecations(ctx: Context) -> list[Finding]:
    if ctx.flavor == "opensearch":
        return [
            unknown(
                "upgrade.deprecations",
                "OpenSearch has no deprecation API",
                "OpenSearch lists breaking changes in its release notes instead.",
                "Read the breaking changes of the target version before upgrading, and run "
                "the upgrade on a copy of the cluster first.",
            )
        ]
    return [judge_deprecations(ctx.get("/_migration/deprecations"))]


def items(body: Any) -> list[Mapping[str, Any]]:
    """Every deprecation in the answer, whatever section (index ones are per index)."""
    found: list[Mapping[str, Any]] = []
    if not isinstance(body, Mapping):
        return found
    for section in SECTIONS:
        value = body.get(section)
        groups = value.values() if isinstance(value, Mapping) else [value]
        for group in groups:
            if isinstance(group, list):
                found += [i for i in group if isinstance(i, Mapping)]
    return found


NOT_SERVED = ("no handler", "Incorrect HTTP method", "invalid_index_name_exception")
"""How a build without the deprecation module answers: 9.5 "no handler found for uri";
7.17 and 8.19 route ``/_migration/deprecations`` to the document API instead (405
"Incorrect HTTP method ... allowed: [POST]"), or to the index API for other methods."""


def judge_deprecations(answer: Answer) -> Finding:
    text = answer.error_text() + " " + str(answer.body)[:500]
    if answer.status in (400, 404, 405) and any(marker in text for marker in NOT_SERVED):
        return unknown(
            "upgrade.deprecations",
            "this build has no deprecation API",
            "The server does not serve _migration/deprecations (a build without the x-pack "
            "deprecation module).",
            "Check deprecations with the default distribution or Kibana's Upgrade Assistant.",
        )
    if not answer.ok:
        return refused("upgrade.deprecations", answer, "_migration/deprecations")
    found = items(answer.body)
    if not found:
        return ok("upgrade.deprecations", "no deprecated settings or mappings in use")
    critical = [i for i in found if i.get("level") == "critical"]
    first = (critical or found)[0]
    return Finding(
        "upgrade.deprecations",
        "warn",
        f"{len(found)} deprecation(s), {len(critical)} critical: {first.get('message')}",
        "Critical ones block the upgrade to the next major (a node does not start, an index "
        "does not open); warnings are behaviour that changes.",
        "Resolve the critical items first; each item's url explains the change: "
        f"{first.get('url', '')}",
        details={"count": len(found), "critical": len(critical)},
    )
