"""Identity: what the server is (flavor, version, build), whether all nodes run the same
version, and the dialect the client will speak to it.

``client.info()`` reads ``GET /`` (or ``GET /_nodes/_local`` where the root endpoint is
missing, as on Elasticsearch's integration-test builds). Amazon OpenSearch Serverless has no
root endpoint at all and a user without the ``monitor`` privilege is refused it: a 404 or 403
there is ``unknown`` with that explanation, never a crash, and the client then uses its
conservative dialect.
"""

from __future__ import annotations

from sturdysearch._core.dialect import ServerInfo, dialect_for
from sturdysearch.doctor.context import Answer, Context, nodes_of, refused
from sturdysearch.doctor.findings import Finding, ok, unknown
from sturdysearch.errors import ApiError

SUPPORTED = {"elasticsearch": (7, 10), "opensearch": (1, 0)}
"""The oldest release of each flavor the client is tested against."""


def check_server(ctx: Context) -> list[Finding]:
    try:
        server = ctx.client.info(timeout=ctx.options.timeout)
    except ApiError as exc:
        return [judge_refused_root(exc.status)]
    ctx.server = server
    return [judge_server(server)]


def judge_refused_root(status: int) -> Finding:
    if status in (403, 404):
        return unknown(
            "identity.server",
            f"the server refused to say what it is (HTTP {status} on GET /)",
            "Amazon OpenSearch Serverless has no root endpoint, and a user without the "
            "cluster 'monitor' privilege is refused it (403). The client then speaks its "
            "conservative dialect (scan uses scroll).",
            "Nothing to do for Serverless; elsewhere grant the user the 'monitor' cluster "
            "privilege (Elasticsearch) or cluster:monitor/main (OpenSearch) if you want the "
            "version-specific features.",
        )
    if status == 401:
        return unknown(
            "identity.server",
            "not checked: the credentials were refused (401)",
            "The server requires credentials this client does not have; see auth.credentials.",
            "Fix the credentials first.",
        )
    return unknown("identity.server", f"GET / answered HTTP {status}")


def judge_server(server: ServerInfo) -> Finding:
    build = f", build {server.build_flavor}" if server.build_flavor else ""
    cluster = f", cluster {server.cluster_name}" if server.cluster_name else ""
    summary = f"{server.flavor} {server.version}{build}{cluster}"
    oldest = SUPPORTED.get(server.flavor)
    if oldest is None:
        return Finding(
            "identity.server",
            "warn",
            f"not recognized as Elasticsearch or OpenSearch: {summary}",
            "The root endpoint answers with a version but neither flavor's markers; the "
            "client treats it as Elasticsearch-compatible on a best-effort basis.",
            "Check that the URL points at the cluster and not at a proxy or another product.",
            details={"version": server.version},
        )
    if server.version_tuple[:2] < oldest:
        return Finding(
            "identity.server",
            "warn",
            f"{summary}: older than the oldest tested release",
            "Requests may use forms this release does not know (typeless document paths need "
            "Elasticsearch 7+).",
            f"Upgrade the cluster; the oldest tested {server.flavor} is {oldest[0]}.{oldest[1]}.",
        )
    return ok(
        "identity.server",
        summary,
        flavor=server.flavor,
        version=server.version,
        build_flavor=server.build_flavor,
    )


def check_versions(ctx: Context) -> list[Finding]:
    return [judge_versions(ctx.get("/_nodes/http"))]


def judge_versions(answer: Answer) -> Finding:
    """All nodes on one version (``_nodes``); mixed versions are a rolling upgrade in
    progress, or one left half done."""
    if not answer.ok:
        return refused("identity.versions", answer, "_nodes/http")
    versions: dict[str, list[str]] = {}
    for info in nodes_of(answer.body).values():
        versions.setdefault(str(info.get("version")), []).append(str(info.get("name")))
    if len(versions) > 1:
        listed = "; ".join(f"{v} on {', '.join(sorted(n))}" for v, n in sorted(versions.items()))
        return Finding(
            "identity.versions",
            "warn",
            f"mixed versions: {listed}",
            "Nodes run different versions: a rolling upgrade in progress or left half done. "
            "Shards cannot move from a newer node to an older one, and some APIs answer "
            "differently depending on the node.",
            "Finish the upgrade (or roll back) so that every node runs one version.",
            details={"versions": {v: sorted(n) for v, n in versions.items()}},
        )
    if not versions:
        return unknown("identity.versions", "_nodes/http listed no node")
    ((version, names),) = versions.items()
    return ok("identity.versions", f"all {len(names)} node(s) run {version}")


def check_dialect(ctx: Context) -> list[Finding]:
    dialect = dialect_for(ctx.server)
    scan = "PIT + search_after" if dialect.scan_uses_pit else "scroll"
    summary = f"speaks to {dialect.describe()}: scan uses {scan}"
    if dialect.warning:
        return [
            Finding(
                "identity.dialect",
                "warn",
                summary,
                dialect.warning,
                "Run a release the client is tested against (docs/compatibility.md).",
            )
        ]
    return [ok("identity.dialect", summary)]
