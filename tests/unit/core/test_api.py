"""Request specs of the API methods (``sturdysearch._core.api``)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from sturdysearch._core import api
from sturdysearch._core.request import RequestSpec
from sturdysearch.errors import SerializationError


def body_of(spec: RequestSpec) -> Any:
    assert spec.body is not None
    return orjson.loads(spec.body)


def ndjson_of(spec: RequestSpec) -> list[Any]:
    assert spec.body is not None
    if not spec.body:
        return []
    assert spec.body.endswith(b"\n")
    return [orjson.loads(line) for line in spec.body.split(b"\n")[:-1]]


# -- paths -------------------------------------------------------------------------------------

WEIRD_IDS = [
    ("a/b", "a%2Fb"),
    ("a?b", "a%3Fb"),
    ("a#b", "a%23b"),
    ("a b", "a%20b"),
    ("中文", "%E4%B8%AD%E6%96%87"),
    (42, "42"),
]


@pytest.mark.parametrize(("doc_id", "encoded"), WEIRD_IDS)
@pytest.mark.parametrize(
    ("fn", "method", "template", "extra"),
    [
        (api.index, "PUT", "/my%20idx/_doc/{}", {"document": {"a": 1}}),
        (api.create, "PUT", "/my%20idx/_create/{}", {"document": {"a": 1}}),
        (api.get, "GET", "/my%20idx/_doc/{}", {}),
        (api.exists, "HEAD", "/my%20idx/_doc/{}", {}),
        (api.delete, "DELETE", "/my%20idx/_doc/{}", {}),
    ],
)
def test_document_paths(
    fn: Any, method: str, template: str, extra: dict[str, Any], doc_id: Any, encoded: str
) -> None:
    spec = fn(index="my idx", id=doc_id, **extra)
    assert spec.method == method
    assert spec.path == template.format(encoded)
    assert spec.idempotent is True


@pytest.mark.parametrize(
    ("index", "path"),
    [
        (None, "/_search"),
        ("books", "/books/_search"),
        (["a", "b"], "/a,b/_search"),
        ("logs-*", "/logs-*/_search"),
        ("中文", "/%E4%B8%AD%E6%96%87/_search"),
    ],
)
def test_search_paths(index: Any, path: str) -> None:
    assert api.search(index=index).path == path
    assert api.count(index=index).path == path.replace("_search", "_count")


@pytest.mark.parametrize(
    ("fn", "kwargs", "method", "path"),
    [
        (api.info, {}, "GET", "/"),
        (api.ping, {}, "HEAD", "/"),
        (api.refresh, {}, "POST", "/_refresh"),
        (api.refresh, {"index": ["a", "b"]}, "POST", "/a,b/_refresh"),
        (api.indices_create, {"index": "i"}, "PUT", "/i"),
        (api.indices_delete, {"index": ["a", "b*"]}, "DELETE", "/a,b*"),
        (api.indices_exists, {"index": "i"}, "HEAD", "/i"),
        (api.bulk, {"operations": []}, "POST", "/_bulk"),
        (api.bulk, {"operations": [], "index": "i"}, "POST", "/i/_bulk"),
        (api.index, {"index": "i", "document": {}}, "POST", "/i/_doc"),
    ],
)
def test_other_paths(fn: Any, kwargs: dict[str, Any], method: str, path: str) -> None:
    spec = fn(**kwargs)
    assert (spec.method, spec.path) == (method, path)


def test_ignore_for_existence_checks() -> None:
    assert api.ping().ignore == frozenset({404})
    assert api.exists(index="i", id="1").ignore == frozenset({404})
    assert api.indices_exists(index="i").ignore == frozenset({404})


@pytest.mark.parametrize(
    ("ignore", "expected"), [(404, {404}), ((404, 409), {404, 409}), ((), set())]
)
def test_ignore_normalized(ignore: Any, expected: set[int]) -> None:
    assert api.get(index="i", id="1", ignore=ignore).ignore == frozenset(expected)
    assert api.request("GET", "/", ignore=ignore).ignore == frozenset(expected)


# -- params ------------------------------------------------------------------------------------


def test_index_params() -> None:
    spec = api.index(
        index="i",
        id="1",
        document={},
        refresh="wait_for",
        if_seq_no=3,
        if_primary_term=1,
        routing="r",
        pipeline=None,
    )
    assert spec.params == {
        "refresh": "wait_for",
        "if_seq_no": 3,
        "if_primary_term": 1,
        "routing": "r",
    }
    assert spec.target == "/i/_doc/1?refresh=wait_for&if_seq_no=3&if_primary_term=1&routing=r"


def test_get_params_render() -> None:
    spec = api.get(index="i", id="1", source=["a", "b"], realtime=False)
    assert spec.target == "/i/_doc/1?_source=a,b&realtime=false"


def test_no_params_is_none() -> None:
    assert api.get(index="i", id="1").params is None
    assert api.search().params is None


def test_params_dict_merged_and_none_dropped() -> None:
    spec = api.delete(index="i", id="1", refresh=True, params={"timeout": "5s", "x": None})
    assert spec.params == {"refresh": True, "timeout": "5s"}
    assert spec.target == "/i/_doc/1?refresh=true&timeout=5s"


@pytest.mark.parametrize(
    ("fn", "kwargs"),
    [
        (api.index, {"index": "i", "id": "1", "document": {}, "if_seq_no": 1}),
        (api.index, {"index": "i", "id": "1", "document": {}, "if_primary_term": 1}),
        (api.delete, {"index": "i", "id": "1", "if_seq_no": 1}),
        (api.delete, {"index": "i", "id": "1", "if_primary_term": 1}),
    ],
)
def test_if_seq_no_needs_if_primary_term(fn: Any, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="if_seq_no and if_primary_term go together"):
        fn(**kwargs)


def test_if_seq_no_zero_is_given() -> None:
    spec = api.index(index="i", id="1", document={}, if_seq_no=0, if_primary_term=1)
    assert spec.params == {"if_seq_no": 0, "if_primary_term": 1}


def test_op_type_create_without_id_lets_the_server_pick_one() -> None:
    spec = api.index(index="i", document={}, op_type="create")
    assert (spec.method, spec.path, spec.params) == ("POST", "/i/_doc", {"op_type": "create"})
    assert spec.idempotent is False  # a resend would create a second document


# -- idempotency -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "idempotent"),
    [
        (api.index(index="i", document={"a": 1}), False),
        (api.index(index="i", document={"a": 1}, id="1"), True),
        (api.index(index="i", document={"a": 1}, id=0), True),
        (api.index(index="i", document={"a": 1}, id="1", op_type="create"), True),
        (api.create(index="i", id="1", document={}), True),
        (api.search(index="i"), True),
        (api.search(), True),
        (api.count(), True),
        (api.get(index="i", id="1"), True),
        (api.exists(index="i", id="1"), True),
        (api.delete(index="i", id="1"), True),
        (api.info(), True),
        (api.ping(), True),
        (api.refresh(), True),
        (api.indices_create(index="i"), True),
        (api.indices_delete(index="i"), True),
        (api.indices_exists(index="i"), True),
    ],
)
def test_idempotency_flags(spec: RequestSpec, idempotent: bool) -> None:
    assert spec.idempotent is idempotent


def test_search_is_post_but_idempotent() -> None:
    spec = api.search(index="i", query={"match_all": {}})
    assert spec.method == "POST" and spec.idempotent


@pytest.mark.parametrize(
    ("operations", "idempotent"),
    [
        ([], True),
        ([{"index": {"_id": "1"}}, {"a": 1}], True),
        ([{"create": {"_id": "1", "_index": "x"}}, {"a": 1}], True),
        ([{"delete": {"_id": "1"}}], True),
        ([{"update": {"_id": "1"}}, {"doc": {"a": 1}}], True),
        ([{"index": {}}, {"a": 1}], False),
        ([{"create": {"_index": "x"}}, {"a": 1}], False),
        ([{"index": {"_id": "1"}}, {"a": 1}, {"index": {}}, {"b": 2}], False),
        ([{"delete": {"_id": "1"}}, {"create": {}}, {"a": 1}], False),
        # A source line with several keys is never mistaken for an action.
        ([{"index": {"_id": "1"}}, {"index": {}, "other": 1}], True),
    ],
)
def test_bulk_idempotent_only_when_every_write_has_id(
    operations: list[dict[str, Any]], idempotent: bool
) -> None:
    spec = api.bulk(operations=operations)
    assert spec.idempotent is idempotent
    assert spec.content_type == "application/x-ndjson"
    assert ndjson_of(spec) == operations


def test_bulk_accepts_generator_and_refresh() -> None:
    spec = api.bulk(operations=(op for op in [{"index": {"_id": "1"}}, {"a": 1}]), refresh=True)
    assert spec.target == "/_bulk?refresh=true"
    assert ndjson_of(spec) == [{"index": {"_id": "1"}}, {"a": 1}]


def test_bulk_error_path_names_operation() -> None:
    with pytest.raises(SerializationError) as info:
        api.bulk(operations=[{"index": {}}, {"v": float("nan")}])
    assert info.value.path == "operations[1]['v']"


# -- bodies ------------------------------------------------------------------------------------


def test_search_named_fields_merged() -> None:
    spec = api.search(
        index="i",
        body={"highlight": {"fields": {"t": {}}}},
        query={"match": {"t": "x"}},
        size=0,
        from_=20,
        sort=["_doc"],
        aggs={"a": {"terms": {"field": "f"}}},
        source=False,
        search_after=[1, "x"],
        track_total_hits=True,
    )
    assert body_of(spec) == {
        "highlight": {"fields": {"t": {}}},
        "query": {"match": {"t": "x"}},
        "size": 0,
        "from": 20,
        "sort": ["_doc"],
        "aggs": {"a": {"terms": {"field": "f"}}},
        "_source": False,
        "search_after": [1, "x"],
        "track_total_hits": True,
    }


def test_search_without_body() -> None:
    assert api.search().body is None
    assert api.count().body is None


def test_search_body_only() -> None:
    assert body_of(api.search(body={"query": {"match_all": {}}})) == {"query": {"match_all": {}}}


@pytest.mark.parametrize(
    ("kwargs", "clash"),
    [
        ({"body": {"query": {}}, "query": {"match_all": {}}}, "query"),
        ({"body": {"size": 1}, "size": 2}, "size"),
        ({"body": {"from": 1}, "from_": 2}, "from"),
        ({"body": {"_source": True}, "source": False}, "_source"),
        ({"body": {"size": 1, "query": {}}, "size": 2, "query": {}}, "query, size"),
    ],
)
def test_merge_body_clash_raises(kwargs: dict[str, Any], clash: str) -> None:
    with pytest.raises(ValueError, match="given both as keyword and inside body=") as info:
        api.search(**kwargs)
    assert str(info.value).startswith(clash)


def test_merge_body_clash_in_count_and_indices_create() -> None:
    with pytest.raises(ValueError, match="query"):
        api.count(body={"query": {}}, query={"match_all": {}})
    with pytest.raises(ValueError, match="mappings"):
        api.indices_create(index="i", body={"mappings": {}}, mappings={"properties": {}})


def test_merge_body_non_mapping_body() -> None:
    with pytest.raises(SerializationError, match="body must be a mapping"):
        api.search(body='{"query": {}}', size=1)  # type: ignore[arg-type]


def test_merge_body_does_not_mutate_caller_body() -> None:
    body = {"query": {"match_all": {}}}
    api.search(body=body, size=3)
    assert body == {"query": {"match_all": {}}}


def test_search_string_body_refused() -> None:
    with pytest.raises(SerializationError, match="raw_body"):
        api.search(body='{"query": {}}')  # type: ignore[arg-type]


def test_indices_create_body() -> None:
    spec = api.indices_create(
        index="i",
        mappings={"properties": {"t": {"type": "text"}}},
        settings={"number_of_shards": 1},
    )
    assert body_of(spec) == {
        "mappings": {"properties": {"t": {"type": "text"}}},
        "settings": {"number_of_shards": 1},
    }
    assert api.indices_create(index="i").body is None


def test_document_path_in_errors() -> None:
    with pytest.raises(SerializationError) as info:
        api.index(index="i", document={"price": float("inf")})
    assert info.value.path == "document['price']"
    with pytest.raises(SerializationError) as info:
        api.create(index="i", id="1", document={"tags": {"a"}})
    assert info.value.path == "document['tags']"


# -- free-form request -------------------------------------------------------------------------


def test_request_defaults() -> None:
    spec = api.request("get", "/_cluster/health", params={"wait_for_status": "yellow"})
    assert spec.method == "GET"
    assert spec.idempotent is True
    assert spec.target == "/_cluster/health?wait_for_status=yellow"
    assert spec.body is None


@pytest.mark.parametrize(
    ("method", "override", "idempotent"),
    [("POST", None, False), ("POST", True, True), ("PUT", None, True), ("PUT", False, False)],
)
def test_request_idempotent_override(method: str, override: bool | None, idempotent: bool) -> None:
    assert api.request(method, "/x", idempotent=override).idempotent is idempotent


def test_request_dict_body() -> None:
    spec = api.request("POST", "/i/_search", body={"size": 1})
    assert spec.body == b'{"size":1}'
    assert spec.content_type == "application/json"


def test_request_list_body_is_ndjson() -> None:
    spec = api.request("POST", "/_msearch", body=[{}, {"query": {"match_all": {}}}])
    assert spec.body == b'{}\n{"query":{"match_all":{}}}\n'
    assert spec.content_type == "application/x-ndjson"


@pytest.mark.parametrize("raw", [b'{"a":1}', bytearray(b"x"), memoryview(b"y")])
def test_request_raw_body(raw: Any) -> None:
    spec = api.request("POST", "/x", raw_body=raw, content_type="text/plain")
    assert spec.body == bytes(raw)
    assert isinstance(spec.body, bytes)
    assert spec.content_type == "text/plain"


@pytest.mark.parametrize(
    ("kwargs", "exc", "message"),
    [
        ({"path": "_search"}, ValueError, "must start with '/'"),
        ({"body": {}, "raw_body": b"{}"}, ValueError, "not both"),
        ({"raw_body": "text"}, SerializationError, "raw_body must be bytes"),
        ({"body": "text"}, SerializationError, "raw_body="),
        ({"body": b"bytes"}, SerializationError, "raw_body="),
    ],
)
def test_request_refusals(kwargs: dict[str, Any], exc: type[Exception], message: str) -> None:
    kwargs = {"path": "/x", **kwargs}
    with pytest.raises(exc, match=message):
        api.request("POST", **kwargs)


def test_request_passes_options_through() -> None:
    spec = api.request(
        "POST", "/_forcemerge", timeout=900, long_running=True, headers={"x-opaque-id": "job"}
    )
    assert spec.timeout == 900
    assert spec.long_running is True
    assert spec.headers == {"x-opaque-id": "job"}
