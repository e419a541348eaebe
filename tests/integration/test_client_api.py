"""The everyday calls and their typed errors, against every server of the run."""

from __future__ import annotations

from typing import Any

import pytest

from sturdysearch import Client, ServerInfo
from sturdysearch.errors import (
    BadRequestError,
    ConflictError,
    NotFoundError,
    SerializationError,
)


def test_info_reports_flavor_and_version(any_client: Any, search_cluster: object) -> None:
    info = any_client.info()
    assert isinstance(info, ServerInfo)
    assert info.flavor == search_cluster.flavor  # type: ignore[attr-defined]
    assert info.version == search_cluster.version  # type: ignore[attr-defined]
    assert info.cluster_name
    assert any_client.ping() is True


def test_document_round_trip(any_client: Any, index_name: str) -> None:
    doc_id = "a/b?c#d 中文"
    created = any_client.index(
        index=index_name, id=doc_id, document={"n": 1, "t": "é"}, refresh=True
    )
    assert created["result"] == "created"
    assert created["_id"] == doc_id
    assert isinstance(created["_seq_no"], int)
    got = any_client.get(index=index_name, id=doc_id)
    assert got["_source"] == {"n": 1, "t": "é"}
    assert any_client.exists(index=index_name, id=doc_id) is True
    assert any_client.exists(index=index_name, id="missing") is False
    hits = any_client.search(index=index_name, query={"term": {"n": 1}})
    assert [h["_id"] for h in hits["hits"]["hits"]] == [doc_id]
    assert any_client.count(index=index_name)["count"] == 1
    deleted = any_client.delete(index=index_name, id=doc_id, refresh=True)
    assert deleted["result"] == "deleted"
    assert any_client.count(index=index_name)["count"] == 0


def test_index_without_id_creates_new_documents(any_client: Any, index_name: str) -> None:
    first = any_client.index(index=index_name, document={"n": 1})
    second = any_client.index(index=index_name, document={"n": 1})
    assert first["_id"] != second["_id"]


def test_create_conflict_is_typed(any_client: Any, index_name: str) -> None:
    any_client.create(index=index_name, id="1", document={"v": 1})
    with pytest.raises(ConflictError) as caught:
        any_client.create(index=index_name, id="1", document={"v": 2})
    err = caught.value
    assert err.status == 409
    assert err.error_type == "version_conflict_engine_exception"
    assert err.reason and "1" in err.reason
    assert err.root_cause and err.root_cause[0]["type"] == "version_conflict_engine_exception"
    assert err.node is not None and err.node.startswith("http://127.0.0.1:")
    assert any_client.get(index=index_name, id="1")["_source"] == {"v": 1}


def test_optimistic_concurrency_on_index(any_client: Any, index_name: str) -> None:
    first = any_client.index(index=index_name, id="c", document={"v": 1})
    any_client.index(
        index=index_name,
        id="c",
        document={"v": 2},
        if_seq_no=first["_seq_no"],
        if_primary_term=first["_primary_term"],
    )
    with pytest.raises(ConflictError):
        any_client.index(
            index=index_name,
            id="c",
            document={"v": 3},
            if_seq_no=first["_seq_no"],
            if_primary_term=first["_primary_term"],
        )
    assert any_client.get(index=index_name, id="c")["_source"] == {"v": 2}


def test_missing_document_and_index(any_client: Any, index_name: str) -> None:
    any_client.indices.create(index=index_name)
    with pytest.raises(NotFoundError) as caught:
        any_client.get(index=index_name, id="nope")
    assert caught.value.status == 404
    with pytest.raises(NotFoundError) as caught:
        any_client.search(index=f"{index_name}-absent", query={"match_all": {}})
    assert caught.value.error_type == "index_not_found_exception"
    ignored = any_client.get(index=index_name, id="nope", ignore=404)
    assert ignored.meta.status == 404
    assert ignored["found"] is False


def test_bad_query_and_mapping_errors_carry_server_reason(any_client: Any, index_name: str) -> None:
    any_client.indices.create(index=index_name, mappings={"properties": {"n": {"type": "integer"}}})
    with pytest.raises(BadRequestError) as caught:
        any_client.search(index=index_name, query={"no_such_query": {}})
    assert caught.value.error_type in ("parsing_exception", "x_content_parse_exception")
    assert "no_such_query" in (caught.value.reason or "")
    with pytest.raises(BadRequestError) as caught:
        any_client.index(index=index_name, id="x", document={"n": "not a number"})
    assert caught.value.error_type in ("mapper_parsing_exception", "document_parsing_exception")


def test_bodies_are_serialized_never_strings(any_client: Any, index_name: str) -> None:
    with pytest.raises(SerializationError, match="raw_body"):
        any_client.request("POST", f"/{index_name}/_search", body='{"query": {"match_all": {}}}')
    with pytest.raises(SerializationError) as caught:
        any_client.index(index=index_name, id="1", document={"a": {"b": float("nan")}})
    assert caught.value.path == "document['a']['b']"
    with pytest.raises(SerializationError) as caught:
        any_client.index(index=index_name, id="1", document={"tags": {"x", "y"}})
    assert "set" in str(caught.value)
    # Nothing was written by the refused calls.
    assert any_client.indices.exists(index=index_name) is False
    # Raw bytes are still possible, on purpose.
    any_client.indices.create(index=index_name)
    answer = any_client.request(
        "POST", f"/{index_name}/_search", raw_body=b'{"query":{"match_all":{}}}'
    )
    assert answer["hits"]["hits"] == []


def test_user_text_cannot_inject_into_a_query(any_client: Any, index_name: str) -> None:
    any_client.index(index=index_name, id="1", document={"name": "alice", "role": "user"})
    any_client.index(
        index=index_name, id="2", document={"name": "bob", "role": "admin"}, refresh=True
    )
    hostile = 'alice"}},{"match_all":{}}]}},"x":{"y":"'
    result = any_client.search(index=index_name, query={"match": {"name": hostile}})
    ids = {hit["_id"] for hit in result["hits"]["hits"]}
    assert "2" not in ids


def test_bulk_and_request(any_client: Any, index_name: str) -> None:
    answer = any_client.bulk(
        index=index_name,
        operations=[{"index": {"_id": "1"}}, {"n": 1}, {"index": {"_id": "2"}}, {"n": 2}],
        refresh=True,
    )
    assert answer["errors"] is False
    assert len(answer["items"]) == 2
    cat = any_client.request("GET", f"/_cat/indices/{index_name}", params={"format": "json"})
    assert isinstance(cat.body, list)
    assert cat.body[0]["index"] == index_name


def test_gzip_compression_both_ways(
    make_client: Any, node_url: str, index_name: str, client: Client, connection: dict[str, Any]
) -> None:
    big = {"text": "lorem ipsum dolor sit amet " * 200}
    with make_client([node_url], http_compress=True, **connection) as compressing:
        compressing.index(index=index_name, id="big", document=big, refresh=True)
        got = compressing.get(index=index_name, id="big")
        assert got["_source"] == big
        assert got.meta.headers.get("content-encoding") == "gzip"
    assert client.get(index=index_name, id="big")["_source"] == big
