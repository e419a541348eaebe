"""The sans-IO part of the generated API: URL choice, flavor/version refusal, encoding."""

from __future__ import annotations

import pytest

from sturdysearch._core.endpoint import (
    Endpoint,
    FlavorApi,
    Route,
    adjust,
    body_of,
    build,
    head_ignore,
    merge_query,
)
from sturdysearch._core.request import RequestSpec
from sturdysearch.errors import SerializationError, UnsupportedApiError

SETTINGS_ROUTES = (
    Route("PUT", "/{index}/_settings", frozenset({"index"})),
    Route("PUT", "/_settings", frozenset()),
)
PUT_SETTINGS = Endpoint(
    "indices.put_settings",
    FlavorApi(SETTINGS_ROUTES),
    FlavorApi(SETTINGS_ROUTES),
    plain=True,
)
PIT_ES = Endpoint(
    "open_point_in_time",
    FlavorApi((Route("POST", "/{index}/_pit", frozenset({"index"})),), added=(7, 10, 0)),
    None,
    idempotent_post=True,
    equivalent="create_pit (OpenSearch 2.4+)",
)
TYPED = Endpoint(
    "get",
    FlavorApi(
        (
            Route(
                "GET", "/{index}/{type}/{id}", frozenset({"index", "type", "id"}), None, (8, 0, 0)
            ),
            Route("GET", "/{index}/_doc/{id}", frozenset({"index", "id"})),
        )
    ),
    FlavorApi((Route("GET", "/{index}/_doc/{id}", frozenset({"index", "id"})),)),
)
BULK = Endpoint(
    "bulk",
    FlavorApi((Route("POST", "/_bulk", frozenset()),)),
    FlavorApi((Route("POST", "/_bulk", frozenset()),)),
    body_format="ndjson",
)


def call(endpoint: Endpoint, flavor: str | None = None, version=None, **kw: object) -> RequestSpec:
    parts = kw.pop("parts", {})
    return build(
        endpoint,
        flavor,
        version,
        parts,  # type: ignore[arg-type]
        kw.pop("query", None),  # type: ignore[arg-type]
        kw.pop("body", None),
        kw.pop("params", None),  # type: ignore[arg-type]
        None,
        None,
        (),
    )


def test_the_url_form_follows_the_parts_given() -> None:
    assert call(PUT_SETTINGS, parts={"index": "logs"}, body={}).path == "/logs/_settings"
    assert call(PUT_SETTINGS, parts={"index": None}, body={}).path == "/_settings"
    assert call(PUT_SETTINGS, parts={"index": ["a", "b*"]}, body={}).path == "/a,b*/_settings"


def test_parts_that_are_ids_are_encoded_whole() -> None:
    spec = call(TYPED, parts={"index": "i", "id": "a/b,c", "type": None})
    assert spec.path == "/i/_doc/a%2Fb%2Cc"


def test_no_form_takes_these_parts() -> None:
    with pytest.raises(ValueError, match=r"no URL form takes .*GET /\{index\}/_doc/\{id\}"):
        call(TYPED, parts={"index": None, "id": "1", "type": None})


def test_a_server_without_the_endpoint_is_refused_before_sending() -> None:
    with pytest.raises(UnsupportedApiError) as caught:
        call(PIT_ES, "opensearch", (2, 19, 6), parts={"index": "i"})
    assert "OpenSearch has no open_point_in_time API" in str(caught.value)
    assert "create_pit (OpenSearch 2.4+)" in str(caught.value)


def test_a_version_too_old_is_refused_naming_the_version() -> None:
    with pytest.raises(
        UnsupportedApiError, match=r"needs Elasticsearch 7\.10\.0 or later; the server is 7\.9\.3"
    ):
        call(PIT_ES, "elasticsearch", (7, 9, 3), parts={"index": "i"})
    assert call(PIT_ES, "elasticsearch", (7, 17, 29), parts={"index": "i"}).path == "/i/_pit"


def test_url_forms_removed_in_a_version_are_not_chosen_there() -> None:
    parts = {"index": "i", "id": "1", "type": "_doc"}
    assert call(TYPED, "elasticsearch", (7, 17, 0), parts=parts).path == "/i/_doc/1"
    with pytest.raises(ValueError, match="no URL form"):
        call(TYPED, "elasticsearch", (8, 19, 0), parts=parts)


def test_idempotency_comes_from_the_method_and_the_reviewed_table() -> None:
    assert call(PUT_SETTINGS, parts={"index": None}, body={}).idempotent is True
    assert call(PIT_ES, parts={"index": "i"}).idempotent is True  # reviewed: a POST listed safe
    assert call(BULK, body=[{"index": {}}, {"a": 1}]).idempotent is False


def test_ndjson_bodies() -> None:
    spec = call(BULK, body=[{"index": {"_index": "i"}}, {"a": 1}])
    assert spec.body == b'{"index":{"_index":"i"}}\n{"a":1}\n'
    assert spec.content_type == "application/x-ndjson"
    assert call(BULK, body=b'{"delete":{"_id":"1"}}').body == b'{"delete":{"_id":"1"}}\n'
    with pytest.raises(SerializationError, match="NDJSON body"):
        call(BULK, body='{"index":{}}')


def test_params_and_named_query_parameters_merge_without_silent_override() -> None:
    spec = call(PUT_SETTINGS, parts={"index": None}, body={}, query={"a": 1}, params={"b": 2})
    assert spec.params == {"a": 1, "b": 2}
    with pytest.raises(ValueError, match="given both"):
        call(PUT_SETTINGS, parts={"index": None}, body={}, query={"a": 1}, params={"a": 2})


def test_body_fields_by_name() -> None:
    assert body_of(None, {"query": {"match_all": {}}, "size": None}) == {"query": {"match_all": {}}}
    assert body_of({"size": 1}, {"query": {"x": 1}}) == {"size": 1, "query": {"x": 1}}
    with pytest.raises(ValueError, match="given both"):
        body_of({"size": 1}, {"size": 2})
    with pytest.raises(SerializationError, match="invites injection"):
        body_of(None, {"query": '{"match_all": {}}'})


def test_adjust_and_helpers() -> None:
    spec = RequestSpec("GET", "/x", params={"a": 1})
    assert adjust(spec, None, ()) is spec
    changed = adjust(spec, {"x-opaque-id": "t"}, 404, {"b": 2})
    assert changed.headers == {"x-opaque-id": "t"}
    assert changed.ignore == {404}
    assert changed.params == {"a": 1, "b": 2}
    assert head_ignore(()) == {404}
    assert merge_query(None, {}) is None
    with pytest.raises(ValueError):
        merge_query({"a": 1}, {"a": 2})


def test_undetected_server_gets_elasticsearch_forms() -> None:
    assert call(PIT_ES, None, None, parts={"index": "i"}).path == "/i/_pit"


NODES_INFO = Endpoint(
    "nodes.info",
    FlavorApi(
        (
            Route("GET", "/_nodes/{node_id}/{metric}", frozenset({"node_id", "metric"})),
            Route("GET", "/_nodes/{metric}", frozenset({"metric"})),
            Route("GET", "/_nodes/{node_id}", frozenset({"node_id"})),
        )
    ),
    FlavorApi(
        (
            Route("GET", "/_nodes/{node_id}/{metric}", frozenset({"node_id", "metric"})),
            Route("GET", "/_nodes/{node_id_or_metric}", frozenset({"node_id_or_metric"})),
        )
    ),
    list_parts=frozenset({"node_id", "metric", "node_id_or_metric"}),
)


def test_a_part_named_a_or_b_takes_either() -> None:
    parts = {"metric": "jvm", "node_id": None, "node_id_or_metric": None}
    assert call(NODES_INFO, "opensearch", (2, 19, 6), parts=parts).path == "/_nodes/jvm"
    assert call(NODES_INFO, "elasticsearch", (9, 5, 4), parts=parts).path == "/_nodes/jvm"
    both = {"metric": "jvm,os", "node_id": "_local", "node_id_or_metric": None}
    assert call(NODES_INFO, "opensearch", (2, 19, 6), parts=both).path == "/_nodes/_local/jvm,os"
