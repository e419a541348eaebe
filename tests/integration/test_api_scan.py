"""``scan``: every document exactly once, and no point in time or scroll left open on the server
however the iteration ends, checked through the server's own node stats."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import pytest
from api_support import fill, open_contexts

from sturdysearch import AsyncClient, Client
from sturdysearch.errors import NotFoundError

#: These tests also run against the security-on servers (TLS, passwords), connecting with the
#: ``connection`` fixture.
pytestmark = pytest.mark.sturdysearch_secured

SMALL = 5_000
LARGE = 100_000


def scan_ids(client: Client, index: str, **kwargs: Any) -> list[str]:
    return [hit["_id"] for hit in client.scan(index=index, **kwargs)]


def paginations(client: Client) -> list[str]:
    """Every way this server can scan: scroll always, PIT where it has a unique tiebreaker."""
    return ["pit", "scroll"] if client.dialect().scan_uses_pit else ["scroll"]


def test_scan_returns_each_document_once(client: Client, index_name: str) -> None:
    fill(client, index_name, SMALL)
    baseline = open_contexts(client)
    for pagination in paginations(client):
        ids = scan_ids(client, index_name, size=700, pagination=pagination)
        assert len(ids) == SMALL, pagination
        assert set(ids) == {str(i) for i in range(SMALL)}, pagination
    assert open_contexts(client) == baseline


def test_sliced_scans_read_each_document_once_between_them(client: Client, index_name: str) -> None:
    """``slice=(i, 3)`` for i in 0..2 (parallel readers, as Spark tasks are): disjoint, and
    together every document; each slice non-empty on a 3-shard index."""
    fill(client, index_name, SMALL, shards=3)
    baseline = open_contexts(client)
    for pagination in paginations(client):
        parts = [
            scan_ids(client, index_name, size=500, pagination=pagination, slice=(i, 3))
            for i in range(3)
        ]
        assert all(parts), pagination
        together = [doc_id for part in parts for doc_id in part]
        assert len(together) == SMALL and set(together) == {str(i) for i in range(SMALL)}
    assert scan_ids(client, index_name, slice=(0, 1)) != []  # one slice: the whole index
    with pytest.raises(ValueError, match="0 <= id < max"):
        scan_ids(client, index_name, slice=(3, 3))
    assert open_contexts(client) == baseline


def test_scan_auto_picks_pit_where_safe(client: Client) -> None:
    dialect = client.dialect()
    assert dialect.server is not None
    flavor, version = dialect.server.flavor, dialect.server.version_tuple
    expected = (flavor == "elasticsearch" and version >= (7, 12, 0)) or (
        flavor == "opensearch" and version >= (3, 3, 0)
    )
    assert dialect.scan_uses_pit is expected


def test_scan_with_query_source_and_sort(client: Client, index_name: str) -> None:
    fill(client, index_name, 1_000)
    hits = list(
        client.scan(
            index=index_name,
            query={"term": {"tag": "even"}},
            source=["n"],
            sort=[{"n": "desc"}],
            size=90,
        )
    )
    assert [h["_source"]["n"] for h in hits] == list(range(998, -1, -2))
    assert all(set(h["_source"]) == {"n"} for h in hits)


def test_scan_stopped_early_leaves_nothing_open(client: Client, index_name: str) -> None:
    fill(client, index_name, SMALL)
    baseline = open_contexts(client)
    for pagination in paginations(client):
        seen = []
        for hit in client.scan(index=index_name, size=5, pagination=pagination):
            seen.append(hit["_id"])
            if len(seen) == 10:
                break
        assert len(seen) == 10
        assert open_contexts(client) == baseline, pagination


def test_scan_consumer_failure_leaves_nothing_open(client: Client, index_name: str) -> None:
    fill(client, index_name, 500)
    baseline = open_contexts(client)
    for pagination in paginations(client):
        with pytest.raises(ZeroDivisionError):
            for n, _ in enumerate(client.scan(index=index_name, size=50, pagination=pagination)):
                if n == 120:
                    raise ZeroDivisionError
        assert open_contexts(client) == baseline, pagination


def test_scan_of_a_missing_index_raises(client: Client, index_name: str) -> None:
    with pytest.raises(NotFoundError):
        list(client.scan(index=f"{index_name}-absent"))


def test_async_scan_closed_early_leaves_nothing_open(
    client: Client, index_name: str, node_url: str, connection: dict[str, Any]
) -> None:
    fill(client, index_name, 2_000)
    baseline = open_contexts(client)

    async def run() -> tuple[int, list[str]]:
        async with AsyncClient([node_url], **connection) as aclient:
            total = 0
            async for _ in aclient.scan(index=index_name, size=300):
                total += 1
            first: list[str] = []
            async with contextlib.aclosing(aclient.scan(index=index_name, size=5)) as hits:
                async for hit in hits:
                    first.append(hit["_id"])
                    if len(first) == 10:
                        break
            return total, first

    total, first = asyncio.run(run())
    assert total == 2_000 and len(first) == 10
    assert open_contexts(client) == baseline


def test_scan_of_100k_documents(client: Client, index_name: str) -> None:
    """Load 100,000 documents over 5 shards, scan them by every method the server has (each id
    exactly once), and break off after 10: nothing stays open. 3-7 s per server on a quiet
    machine, about 30 s on a loaded one, so it runs every time (docs/compatibility.md)."""
    started = time.monotonic()
    fill(client, index_name, LARGE, shards=5, chunk=10_000)
    loaded = time.monotonic()
    baseline = open_contexts(client)
    for pagination in paginations(client):
        ids = scan_ids(client, index_name, size=1000, pagination=pagination)
        assert len(ids) == LARGE and len(set(ids)) == LARGE, pagination
        assert open_contexts(client) == baseline, pagination
        for seen, _ in enumerate(client.scan(index=index_name, size=1000, pagination=pagination)):
            if seen == 9:
                break
        assert open_contexts(client) == baseline, pagination
    print(
        f"\nload {loaded - started:.1f} s, scans {time.monotonic() - loaded:.1f} s "
        f"({', '.join(paginations(client))})"
    )
