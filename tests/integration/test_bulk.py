"""BulkIndexer against real nodes: every document ends indexed or dead-lettered, exactly once.

The accounting checks are the point of every test: the index holds exactly the documents that
should be there (count, and no id that should not), the dead-letter file holds exactly the
others, nothing twice, and ``added == succeeded + dead_lettered`` after ``close()``. A failure
that every document would meet (an unreachable cluster, refused credentials, an index that is
invalid, missing, closed or read-only) stops the load with one ``BulkAbortedError`` instead,
and the same accounting holds for what the indexer took.

The tests that take ``indexers`` run against both drivers in turn: the threaded
``BulkIndexer`` and the asyncio ``AsyncBulkIndexer`` (on an ``AsyncClient``, driven through the
blocking facade of ``conftest.py``), as the client's own integration tests do.
"""

from __future__ import annotations

import math
import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import Blocking, LoopThread

from sturdysearch import (
    AsyncBulkIndexer,
    AsyncClient,
    BulkIndexer,
    BulkStats,
    Client,
    bulk_index,
    replay_dead_letters,
)
from sturdysearch._async.bulk import async_bulk_index, async_replay_dead_letters
from sturdysearch._core.events import Event, Tracer
from sturdysearch.auth import BasicAuth
from sturdysearch.errors import (
    AuthenticationError,
    AuthorizationError,
    BulkAbortedError,
    ConnectionError,
    DeadLetterError,
    NoLiveNodesError,
)
from sturdysearch.testing.faults import Fault
from sturdysearch.testing.proxy import FaultProxy

#: These tests also run against the security-on servers (TLS, passwords), connecting with the
#: ``connection`` fixture.
pytestmark = pytest.mark.sturdysearch_secured

MAPPINGS = {
    "dynamic": "strict",
    "properties": {
        "@timestamp": {"type": "date"},
        "level": {"type": "keyword"},
        "status": {"type": "integer"},
        "message": {"type": "text"},
        "n": {"type": "long"},
    },
}
SETTINGS = {"number_of_shards": 2, "number_of_replicas": 0}


def log_doc(i: int, *, bad: bool = False) -> dict[str, Any]:
    return {
        "@timestamp": f"2024-05-01T12:{i // 60000 % 60:02d}:{i // 1000 % 60:02d}.{i % 1000:03d}Z",
        "level": ("info", "warn", "error")[i % 3],
        "status": "not-a-number" if bad else 200 + i % 300,
        "message": f"GET /api/orders/{i} answered in {i % 97} ms",
        "n": i,
    }


def read_dead_letters(path: str | Path) -> list[dict[str, Any]]:
    if not os.path.exists(path):
        return []
    with open(path, "rb") as f:
        return [orjson.loads(line) for line in f if line.strip()]


def dead_ids(records: list[dict[str, Any]]) -> list[str]:
    return [next(iter(r["action"].values()))["_id"] for r in records]


def assert_index_holds_exactly(client: Client, index: str, valid: set[str], bad: set[str]) -> None:
    """Count equal to the valid ids and none of the bad ids: since only ids of
    ``valid | bad`` were sent, the index holds exactly ``valid``, each once."""
    client.indices.refresh(index=index)
    assert client.count(index=index)["count"] == len(valid)
    if bad:
        hits = client.count(index=index, query={"ids": {"values": sorted(bad)}})["count"]
        assert hits == 0


def assert_accounted(stats: BulkStats) -> None:
    assert stats.pending == 0
    assert stats.added == stats.succeeded + stats.dead_lettered


@pytest.fixture
def bulk_index_name(client: Client) -> Iterator[str]:
    name = f"bulk-{uuid.uuid4().hex[:10]}"
    client.indices.create(index=name, mappings=MAPPINGS, settings=SETTINGS)
    yield name
    client.indices.delete(index=name, ignore=404)


@pytest.fixture
def dlq(tmp_path: Path) -> Path:
    return tmp_path / "dlq.jsonl"


class Indexers:
    """Indexers of one driver, on a client of the same driver, with the same arguments:
    ``indexers(index, **options)`` is a ``BulkIndexer``, or an ``AsyncBulkIndexer`` behind the
    blocking facade; ``bulk_index`` and ``replay`` are the one-call helpers of that driver."""

    def __init__(
        self, kind: str, node_url: str, loop_thread: LoopThread, connection: dict[str, Any]
    ) -> None:
        self.kind = kind
        self._loop = loop_thread
        if kind == "sync":
            self._client: Any = Client([node_url], **connection)
            self.tracer: Tracer = self._client.tracer
        else:
            self._client = loop_thread.run(_make_async_client(node_url, connection))
            self.tracer = self._client.tracer

    def __call__(self, index: str | None, **options: Any) -> Any:
        if self.kind == "sync":
            return BulkIndexer(self._client, index, **options)
        return Blocking(AsyncBulkIndexer(self._client, index, **options), self._loop)

    def bulk_index(self, documents: Any, index: str, **options: Any) -> BulkStats:
        if self.kind == "sync":
            return bulk_index(self._client, documents, index, **options)
        stats: BulkStats = self._loop.run(
            async_bulk_index(self._client, documents, index, **options)
        )
        return stats

    def replay(self, path: Path, **options: Any) -> BulkStats:
        if self.kind == "sync":
            return replay_dead_letters(self._client, path, **options)
        stats: BulkStats = self._loop.run(async_replay_dead_letters(self._client, path, **options))
        return stats

    def close(self) -> None:
        if self.kind == "sync":
            self._client.close()
        else:
            self._loop.run(self._client.close())


async def _make_async_client(url: str, connection: dict[str, Any]) -> AsyncClient:
    return AsyncClient([url], **connection)


@pytest.fixture(params=["sync", "async"])
def indexers(
    request: pytest.FixtureRequest,
    node_url: str,
    loop_thread: LoopThread,
    connection: dict[str, Any],
) -> Iterator[Indexers]:
    made = Indexers(request.param, node_url, loop_thread, connection)
    yield made
    made.close()


def test_twenty_thousand_logs_through_connection_resets(
    client: Client, proxy: FaultProxy, bulk_index_name: str, dlq: Path, connection: dict[str, Any]
) -> None:
    """20,000 documents with ids, 0.1% violating the mapping, through a proxy that resets 2% of
    the requests (before or after they reach the node)."""
    n = 20_000
    bad = {str(i) for i in range(7, n, 1000)}
    proxy.set_fault(Fault.random(0.02, seed=7).matching(path_regex="_bulk"))
    with (
        Client([proxy.url], **connection) as via_proxy,
        BulkIndexer(
            via_proxy, bulk_index_name, dead_letter=dlq, max_actions=100, workers=3
        ) as bulk,
    ):
        for i in range(n):
            bulk.index(log_doc(i, bad=str(i) in bad), id=str(i))
    stats = bulk.stats
    assert_accounted(stats)
    assert stats.added == n and stats.dead_lettered == len(bad)
    assert stats.created + stats.updated == n - len(bad)  # a resend overwrites: "updated"
    assert stats.failed_requests > 0 and stats.retried_requests > 0  # the resets did happen
    assert stats.retried_documents >= stats.retried_requests
    records = read_dead_letters(dlq)
    assert sorted(dead_ids(records)) == sorted(bad)
    assert {r["outcome"] for r in records} == {"rejected"}
    assert {r["status"] for r in records} == {400}
    assert records[0]["document"]["status"] == "not-a-number"
    assert os.stat(dlq).st_mode & 0o777 == 0o600
    assert_index_holds_exactly(client, bulk_index_name, {str(i) for i in range(n)} - bad, bad)


def test_lost_request_resends_documents_with_ids_and_dead_letters_the_others(
    client: Client, proxy: FaultProxy, bulk_index_name: str, dlq: Path, connection: dict[str, Any]
) -> None:
    """The node applies the batch, then the connection is reset before its answer: documents
    with an id are sent again (no duplicate: same id), documents without one are
    dead-lettered as ``unknown`` (they are in the index, once)."""
    proxy.set_fault(Fault.reset_after_request().times(1).matching(path_regex="_bulk"))
    with (
        Client([proxy.url], **connection) as via_proxy,
        BulkIndexer(via_proxy, bulk_index_name, dead_letter=dlq, max_actions=100) as bulk,
    ):
        for i in range(60):
            bulk.index(log_doc(i), id=str(i) if i % 2 == 0 else None)
    stats = bulk.stats
    assert_accounted(stats)
    assert stats.dead_lettered == 30 and stats.succeeded == 30
    records = read_dead_letters(dlq)
    assert {r["outcome"] for r in records} == {"unknown"}
    assert sorted(r["document"]["n"] for r in records) == list(range(1, 60, 2))
    client.indices.refresh(index=bulk_index_name)
    assert client.count(index=bulk_index_name)["count"] == 60  # each document exactly once


def test_truncated_answer_is_not_trusted(
    client: Client, proxy: FaultProxy, bulk_index_name: str, dlq: Path, connection: dict[str, Any]
) -> None:
    proxy.set_fault(Fault.truncate(after_bytes=150).times(2).matching(path_regex="_bulk"))
    with (
        Client([proxy.url], **connection) as via_proxy,
        BulkIndexer(via_proxy, bulk_index_name, dead_letter=dlq, max_actions=50) as bulk,
    ):
        for i in range(200):
            bulk.index(log_doc(i), id=str(i))
    stats = bulk.stats
    assert_accounted(stats)
    assert stats.succeeded == 200 and stats.failed_requests >= 2
    assert not dlq.exists()  # nothing failed: the empty file it created was removed
    assert_index_holds_exactly(client, bulk_index_name, {str(i) for i in range(200)}, set())


def test_413_splits_the_batch_and_a_lone_action_is_too_large(
    client: Client, proxy: FaultProxy, bulk_index_name: str, dlq: Path, connection: dict[str, Any]
) -> None:
    proxy.set_fault(Fault.status(413).times(3).matching(path_regex="_bulk"))
    with (
        Client([proxy.url], **connection) as via_proxy,
        BulkIndexer(via_proxy, bulk_index_name, dead_letter=dlq, max_actions=8) as bulk,
    ):
        for i in range(8):
            bulk.index(log_doc(i), id=str(i))
    stats = bulk.stats
    assert_accounted(stats)
    assert stats.splits == 3 and stats.succeeded == 8  # 8 -> 4+4 -> 2+2+2+2, all pass

    proxy.set_fault(Fault.status(413).matching(path_regex="_bulk"))
    with (
        Client([proxy.url], **connection) as via_proxy,
        BulkIndexer(via_proxy, bulk_index_name, dead_letter=dlq, max_actions=2) as bulk,
    ):
        bulk.index(log_doc(100), id="100")
        bulk.index(log_doc(101), id="101")
    assert bulk.stats.dead_lettered == 2
    assert {r["outcome"] for r in read_dead_letters(dlq)} == {"too_large"}


def test_unserializable_documents_are_dead_lettered_and_the_stream_goes_on(
    indexers: Indexers, bulk_index_name: str, dlq: Path
) -> None:
    cycle: dict[str, Any] = {"n": 3}
    cycle["me"] = cycle
    docs: list[Any] = [
        log_doc(0),
        {"n": math.nan},
        {"n": 1, "when": object()},
        cycle,
        {"n": 2**80},
        log_doc(5),
    ]
    with indexers(bulk_index_name, dead_letter=dlq) as bulk:
        for i, doc in enumerate(docs):
            bulk.index(doc, id=str(i))
    assert_accounted(bulk.stats)
    assert bulk.stats.succeeded == 2 and bulk.stats.dead_lettered == 4
    records = read_dead_letters(dlq)
    assert {r["outcome"] for r in records} == {"unserializable"}
    assert dead_ids(records) == ["1", "2", "3", "4"]
    assert "document['n']" in records[0]["reason"] and "nan" in records[0]["document_repr"]
    assert "document['when']" in records[1]["reason"]


def test_operations_and_their_results(
    indexers: Indexers, client: Client, bulk_index_name: str, dlq: Path
) -> None:
    successes: list[Any] = []
    failures: list[Any] = []
    progress: list[BulkStats] = []
    with indexers(
        bulk_index_name,
        dead_letter=dlq,
        on_success=successes.append,
        on_failure=failures.append,
        on_progress=progress.append,
    ) as bulk:
        bulk.create(log_doc(1), id="1")
        bulk.index(log_doc(2), id="2")
    with indexers(bulk_index_name, dead_letter=dlq) as bulk:
        bulk.create(log_doc(1), id="1")  # exists: 409
        bulk.update("2", doc={"level": "debug"})
        bulk.update("2", doc={"level": "debug"})  # same again: noop
        bulk.update("2", doc={"n": 3})
        bulk.delete("1")
        bulk.delete("404")
        bulk.update("404", doc={"level": "x"})  # missing: 404
    stats = bulk.stats
    assert_accounted(stats)
    assert (stats.updated, stats.noop, stats.deleted, stats.not_found) == (2, 1, 1, 1)
    assert stats.dead_lettered == 2
    records = read_dead_letters(dlq)
    assert [(r["status"], next(iter(r["action"]))) for r in records] == [
        (409, "create"),
        (404, "update"),
    ]
    assert sorted((s.op, s.id, s.result) for s in successes) == [
        ("create", "1", "created"),
        ("index", "2", "created"),
    ]
    assert not failures and progress and progress[-1].succeeded == 2
    assert client.get(index=bulk_index_name, id="2")["_source"] == {
        **log_doc(2),
        "level": "debug",
        "n": 3,
    }


def test_delivery_timeout_bounds_every_document(
    proxy: FaultProxy, bulk_index_name: str, dlq: Path, connection: dict[str, Any]
) -> None:
    """A node that never answers: every document is dead-lettered within the delivery
    timeout (plus a little), none waits forever."""
    proxy.set_fault(Fault.blackhole().matching(path_regex="_bulk"))
    started = time.monotonic()
    with (
        Client([proxy.url], **connection) as via_proxy,
        BulkIndexer(
            via_proxy, bulk_index_name, dead_letter=dlq, max_actions=10, delivery_timeout=3.0
        ) as bulk,
    ):
        for i in range(50):
            bulk.index(log_doc(i), id=str(i) if i >= 10 else None)  # the first batch: no ids
    elapsed = time.monotonic() - started
    assert elapsed < 8.0
    assert_accounted(bulk.stats)
    assert bulk.stats.dead_lettered == 50
    records = read_dead_letters(dlq)
    # The first batch was in flight when time ran out: without ids, its fate is unknown; the
    # others were either in flight with ids or never sent: exhausted.
    unknown = sorted(r["document"]["n"] for r in records if r["outcome"] == "unknown")
    assert unknown == list(range(10))
    assert {r["outcome"] for r in records} == {"unknown", "exhausted"}


def test_dead_letter_file_that_cannot_be_written_stops_the_indexer(
    client: Client, bulk_index_name: str, tmp_path: Path
) -> None:
    with pytest.raises(FileNotFoundError):
        BulkIndexer(client, bulk_index_name, dead_letter=tmp_path / "no" / "such" / "dir.jsonl")
    bulk = BulkIndexer(client, bulk_index_name, dead_letter="/dev/full", max_actions=10)
    raised: DeadLetterError | None = None
    added = 0
    try:
        for i in range(10_000):
            bulk.index(log_doc(i, bad=i % 10 == 3), id=str(i))
            added += 1
            time.sleep(0.0005)
    except DeadLetterError as exc:
        raised = exc
    with pytest.raises(DeadLetterError) as at_close:
        bulk.close()
    assert raised is not None and added < 10_000  # it stopped taking documents
    assert "No space left" in str(raised) or "ENOSPC" in repr(raised.__cause__)
    stats = bulk.stats
    records = at_close.value.records
    # Nothing dropped: the failures not written are in the exception, counted as pending.
    assert stats.dead_lettered == 0 and stats.pending == len(records) > 0
    assert stats.added == stats.succeeded + len(records)
    assert all(orjson.loads(r)["outcome"] == "rejected" for r in records)


def test_keyboard_interrupt_in_the_producer_still_delivers_what_was_added(
    client: Client, bulk_index_name: str, dlq: Path
) -> None:
    def documents() -> Iterator[dict[str, Any]]:
        for i in range(5000):
            if i == 3000:
                raise KeyboardInterrupt
            yield log_doc(i)

    with (
        pytest.raises(KeyboardInterrupt),
        BulkIndexer(client, bulk_index_name, dead_letter=dlq, flush_interval=30.0) as bulk,
    ):
        bulk.add_many(documents(), id_field="n")
    assert bulk.stats.added == 3000
    assert_accounted(bulk.stats)
    assert_index_holds_exactly(client, bulk_index_name, {str(i) for i in range(3000)}, set())


def test_replay_sends_again_and_keeps_what_still_fails(
    indexers: Indexers, client: Client, bulk_index_name: str, tmp_path: Path
) -> None:
    first = tmp_path / "first.jsonl"
    stats = indexers.bulk_index(
        (log_doc(i, bad=i % 4 == 0) for i in range(40)),
        bulk_index_name,
        id_field="n",
        dead_letter=first,
    )
    assert stats.dead_lettered == 10
    # Replayed unchanged, they fail again, into a new file; the old one is left alone.
    second = tmp_path / "second.jsonl"
    again = indexers.replay(first, dead_letter=second)
    assert again.added == 10 and again.dead_lettered == 10
    assert len(read_dead_letters(first)) == 10
    assert sorted(dead_ids(read_dead_letters(second))) == sorted(dead_ids(read_dead_letters(first)))
    # Fix the cause (a mapping that takes the field as text), replay: nothing fails any more.
    client.indices.delete(index=bulk_index_name)
    mappings = {**MAPPINGS, "properties": {**MAPPINGS["properties"], "status": {"type": "keyword"}}}
    client.indices.create(index=bulk_index_name, mappings=mappings, settings=SETTINGS)
    third = tmp_path / "third.jsonl"
    fixed = indexers.replay(second, dead_letter=third)
    assert fixed.succeeded == 10 and fixed.dead_lettered == 0 and not third.exists()
    assert_index_holds_exactly(
        client, bulk_index_name, set(dead_ids(read_dead_letters(first))), set()
    )


def test_trace_events(indexers: Indexers, bulk_index_name: str, dlq: Path) -> None:
    events: list[Any] = []
    unsubscribe = indexers.tracer.subscribe(events.append)
    try:
        with indexers(bulk_index_name, dead_letter=dlq, max_actions=5) as bulk:
            for i in range(10):
                bulk.index(log_doc(i, bad=i == 4), id=str(i))
    finally:
        unsubscribe()
    batches = [e.fields for e in events if e.name == "bulk.batch"]
    assert len(batches) == 2 and sum(b["succeeded"] for b in batches) == 9
    assert [e.fields["count"] for e in events if e.name == "bulk.dead_letter"] == [1]
    (closed,) = [e.fields for e in events if e.name == "bulk.closed"]
    assert closed["added"] == 10 and closed["dead_lettered"] == 1


# -- a failure every document would meet stops the load ---------------------------------------

#: A memory bound small enough that the producer blocks on it (and so hears of a stop at
#: once, and the dead-letter file holds at most this much), large enough for two batches.
STOP_OPTIONS: dict[str, Any] = {
    "max_actions": 100,
    "max_bytes": 64 * 1024,
    "max_pending_bytes": 256 * 1024,
    "flush_interval": 0.05,
}
#: The shortest encoded ``log_doc`` action is longer than this: the dead-letter file of a stop
#: holds at most ``max_pending_bytes / MIN_ACTION`` documents (and the batches in flight).
MIN_ACTION = 150


def load_until_stopped(
    bulk: Any, n: int = 200_000, doc: Callable[[int], dict[str, Any]] = log_doc
) -> tuple[int, BulkAbortedError]:
    """Index up to ``n`` documents until the indexer refuses one with ``BulkAbortedError``;
    then ``close()`` must raise that same error. Returns how many were taken, and the error
    (its stats final)."""
    taken = 0
    with pytest.raises(BulkAbortedError) as adding:
        for i in range(n):
            bulk.index(doc(i), id=str(i))
            taken += 1
    with pytest.raises(BulkAbortedError) as again:
        bulk.index(doc(-1), id="late")  # at once, every time
    with pytest.raises(BulkAbortedError) as closing:
        bulk.close()
    assert again.value is adding.value and closing.value is adding.value
    return taken, adding.value


def assert_stopped_cleanly(
    error: BulkAbortedError, taken: int, dlq: Path, *, n: int = 200_000
) -> list[dict[str, Any]]:
    """Every document taken is accounted for once (applied, or in the dead-letter file), the
    stream was not drained into the file, and the error names the file. Returns the records."""
    stats = error.stats
    assert stats.added == taken < n
    assert stats.pending == 0 and stats.added == stats.succeeded + stats.dead_lettered
    records = read_dead_letters(dlq)
    assert len(records) == stats.dead_lettered
    ids = dead_ids(records)
    assert len(set(ids)) == len(ids)
    bound = STOP_OPTIONS["max_pending_bytes"] // MIN_ACTION + 2 * STOP_OPTIONS["max_actions"]
    assert stats.dead_lettered <= bound, (stats.dead_lettered, bound)
    assert error.dead_letter == str(dlq) and str(dlq) in str(error)
    assert error.__cause__ is error.cause is not None
    return records


def test_an_unreachable_cluster_stops_the_load_within_abort_after(
    indexers: Indexers,
    proxy: FaultProxy,
    loop_thread: LoopThread,
    connection: dict[str, Any],
    bulk_index_name: str,
    dlq: Path,
) -> None:
    """Every connection refused (the cluster is down, or the address is wrong): a warning at
    once, then after ``abort_after`` one ``BulkAbortedError``, and a dead-letter file of what
    was buffered, not of the whole stream."""
    proxy.set_fault(Fault.refuse())
    via = Indexers(indexers.kind, proxy.url, loop_thread, connection)
    events: list[Event] = []
    via.tracer.subscribe(events.append)
    try:
        started = time.monotonic()
        bulk = via(bulk_index_name, dead_letter=dlq, abort_after=3.0, **STOP_OPTIONS)
        taken, error = load_until_stopped(bulk)
        elapsed = time.monotonic() - started
    finally:
        via.close()
    assert 3.0 <= elapsed < 3.0 + 5.0, elapsed  # the bound, plus a probe interval's slack
    assert isinstance(error.cause, (ConnectionError, NoLiveNodesError))
    assert "no answer from the cluster for 3" in error.reason and "abort_after" in error.reason
    records = assert_stopped_cleanly(error, taken, dlq)
    assert error.stats.succeeded == 0 and {r["outcome"] for r in records} == {"aborted"}
    assert [e.name for e in events].count("bulk.unanswered") == 1
    assert [e.name for e in events].count("bulk.aborted") == 1


def test_a_blip_shorter_than_abort_after_loses_nothing(
    indexers: Indexers,
    client: Client,
    proxy: FaultProxy,
    loop_thread: LoopThread,
    connection: dict[str, Any],
    bulk_index_name: str,
    dlq: Path,
) -> None:
    """Connections refused until the indexer has noticed (its ``bulk.unanswered`` warning),
    then the node is back: the load finishes, nothing dead-lettered, nothing aborted."""
    via = Indexers(indexers.kind, proxy.url, loop_thread, connection)

    def heal_once_noticed(event: Event) -> None:
        if event.name == "bulk.unanswered":
            proxy.set_fault(None)

    via.tracer.subscribe(heal_once_noticed)
    proxy.set_fault(Fault.refuse())
    try:
        with via(bulk_index_name, dead_letter=dlq, abort_after=30.0, **STOP_OPTIONS) as bulk:
            for i in range(2000):
                bulk.index(log_doc(i), id=str(i))
        stats = bulk.stats
    finally:
        via.close()
    assert_accounted(stats)
    assert (stats.succeeded, stats.dead_lettered) == (2000, 0)
    assert stats.failed_requests >= 1 and stats.retried_requests >= 1
    assert_index_holds_exactly(client, bulk_index_name, {str(i) for i in range(2000)}, set())


def test_an_invalid_index_name_stops_after_the_first_batch(indexers: Indexers, dlq: Path) -> None:
    bulk = indexers("Not-Lower-Case", dead_letter=dlq, **STOP_OPTIONS)
    taken, error = load_until_stopped(bulk)
    assert error.stats.batches <= 2  # the first answer (the second worker's may have left)
    assert "not a valid index name" in error.reason or "rejected the _bulk request" in error.reason
    records = assert_stopped_cleanly(error, taken, dlq)
    assert {r["outcome"] for r in records} <= {"rejected", "aborted"}
    assert {r["error_type"] for r in records if r["outcome"] == "rejected"} == {
        "invalid_index_name_exception"
    }


def test_a_closed_index_stops_the_load(
    indexers: Indexers, client: Client, bulk_index_name: str, dlq: Path
) -> None:
    client.indices.close(index=bulk_index_name)
    taken, error = load_until_stopped(indexers(bulk_index_name, dead_letter=dlq, **STOP_OPTIONS))
    assert f"index [{bulk_index_name}] is closed" in error.reason
    assert error.stats.batches <= 2
    records = assert_stopped_cleanly(error, taken, dlq)
    assert {r["error_type"] for r in records if r["outcome"] == "rejected"} == {
        "index_closed_exception"
    }


def test_a_read_only_index_stops_the_load(
    indexers: Indexers, client: Client, bulk_index_name: str, dlq: Path
) -> None:
    """The block a full disk leaves (``read_only_allow_delete``) stays until an operator lifts
    it: retrying it for the delivery timeout would only defer the same rejection."""
    client.indices.put_settings(
        index=bulk_index_name, settings={"index.blocks.read_only_allow_delete": True}
    )
    try:
        taken, error = load_until_stopped(
            indexers(bulk_index_name, dead_letter=dlq, **STOP_OPTIONS)
        )
    finally:
        client.indices.put_settings(
            index=bulk_index_name, settings={"index.blocks.read_only_allow_delete": None}
        )
    assert "blocked against writes" in error.reason
    assert "read_only_allow_delete" in error.reason  # how to lift it
    assert error.stats.batches <= 2 and error.stats.retried_requests == 0
    records = assert_stopped_cleanly(error, taken, dlq)
    assert {r["error_type"] for r in records if r["outcome"] == "rejected"} == {
        "cluster_block_exception"
    }


def test_a_missing_index_with_auto_create_off_stops_the_load(
    indexers: Indexers, client: Client, dlq: Path
) -> None:
    name = f"bulk-missing-{uuid.uuid4().hex[:8]}"
    client.cluster.put_settings(persistent={"action.auto_create_index": False})
    try:
        taken, error = load_until_stopped(indexers(name, dead_letter=dlq, **STOP_OPTIONS))
    finally:
        client.cluster.put_settings(persistent={"action.auto_create_index": None})
    assert f"index [{name}] does not exist" in error.reason
    assert "action.auto_create_index" in error.reason
    records = assert_stopped_cleanly(error, taken, dlq)
    rejected = [r for r in records if r["outcome"] == "rejected"]
    assert rejected and {(r["status"], r["error_type"]) for r in rejected} == {
        (404, "index_not_found_exception")
    }
    assert {r["action"]["index"]["_index"] for r in records} == {name}
    assert not client.indices.exists(index=name)


def test_wrong_credentials_stop_the_load(
    indexers: Indexers,
    search_cluster: Any,
    loop_thread: LoopThread,
    connection: dict[str, Any],
    node_url: str,
    bulk_index_name: str,
    dlq: Path,
) -> None:
    """401 on the first request: one error naming the credentials as what to fix, the
    password nowhere in it."""
    if search_cluster.security is None:
        pytest.skip("the cluster has security off: it takes any credentials, so none is wrong")
    wrong = "not-" + search_cluster.security.password
    options = {**connection, "auth": BasicAuth(search_cluster.security.user, wrong)}
    made = Indexers(indexers.kind, node_url, loop_thread, options)
    try:
        taken, error = load_until_stopped(made(bulk_index_name, dead_letter=dlq, **STOP_OPTIONS))
    finally:
        made.close()
    assert isinstance(error.cause, AuthenticationError)
    assert "refused the client's credentials (401)" in error.reason
    assert error.stats.batches <= 2  # the first answer (the second worker's may have left)
    assert_stopped_cleanly(error, taken, dlq)
    for text in (str(error), error.reason, repr(error.cause), dlq.read_text()):
        assert wrong not in text and search_cluster.security.password not in text


def test_a_user_without_write_privilege_stops_the_load(
    indexers: Indexers,
    search_cluster: Any,
    loop_thread: LoopThread,
    connection: dict[str, Any],
    node_url: str,
    bulk_index_name: str,
    dlq: Path,
) -> None:
    """403, on the request or on every item (``security_exception``, as each flavor answers):
    the load stops and says to grant the privilege."""
    if search_cluster.security is None:
        pytest.skip("the cluster has security off: every user may write")
    info = search_cluster.security
    options = {**connection, "auth": BasicAuth(info.limited_user, info.limited_password)}
    made = Indexers(indexers.kind, node_url, loop_thread, options)
    try:
        taken, error = load_until_stopped(made(bulk_index_name, dead_letter=dlq, **STOP_OPTIONS))
    finally:
        made.close()
    assert isinstance(error.cause, AuthorizationError)
    assert "may not write" in error.reason and "privilege" in error.reason
    assert_stopped_cleanly(error, taken, dlq)
    assert info.limited_password not in str(error)


def test_mapping_errors_on_one_percent_are_dead_lettered_and_the_load_goes_on(
    indexers: Indexers, client: Client, bulk_index_name: str, dlq: Path
) -> None:
    """Per-document failures are not a reason to stop: even a batch that fails in part goes
    on, and only the bad documents are in the dead-letter file."""
    n = 5000
    bad = {str(i) for i in range(3, n, 100)}
    with indexers(bulk_index_name, dead_letter=dlq, **STOP_OPTIONS) as bulk:
        for i in range(n):
            bulk.index(log_doc(i, bad=str(i) in bad), id=str(i))
    stats = bulk.stats
    assert_accounted(stats)
    assert (stats.added, stats.dead_lettered) == (n, len(bad))
    records = read_dead_letters(dlq)
    assert sorted(dead_ids(records)) == sorted(bad)
    assert {r["outcome"] for r in records} == {"rejected"}
    assert_index_holds_exactly(client, bulk_index_name, {str(i) for i in range(n)} - bad, bad)
