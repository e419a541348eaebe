"""Helpers of the ``test_api_*`` integration suites: what the server build can do, how many
search contexts it holds open, and bulk loading of test documents."""

from __future__ import annotations

from typing import Any

import pytest

from sturdysearch import Client
from sturdysearch._core.results import search_contexts

#: Server modules some APIs need. The integ-test builds the harness runs ship without them
#: (Elasticsearch 7.17-9.x, OpenSearch 1.x-2.x); OpenSearch 3.x includes them.
NEEDS = {
    "reindex": "_delete_by_query / _update_by_query",
    "lang-painless": "scripts",
    "lang-mustache": "search templates",
}


def modules(client: Client) -> set[str]:
    """Names of the modules and plugins of the node answering."""
    answer = client.request(
        "GET",
        "/_nodes/_local/plugins",
        params={"filter_path": "nodes.*.modules.name,nodes.*.plugins.name"},
    )
    names: set[str] = set()
    for node in (answer.body.get("nodes") or {}).values():
        for kind in ("modules", "plugins"):
            names.update(item["name"] for item in node.get(kind, []))
    return names


def require(client: Client, module: str) -> None:
    """Skip the test when the server build lacks ``module``, saying so."""
    if module not in modules(client):
        info = client.info()
        pytest.skip(
            f"{info} (this harness build) has no {module} module, which serves {NEEDS[module]}"
        )


def open_contexts(client: Client) -> dict[str, int]:
    """Search contexts held open on the server, from its own node stats."""
    return search_contexts(client.request("GET", "/_nodes/stats/indices/search").body)


def fill(client: Client, index: str, count: int, *, shards: int = 3, chunk: int = 5000) -> None:
    """Create ``index`` with ``shards`` shards and no replica, and load ``count`` documents with
    ids ``0``..``count-1`` and a field ``n`` equal to the id."""
    client.indices.create(
        index=index, settings={"number_of_shards": shards, "number_of_replicas": 0}
    )
    for start in range(0, count, chunk):
        operations: list[dict[str, Any]] = []
        for i in range(start, min(start + chunk, count)):
            operations.append({"index": {"_id": str(i)}})
            operations.append({"n": i, "tag": "even" if i % 2 == 0 else "odd"})
        answer = client.bulk(index=index, operations=operations, timeout=120)
        assert answer["errors"] is False
    client.indices.refresh(index=index)
