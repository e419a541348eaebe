"""AsyncBulkIndexer against a real node: the same accounting as the blocking indexer."""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from sturdysearch import AsyncBulkIndexer, AsyncClient, Client
from sturdysearch.errors import DeadLetterError
from sturdysearch.testing.faults import Fault
from sturdysearch.testing.proxy import FaultProxy

#: These tests also run against the security-on servers (TLS, passwords), connecting with the
#: ``connection`` fixture.
pytestmark = pytest.mark.sturdysearch_secured

MAPPINGS = {"properties": {"n": {"type": "long"}, "text": {"type": "text"}}}


@pytest.fixture
def async_index(client: Client) -> Iterator[str]:
    name = f"abulk-{uuid.uuid4().hex[:10]}"
    client.indices.create(
        index=name, mappings=MAPPINGS, settings={"number_of_shards": 2, "number_of_replicas": 0}
    )
    yield name
    client.indices.delete(index=name, ignore=404)


def records(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()] if path.exists() else []


def test_async_every_document_accounted_through_resets(
    client: Client, proxy: FaultProxy, async_index: str, tmp_path: Path, connection: dict[str, Any]
) -> None:
    n = 6000
    bad = {i for i in range(n) if i % 1000 == 5}
    dlq = tmp_path / "dlq.jsonl"
    proxy.set_fault(Fault.random(0.05, seed=3).matching(path_regex="_bulk"))

    async def documents() -> AsyncIterator[dict[str, Any]]:
        for i in range(n):
            yield {"id": str(i), "n": "x" if i in bad else i, "text": f"line {i}"}

    async def run() -> Any:
        async with (
            AsyncClient([proxy.url], **connection) as aclient,
            AsyncBulkIndexer(aclient, async_index, dead_letter=dlq, max_actions=100) as bulk,
        ):
            await bulk.add_many(documents(), id_field="id")
            await bulk.index({"n": math.nan}, id="nan")
        return bulk.stats

    stats = asyncio.run(run())
    assert stats.pending == 0 and stats.added == n + 1
    assert stats.succeeded == n - len(bad) and stats.dead_lettered == len(bad) + 1
    assert stats.failed_requests > 0
    dead = records(dlq)
    assert sorted(next(iter(r["action"].values()))["_id"] for r in dead) == sorted(
        [str(i) for i in bad] + ["nan"]
    )
    client.indices.refresh(index=async_index)
    assert client.count(index=async_index)["count"] == n - len(bad)
    query = {"ids": {"values": [str(i) for i in bad]}}
    assert client.count(index=async_index, query=query)["count"] == 0


def test_async_lost_request_without_ids_is_unknown(
    client: Client, proxy: FaultProxy, async_index: str, tmp_path: Path, connection: dict[str, Any]
) -> None:
    dlq = tmp_path / "dlq.jsonl"
    proxy.set_fault(Fault.reset_after_request().times(1).matching(path_regex="_bulk"))

    async def run() -> Any:
        async with (
            AsyncClient([proxy.url], **connection) as aclient,
            AsyncBulkIndexer(aclient, async_index, dead_letter=dlq) as bulk,
        ):
            for i in range(20):
                await bulk.index({"n": i}, id=str(i) if i % 2 else None)
        return bulk.stats

    stats = asyncio.run(run())
    assert (stats.succeeded, stats.dead_lettered, stats.pending) == (10, 10, 0)
    assert {r["outcome"] for r in records(dlq)} == {"unknown"}
    client.indices.refresh(index=async_index)
    assert client.count(index=async_index)["count"] == 20  # applied once each


def test_async_unwritable_dead_letter_file_stops_it(
    node_url: str, async_index: str, connection: dict[str, Any]
) -> None:
    async def run() -> None:
        async with AsyncClient([node_url], **connection) as aclient:
            bulk = await AsyncBulkIndexer(
                aclient, async_index, dead_letter="/dev/full", max_actions=5
            ).start()
            with pytest.raises(DeadLetterError):
                for i in range(5000):
                    await bulk.index({"n": "x" if i % 5 == 0 else i}, id=str(i))
                    await asyncio.sleep(0.001)
            with pytest.raises(DeadLetterError) as info:
                await bulk.close()
            stats = bulk.stats
            assert stats.dead_lettered == 0 and stats.pending == len(info.value.records) > 0

    asyncio.run(run())
