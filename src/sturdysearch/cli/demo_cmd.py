"""``sturdysearch demo``: the project's main job, end to end, against a real local node.

Starts a local node (no Docker: the harness fetches the distribution from Maven Central), creates
an index, writes documents, searches them, prints what it found, and stops the node again.
"""

from __future__ import annotations

import argparse
import time
import uuid
from typing import Any

from sturdysearch import Client
from sturdysearch.cli.errors import CliError

DEFAULT_SERVER = "opensearch:2.19.6"

_DOCS = [
    {"service": "checkout", "level": "error", "message": "payment gateway timed out"},
    {"service": "checkout", "level": "info", "message": "order placed"},
    {"service": "search", "level": "warn", "message": "slow query on products index"},
    {"service": "auth", "level": "error", "message": "token refresh failed: upstream timed out"},
    {"service": "search", "level": "info", "message": "reindex finished"},
]


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "demo",
        help="start a local node, index and search documents, stop the node",
        description=__doc__,
    )
    parser.add_argument(
        "--server",
        default=DEFAULT_SERVER,
        help=f"flavor:version of the node to start (default {DEFAULT_SERVER})",
    )
    parser.add_argument(
        "--url",
        default=None,
        help="use this running cluster instead of starting a node",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.url:
        return _demo([args.url])
    from sturdysearch.testing.cluster import LocalCluster, ServerSpec

    try:
        spec = ServerSpec.parse(args.server)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    print(f"starting a local {spec.flavor} {spec.version} node (first run downloads it)...")
    started = time.monotonic()
    with LocalCluster(spec, nodes=1) as cluster:
        print(f"node up at {cluster.urls[0]} in {time.monotonic() - started:.1f} s")
        code = _demo(cluster.urls)
    print("node stopped")
    return code


def _demo(urls: list[str]) -> int:
    index = f"demo-logs-{uuid.uuid4().hex[:8]}"
    with Client(urls) as client:
        info = client.info()
        print(f"server: {info.flavor} {info.version} (cluster {info.cluster_name!r})")
        client.indices.create(
            index=index,
            mappings={
                "properties": {
                    "service": {"type": "keyword"},
                    "level": {"type": "keyword"},
                    "message": {"type": "text"},
                }
            },
        )
        try:
            for i, doc in enumerate(_DOCS):
                client.index(index=index, id=str(i), document=doc)
            client.indices.refresh(index=index)
            result = client.search(
                index=index,
                query={"match": {"message": "timed out"}},
                sort=[{"_score": "desc"}],
            )
            hits = result["hits"]["hits"]
            total = result["hits"]["total"]
            count = total["value"] if isinstance(total, dict) else total
            print(f"indexed {len(_DOCS)} documents into {index}; search 'timed out': {count} hits")
            for hit in hits:
                src = hit["_source"]
                print(
                    f"  {hit['_id']}  score={hit['_score']:.3f}  "
                    f"[{src['service']}/{src['level']}] {src['message']}"
                )
        finally:
            client.indices.delete(index=index, ignore=404)
    return 0
