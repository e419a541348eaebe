"""Identity: what the server is (flavor, version, build), whether all nodes run the same
version, and the dialect the client will speak to it.

``client.info()`` reads ``GET /`` (or ``GET /_nodes/_local`` where the root endpoint is
missing, as on Elasticsearch's integration-test builds). Amazon OpenSearch Serverless has no
root endpoint at all and a user without the ``monitor`` privilege is refused it: a 404 or 403
there is ``unknown`` with that explanation, never a crash, and the client then uses its
conservative dialect.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

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
    return [judge_versions(ctx.get("/_nodes/http"), seed_servers(ctx))]


def seed_servers(ctx: Context) -> dict[str, ServerInfo | str]:
    """What each configured URL says it is (``client.info()`` through that URL alone), or
    why it could not say; empty for a single URL or a client behind a proxy. The client
    takes its URLs for nodes of one cluster, so doctor asks each."""
    config = ctx.config
    if len(config.nodes) < 2 or getattr(config, "proxy", None) is not None:
        return {}
    from sturdysearch import Client

    urls = [n.url for n in config.nodes if (p := ctx.probes.get(n.url)) and p.answered]
    found: dict[str, ServerInfo | str] = {}

    def ask(url: str) -> None:
        try:
            with Client(
                [url],
                auth=config.auth,
                tls=config.tls,
                headers=dict(config.headers),
                allow_credentials_over_http=config.allow_credentials_over_http,
            ) as client:
                found[url] = client.info(timeout=ctx.options.timeout)
        except Exception as exc:  # the answer of a sick node: judged, not raised
            found[url] = f"{type(exc).__name__}: {exc}"[:200]

    threads = [threading.Thread(target=ask, args=(u,), daemon=True) for u in urls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(ctx.options.timeout + 1)
    return dict(found)


def _label(info: ServerInfo) -> str:
    return f"{info.flavor} {info.version}" + (
        f" (cluster {info.cluster_name})" if info.cluster_name else ""
    )


def judge_versions(answer: Answer, seeds: Mapping[str, ServerInfo | str] | None = None) -> Finding:
    """All nodes on one version (``_nodes``); mixed versions are a rolling upgrade in
    progress, or one left half done. ``seeds``: what each configured URL said it is, where
    there are several; URLs of different clusters (or flavors) fail."""
    known = {u: i for u, i in (seeds or {}).items() if isinstance(i, ServerInfo)}
    clusters = {(i.flavor, i.cluster_name) for i in known.values()}
    if len(clusters) > 1:
        listed = "; ".join(f"{u}: {_label(i)}" for u, i in sorted(known.items()))
        return Finding(
            "identity.versions",
            "fail",
            f"the URLs reach different clusters: {listed}",
            "The client takes all its URLs for nodes of one cluster and spreads the calls "
            "over them: a document written through one URL is missing through the other, "
            "searches answer differently call by call, and the dialect is that of whichever "
            "node answered first.",
            "Give the client the URLs of one cluster only (one client per cluster).",
            details={u: _label(i) for u, i in known.items()},
        )
    if not answer.ok:
        return refused("identity.versions", answer, "_nodes/http")
    versions: dict[str, list[str]] = {}
    for info in nodes_of(answer.body).values():
        versions.setdefault(str(info.get("version")), []).append(str(info.get("name")))
    for url, seed in known.items():
        if seed.version not in versions:
            versions.setdefault(seed.version, []).append(url)
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
