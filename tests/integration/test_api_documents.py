"""Document methods and optimistic concurrency, the same test against every server of the run
(Elasticsearch 7/8/9, OpenSearch 1/2/3)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from api_support import require

from sturdysearch import (
    Client,
    GetResult,
    MultiGetResult,
    SearchResult,
    WriteResult,
)
from sturdysearch.errors import ApiError, ConflictError, NotFoundError

#: These tests also run against the security-on servers (TLS, passwords), connecting with the
#: ``connection`` fixture.
pytestmark = pytest.mark.sturdysearch_secured


def test_write_results_carry_the_concurrency_token(client: Client, index_name: str) -> None:
    created = client.index(index=index_name, id="1", document={"n": 1})
    assert isinstance(created, WriteResult)
    assert (created.result, created.id, created.index, created.version) == (
        "created",
        "1",
        index_name,
        1,
    )
    assert created.seq_no is not None and created.primary_term is not None
    assert created["_seq_no"] == created.seq_no  # still a mapping
    again = client.index(index=index_name, id="1", document={"n": 2})
    assert (again.result, again.version) == ("updated", 2)
    assert again.seq_no is not None and again.seq_no > created.seq_no
    deleted = client.delete(index=index_name, id="1")
    assert (deleted.result, deleted.version) == ("deleted", 3)


def test_get_exists_and_get_or_none(client: Client, index_name: str) -> None:
    client.index(index=index_name, id="a b/c", document={"n": 1, "t": "x"}, refresh=True)
    got = client.get(index=index_name, id="a b/c")
    assert isinstance(got, GetResult)
    assert (got.found, got.source, got.id, got.version) == (True, {"n": 1, "t": "x"}, "a b/c", 1)
    assert got.seq_no is not None
    assert client.get(index=index_name, id="a b/c", source=["t"]).source == {"t": "x"}
    assert client.exists(index=index_name, id="a b/c") is True
    assert client.exists(index=index_name, id="nope") is False
    assert client.get_or_none(index=index_name, id="nope") is None
    found = client.get_or_none(index=index_name, id="a b/c")
    assert found is not None and found.source == {"n": 1, "t": "x"}
    with pytest.raises(NotFoundError) as caught:  # a missing index is not a missing document
        client.get_or_none(index=f"{index_name}-absent", id="1")
    assert caught.value.error_type == "index_not_found_exception"


def test_create_refuses_an_existing_id(client: Client, index_name: str) -> None:
    first = client.create(index=index_name, id="1", document={"v": 1})
    assert first.result == "created"
    with pytest.raises(ConflictError) as caught:
        client.create(index=index_name, id="1", document={"v": 2})
    assert caught.value.error_type == "version_conflict_engine_exception"
    assert client.get(index=index_name, id="1").source == {"v": 1}


def test_conditional_writes(client: Client, index_name: str) -> None:
    first = client.index(index=index_name, id="c", document={"v": 1})
    assert first.seq_no is not None and first.primary_term is not None
    second = client.index(
        index=index_name,
        id="c",
        document={"v": 2},
        if_seq_no=first.seq_no,
        if_primary_term=first.primary_term,
    )
    with pytest.raises(ConflictError):
        client.index(
            index=index_name,
            id="c",
            document={"v": 3},
            if_seq_no=first.seq_no,
            if_primary_term=first.primary_term,
        )
    with pytest.raises(ConflictError):
        client.delete(
            index=index_name, id="c", if_seq_no=first.seq_no, if_primary_term=first.primary_term
        )
    assert second.seq_no is not None and second.primary_term is not None
    updated = client.update(
        index=index_name,
        id="c",
        doc={"w": 1},
        if_seq_no=second.seq_no,
        if_primary_term=second.primary_term,
    )
    assert updated.result == "updated"
    assert client.get(index=index_name, id="c").source == {"v": 2, "w": 1}


def test_partial_updates_and_upserts(client: Client, index_name: str) -> None:
    client.index(index=index_name, id="1", document={"a": 1, "b": 1})
    assert client.update(index=index_name, id="1", doc={"b": 2}).result == "updated"
    assert client.update(index=index_name, id="1", doc={"b": 2}).result == "noop"
    assert client.get(index=index_name, id="1").source == {"a": 1, "b": 2}
    with pytest.raises(NotFoundError) as caught:
        client.update(index=index_name, id="2", doc={"x": 1})
    assert caught.value.error_type == "document_missing_exception"
    assert client.update(index=index_name, id="2", doc={"x": 1}, doc_as_upsert=True).result == (
        "created"
    )
    assert client.update(index=index_name, id="3", doc={"x": 1}, upsert={"x": 0}).result == (
        "created"
    )
    assert client.get(index=index_name, id="3").source == {"x": 0}


def test_scripted_update(client: Client, index_name: str) -> None:
    require(client, "lang-painless")
    client.index(index=index_name, id="1", document={"n": 1})
    result = client.update(
        index=index_name,
        id="1",
        script={"source": "ctx._source.n += params.by", "params": {"by": 41}},
        retry_on_conflict=3,
    )
    assert result.result == "updated"
    assert client.get(index=index_name, id="1").source == {"n": 42}


def test_mget_count_search_and_msearch(client: Client, index_name: str) -> None:
    for i in range(5):
        client.index(index=index_name, id=str(i), document={"n": i, "even": i % 2 == 0})
    client.indices.refresh(index=index_name)
    docs = client.mget(index=index_name, ids=["1", "3", "missing"])
    assert isinstance(docs, MultiGetResult)
    assert [(d.id, d.found) for d in docs.docs] == [("1", True), ("3", True), ("missing", False)]
    assert docs.docs[1].source == {"n": 3, "even": False}
    assert client.count(index=index_name, query={"term": {"even": True}})["count"] == 3
    result = client.search(index=index_name, query={"range": {"n": {"gte": 3}}}, sort=["n"])
    assert isinstance(result, SearchResult)
    assert [h["_id"] for h in result.hits] == ["3", "4"]
    assert (result.total, result.total_relation) == (2, "eq")
    as_int = client.search(index=index_name, params={"rest_total_hits_as_int": True}, size=0)
    assert isinstance(as_int["hits"]["total"], int)  # the other form, normalized by .total
    assert (as_int.total, as_int.total_relation) == (5, "eq")
    capped = client.search(index=index_name, track_total_hits=2, size=0)
    assert (capped.total, capped.total_relation) == (2, "gte")
    multi = client.msearch(
        searches=[
            {"index": index_name},
            {"query": {"term": {"n": 4}}},
            {"index": f"{index_name}-absent"},
            {"query": {"match_all": {}}},
        ]
    )
    ok, missing = multi.responses
    assert isinstance(ok, SearchResult) and [h["_id"] for h in ok.hits] == ["4"]
    assert isinstance(missing, NotFoundError)
    assert missing.error_type == "index_not_found_exception"


def test_update_with_retry_reads_modifies_writes(client: Client, index_name: str) -> None:
    client.index(index=index_name, id="doc", document={"n": 1, "keep": "me"})
    result = client.update_with_retry(index_name, "doc", lambda d: {**d, "n": d["n"] + 1})
    assert isinstance(result, WriteResult)
    assert (result.result, result.version) == ("updated", 2)
    assert client.get(index=index_name, id="doc").source == {"n": 2, "keep": "me"}
    with pytest.raises(NotFoundError):
        client.update_with_retry(index_name, "absent", lambda d: d)
    made = client.update_with_retry(
        index_name, "new", lambda d: {"n": 0 if d is None else d["n"] + 1}, create_if_missing=True
    )
    assert made.result == "created"


COUNTER_THREADS = 8
COUNTER_INCREMENTS = 200


def test_concurrent_increments_are_never_lost(client: Client, index_name: str) -> None:
    """8 threads x 200 ``update_with_retry`` increments of one document end at exactly 1600:
    every lost race is detected by ``if_seq_no`` and retried, none applied twice."""
    client.indices.create(index=index_name, settings={"number_of_replicas": 0})
    client.index(index=index_name, id="counter", document={"n": 0})
    attempts: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def increment(doc: dict[str, Any]) -> dict[str, Any]:
        with lock:
            attempts.append(1)
        return {"n": doc["n"] + 1}

    def worker() -> None:
        try:
            for _ in range(COUNTER_INCREMENTS):
                client.update_with_retry(
                    index_name, "counter", increment, max_attempts=100, timeout=120
                )
        except BaseException as exc:  # reported below; a thread must not die silently
            errors.append(exc)

    started = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(COUNTER_THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    assert errors == []
    final = client.get(index=index_name, id="counter")
    assert final.source == {"n": COUNTER_THREADS * COUNTER_INCREMENTS}
    assert final.version == COUNTER_THREADS * COUNTER_INCREMENTS + 1
    print(
        f"\n{COUNTER_THREADS * COUNTER_INCREMENTS} increments, {len(attempts)} attempts, "
        f"{time.monotonic() - started:.1f} s"
    )


def test_api_errors_stay_typed(client: Client, index_name: str) -> None:
    with pytest.raises(NotFoundError):
        client.delete(index=index_name, id="nothing")
    with pytest.raises(ApiError) as caught:
        client.update(index=index_name, id="1", doc={"a": 1})
    assert caught.value.status == 404


def test_everyday_calls_on_both_clients(any_client: Any, index_name: str) -> None:
    """The same calls through the blocking and the asyncio client (flows included)."""
    any_client.indices.create(index=index_name, settings={"number_of_replicas": 0})
    assert any_client.info().version
    written = any_client.index(index=index_name, id="1", document={"n": 1}, refresh=True)
    assert isinstance(written, WriteResult) and written.version == 1
    bumped = any_client.update_with_retry(index_name, "1", lambda d: {"n": d["n"] + 1})
    assert bumped.version == 2
    assert any_client.get_or_none(index=index_name, id="2") is None
    assert any_client.mget(index=index_name, ids=["1"]).docs[0].source == {"n": 2}
    (result,) = any_client.msearch(searches=[{"index": index_name}, {}]).responses
    assert isinstance(result, SearchResult) and result.total == 1
    assert any_client.cluster.health(index=index_name, wait_for_status="green").status == "green"
    assert any_client.cat.count(index=index_name)[0]["count"] == 1
    assert any_client.ping() is True
