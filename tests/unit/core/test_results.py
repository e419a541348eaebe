"""Typed answers and post-processors (``sturdysearch._core.results``)."""

from __future__ import annotations

from typing import Any

import pytest

from sturdysearch._core import results
from sturdysearch._core.responses import Response, ResponseMeta
from sturdysearch.errors import ApiError, NotFoundError

NODE = "http://127.0.0.1:9200"


def answer(body: Any, status: int = 200) -> Response:
    return Response(body, ResponseMeta(status, {}, NODE, 0.001))


def test_write_result_exposes_the_concurrency_token_and_stays_a_mapping() -> None:
    body = {
        "_index": "i",
        "_id": "1",
        "_version": 3,
        "result": "updated",
        "_seq_no": 7,
        "_primary_term": 2,
    }
    raw = answer(body)
    written = results.WriteResult.of(raw)
    assert (written.id, written.index, written.version, written.result) == ("1", "i", 3, "updated")
    assert (written.seq_no, written.primary_term) == (7, 2)
    assert written["_seq_no"] == 7 and dict(written) == body
    assert written.body is body and written.meta is raw.meta
    assert written == raw


def test_write_result_with_missing_or_odd_fields() -> None:
    odd = results.WriteResult.of(answer({"_seq_no": "7", "_version": True}))
    assert (odd.seq_no, odd.version, odd.id, odd.primary_term) == (None, None, None, None)
    assert results.WriteResult.of(answer(None)).seq_no is None


def test_get_result() -> None:
    got = results.GetResult.of(
        answer({"_id": "1", "found": True, "_source": {"a": 1}, "_seq_no": 0, "_primary_term": 1})
    )
    assert (got.found, got.source, got.seq_no) == (True, {"a": 1}, 0)
    missing = results.GetResult.of(answer({"_id": "1", "found": False}, 404))
    assert (missing.found, missing.source) == (False, None)


@pytest.mark.parametrize(
    ("total", "expected"),
    [
        ({"value": 10, "relation": "eq"}, (10, "eq")),
        ({"value": 10000, "relation": "gte"}, (10000, "gte")),
        (42, (42, "eq")),
        (None, None),
        ({"value": None}, None),
    ],
)
def test_hits_total_in_either_form(total: Any, expected: Any) -> None:
    hits: dict[str, Any] = {"hits": [{"_id": "1"}], "max_score": 1.5}
    if total is not None:
        hits["total"] = total
    result = results.SearchResult.of(answer({"hits": hits}))
    assert results.total_hits(result.body) == expected
    assert result.total == (expected[0] if expected else None)
    assert result.total_relation == (expected[1] if expected else None)
    assert result.hits == [{"_id": "1"}]
    assert result.max_score == 1.5


def test_search_result_without_hits() -> None:
    empty = results.SearchResult.of(answer({"aggregations": {"a": {"value": 1}}}))
    assert (empty.hits, empty.total, empty.max_score) == ([], None, None)
    assert empty.aggregations == {"a": {"value": 1}}


def test_multi_get_docs() -> None:
    result = results.MultiGetResult.of(
        answer({"docs": [{"_id": "1", "found": True, "_source": {}}, {"_id": "2", "found": False}]})
    )
    assert [(d.id, d.found) for d in result.docs] == [("1", True), ("2", False)]
    assert all(d.meta is result.meta for d in result.docs)


def test_multi_search_items_are_results_or_typed_errors() -> None:
    result = results.MultiSearchResult.of(
        answer(
            {
                "responses": [
                    {"hits": {"total": {"value": 1}, "hits": [{"_id": "a"}]}, "status": 200},
                    {
                        "error": {
                            "type": "index_not_found_exception",
                            "reason": "no such index [x]",
                            "root_cause": [{"type": "index_not_found_exception"}],
                        },
                        "status": 404,
                    },
                    {"error": "old style", "status": 500},
                ]
            }
        )
    )
    ok, missing, old = result.responses
    assert isinstance(ok, results.SearchResult) and ok.total == 1
    assert isinstance(missing, NotFoundError)
    assert (missing.error_type, missing.reason, missing.node) == (
        "index_not_found_exception",
        "no such index [x]",
        NODE,
    )
    assert isinstance(old, ApiError) and old.status == 500 and old.reason == "old style"


def test_found_or_none() -> None:
    assert results.found_or_none(answer({"_id": "1", "found": False}, 404)) is None
    got = results.found_or_none(answer({"_id": "1", "found": True, "_source": {"a": 1}}))
    assert got is not None and got.source == {"a": 1}
    with pytest.raises(NotFoundError) as caught:
        results.found_or_none(
            answer(
                {"error": {"type": "index_not_found_exception", "reason": "no such index [i]"}},
                404,
            )
        )
    assert caught.value.error_type == "index_not_found_exception"


def test_cluster_health_timeout() -> None:
    report = {"status": "yellow", "timed_out": True, "number_of_nodes": 1, "unassigned_shards": 5}
    with pytest.raises(ApiError, match=r"status yellow, 1 node.*5 unassigned") as caught:
        results.cluster_health(answer(report, 408), raise_on_timeout=True)
    assert caught.value.status == 408 and caught.value.body == report
    health = results.cluster_health(answer(report, 408), raise_on_timeout=False)
    assert (health.status, health.timed_out, health.number_of_nodes) == ("yellow", True, 1)
    fine = results.cluster_health(answer({**report, "timed_out": False}), raise_on_timeout=True)
    assert fine.timed_out is False


def test_by_query_result() -> None:
    result = results.ByQueryResult.of(
        answer(
            {
                "total": 5,
                "deleted": 4,
                "version_conflicts": 1,
                "failures": [{"id": "x"}, "junk"],
                "task": "n:1",
            }
        )
    )
    assert (result.total, result.deleted, result.updated, result.version_conflicts) == (
        5,
        4,
        None,
        1,
    )
    assert (result.failures, result.task) == ([{"id": "x"}], "n:1")


def test_cat_rows_type_the_obvious_numbers() -> None:
    rows = results.cat_rows(
        [
            {
                "index": "2024",
                "uuid": "123",
                "docs.count": "5",
                "store.size": "4137",
                "pri": "1",
                "active_shards_percent": "50.0%",
                "load_1m": "7.48",
                "node.role": "1",
                "docs": None,
                "timestamp": "02:49:24",
                "max_task_wait_time": "-",
            }
        ]
    )
    assert rows == [
        {
            "index": "2024",
            "uuid": "123",
            "docs.count": 5,
            "store.size": 4137,
            "pri": 1,
            "active_shards_percent": "50.0%",
            "load_1m": 7.48,
            "node.role": "1",
            "docs": None,
            "timestamp": "02:49:24",
            "max_task_wait_time": "-",
        }
    ]
    with pytest.raises(TypeError, match="format=json"):
        results.cat_rows("health status\n")


def test_search_contexts_sums_nodes_and_flavors() -> None:
    stats = {
        "nodes": {
            "a": {"indices": {"search": {"open_contexts": 2, "scroll_current": 1}}},
            "b": {
                "indices": {
                    "search": {"open_contexts": 3, "scroll_current": 0, "point_in_time_current": 2}
                }
            },
            "c": {},
        }
    }
    assert results.search_contexts(stats) == {
        "open_contexts": 5,
        "scroll_current": 1,
        "point_in_time_current": 2,
    }
    assert results.search_contexts({}) == {
        "open_contexts": 0,
        "scroll_current": 0,
        "point_in_time_current": 0,
    }
