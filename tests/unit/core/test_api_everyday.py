"""Request specs of the everyday methods added for the one-API issue: update, mget, msearch,
templates, by-query, tasks, indices, aliases, cluster health, _cat. Path, parameters, body and,
above all, the idempotency flag that decides whether a request is ever resent."""

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


# -- update ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "idempotent"),
    [
        ({"doc": {"a": 1}}, True),
        ({"doc": {"a": 1}, "doc_as_upsert": True}, True),
        ({"doc": {"a": 1}, "upsert": {"a": 0}}, False),
        ({"script": {"source": "ctx._source.n += 1"}}, False),
        ({"script": {"source": "ctx._source.n += 1"}, "upsert": {"n": 0}}, False),
        ({"script": {"source": "x"}, "if_seq_no": 3, "if_primary_term": 1}, True),
        ({"doc": {"a": 1}, "upsert": {"a": 0}, "if_seq_no": 3, "if_primary_term": 1}, True),
        ({"body": {"doc": {"a": 1}}}, True),
        ({"body": {"script": {"source": "x"}}}, False),
    ],
)
def test_update_idempotency(kwargs: dict[str, Any], idempotent: bool) -> None:
    spec = api.update(index="i", id="a/b", **kwargs)
    assert (spec.method, spec.path) == ("POST", "/i/_update/a%2Fb")
    assert spec.idempotent is idempotent


def test_update_body_and_params() -> None:
    spec = api.update(
        index="i",
        id=1,
        doc={"a": 1},
        doc_as_upsert=True,
        detect_noop=False,
        retry_on_conflict=3,
        refresh="wait_for",
        routing="r",
        source=True,
    )
    assert body_of(spec) == {"doc": {"a": 1}, "doc_as_upsert": True, "detect_noop": False}
    assert spec.params == {
        "retry_on_conflict": 3,
        "refresh": "wait_for",
        "routing": "r",
        "_source": True,
    }


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "exactly one of doc= or script="),
        ({"doc": {}, "script": {"source": "x"}}, "exactly one"),
        ({"script": {"source": "x"}, "doc_as_upsert": True}, "doc_as_upsert needs doc"),
        ({"doc": {}, "if_seq_no": 1}, "go together"),
        (
            {"doc": {}, "if_seq_no": 1, "if_primary_term": 1, "retry_on_conflict": 2},
            "retry_on_conflict cannot be combined",
        ),
    ],
)
def test_update_refuses_contradictions(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        api.update(index="i", id="1", **kwargs)


def test_update_script_must_be_a_mapping() -> None:
    with pytest.raises(SerializationError, match="params"):
        api.update(index="i", id="1", script="ctx._source.n = 1")  # type: ignore[arg-type]


# -- mget, msearch -----------------------------------------------------------------------------


def test_mget_by_ids() -> None:
    spec = api.mget(index="i", ids=[1, "b"], source=["a"])
    assert (spec.method, spec.path, spec.idempotent) == ("POST", "/i/_mget", True)
    assert body_of(spec) == {"ids": ["1", "b"]}
    assert spec.params == {"_source": ["a"]}


def test_mget_by_docs_without_index() -> None:
    spec = api.mget(docs=[{"_index": "a", "_id": "1"}])
    assert spec.path == "/_mget"
    assert body_of(spec) == {"docs": [{"_index": "a", "_id": "1"}]}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "needs ids"),
        ({"ids": ["1"]}, "needs index"),
        ({"index": "i", "ids": "abc"}, "not one string"),
    ],
)
def test_mget_validates(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        api.mget(**kwargs)


def test_msearch_is_ndjson_and_idempotent() -> None:
    spec = api.msearch(searches=[{"index": "a"}, {"query": {"match_all": {}}}, {}, {"size": 0}])
    assert (spec.method, spec.path, spec.idempotent) == ("POST", "/_msearch", True)
    assert spec.content_type == "application/x-ndjson"
    assert spec.body == b'{"index":"a"}\n{"query":{"match_all":{}}}\n{}\n{"size":0}\n'
    assert api.msearch(searches=[{}, {}], index=["a", "b"]).path == "/a,b/_msearch"


@pytest.mark.parametrize("searches", [[], [{}], [{}, {}, {}]])
def test_msearch_needs_pairs(searches: list[Any]) -> None:
    with pytest.raises(ValueError, match="alternate header and body"):
        api.msearch(searches=searches)


def test_msearch_refuses_json_strings() -> None:
    with pytest.raises(SerializationError):
        api.msearch(searches=['{"index":"a"}', '{"query":{}}'])  # type: ignore[list-item]


# -- templates ---------------------------------------------------------------------------------


def test_search_template_inline_and_stored() -> None:
    inline = api.search_template(
        index="i", source={"query": {"term": {"k": "{{v}}"}}}, params={"v": 'x" OR 1'}
    )
    assert (inline.method, inline.path, inline.idempotent) == ("POST", "/i/_search/template", True)
    assert body_of(inline) == {
        "source": {"query": {"term": {"k": "{{v}}"}}},
        "params": {"v": 'x" OR 1'},
    }
    stored = api.search_template(id="tpl", params={"v": 1}, explain=True)
    assert stored.path == "/_search/template"
    assert body_of(stored) == {"id": "tpl", "params": {"v": 1}, "explain": True}


def test_render_search_template() -> None:
    spec = api.render_search_template(source={"size": "{{n}}"}, params={"n": 3})
    assert (spec.path, body_of(spec)) == (
        "/_render/template",
        {"source": {"size": "{{n}}"}, "params": {"n": 3}},
    )
    stored = api.render_search_template(id="a b", params={"n": 3})
    assert (stored.path, body_of(stored)) == ("/_render/template/a%20b", {"params": {"n": 3}})


@pytest.mark.parametrize("kwargs", [{}, {"id": "x", "source": {}}])
def test_template_needs_exactly_one_source(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        api.search_template(**kwargs)


# -- by query ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("conflicts", "idempotent"), [(None, False), ("abort", False), ("proceed", True)]
)
def test_delete_by_query_idempotent_only_with_proceed(conflicts: Any, idempotent: bool) -> None:
    spec = api.delete_by_query(index="i", query={"term": {"a": 1}}, conflicts=conflicts)
    assert (spec.method, spec.path) == ("POST", "/i/_delete_by_query")
    assert spec.idempotent is idempotent
    assert spec.params is not None and spec.params["wait_for_completion"] is False
    assert body_of(spec) == {"query": {"term": {"a": 1}}}


def test_delete_by_query_needs_an_explicit_query() -> None:
    with pytest.raises(ValueError, match="match_all"):
        api.delete_by_query(index="i")
    assert api.delete_by_query(index="i", query={"match_all": {}}).path == "/i/_delete_by_query"


@pytest.mark.parametrize(
    ("kwargs", "idempotent"),
    [
        ({}, False),
        ({"conflicts": "proceed"}, True),
        ({"conflicts": "proceed", "script": {"source": "ctx._source.n += 1"}}, False),
        ({"script": {"source": "x"}}, False),
    ],
)
def test_update_by_query_idempotency(kwargs: dict[str, Any], idempotent: bool) -> None:
    spec = api.update_by_query(index=["a", "b"], **kwargs)
    assert (spec.method, spec.path) == ("POST", "/a,b/_update_by_query")
    assert spec.idempotent is idempotent


def test_by_query_params() -> None:
    spec = api.update_by_query(
        index="i",
        query={"match_all": {}},
        max_docs=10,
        slices="auto",
        requests_per_second=100,
        refresh=True,
        pipeline="p",
    )
    assert spec.params == {
        "wait_for_completion": False,
        "refresh": True,
        "slices": "auto",
        "requests_per_second": 100,
        "pipeline": "p",
    }
    assert body_of(spec) == {"query": {"match_all": {}}, "max_docs": 10}
    with pytest.raises(ValueError, match="conflicts"):
        api.update_by_query(index="i", conflicts="ignore")


def test_tasks() -> None:
    get = api.tasks_get(task_id="node:12")
    assert (get.method, get.path, get.idempotent) == ("GET", "/_tasks/node%3A12", True)
    cancel = api.tasks_cancel(task_id="node:12")
    assert (cancel.method, cancel.path, cancel.idempotent) == (
        "POST",
        "/_tasks/node%3A12/_cancel",
        True,
    )


def test_clear_scroll_ignores_gone_contexts() -> None:
    spec = api.clear_scroll(scroll_id="abc")
    assert (spec.method, spec.path, spec.ignore) == ("DELETE", "/_search/scroll", frozenset({404}))
    assert body_of(spec) == {"scroll_id": ["abc"]}


# -- indices and aliases -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "method", "path", "idempotent"),
    [
        (api.indices_get_mapping(index="i"), "GET", "/i/_mapping", True),
        (api.indices_get_mapping(), "GET", "/_mapping", True),
        (api.indices_put_mapping(index="i", properties={"a": {}}), "PUT", "/i/_mapping", True),
        (api.indices_get_settings(index="i"), "GET", "/i/_settings", True),
        (
            api.indices_get_settings(index="i", name="index.number_*"),
            "GET",
            "/i/_settings/index.number_*",
            True,
        ),
        (api.indices_get_settings(), "GET", "/_settings", True),
        (api.indices_put_settings(index="i", settings={"index": {}}), "PUT", "/i/_settings", True),
        (api.indices_put_alias(index="i", name="a"), "PUT", "/i/_alias/a", True),
        (api.indices_delete_alias(index="i", name="a"), "DELETE", "/i/_alias/a", True),
        (api.indices_get_alias(), "GET", "/_alias", True),
        (api.indices_get_alias(name="a"), "GET", "/_alias/a", True),
        (api.indices_get_alias(index="i", name=["a", "b"]), "GET", "/i/_alias/a,b", True),
    ],
)
def test_index_level_specs(spec: RequestSpec, method: str, path: str, idempotent: bool) -> None:
    assert (spec.method, spec.path, spec.idempotent) == (method, path, idempotent)


def test_put_mapping_and_settings_bodies() -> None:
    mapping = api.indices_put_mapping(
        index="i", properties={"t": {"type": "keyword"}}, dynamic="strict"
    )
    assert body_of(mapping) == {"properties": {"t": {"type": "keyword"}}, "dynamic": "strict"}
    with pytest.raises(ValueError, match="properties"):
        api.indices_put_mapping(index="i")
    settings = api.indices_put_settings(index="i", settings={"index": {"refresh_interval": "1s"}})
    assert body_of(settings) == {"index": {"refresh_interval": "1s"}}
    with pytest.raises(ValueError, match="settings"):
        api.indices_put_settings(index="i", settings={})


def test_put_alias_body() -> None:
    spec = api.indices_put_alias(
        index="i", name="a", filter={"term": {"x": 1}}, is_write_index=True
    )
    assert body_of(spec) == {"filter": {"term": {"x": 1}}, "is_write_index": True}
    assert api.indices_put_alias(index="i", name="a").body is None


@pytest.mark.parametrize(
    ("actions", "idempotent"),
    [
        ([{"add": {"index": "i", "alias": "a"}}], True),
        ([{"add": {"index": "i", "alias": "a"}}, {"remove": {"index": "j", "alias": "a"}}], False),
        ([{"remove_index": {"index": "old"}}], False),
    ],
)
def test_update_aliases_idempotent_only_when_adding(actions: list[Any], idempotent: bool) -> None:
    spec = api.indices_update_aliases(actions=actions)
    assert (spec.method, spec.path, spec.idempotent) == ("POST", "/_aliases", idempotent)
    assert body_of(spec) == {"actions": actions}


@pytest.mark.parametrize("actions", [[], [{}], [{"add": {}, "remove": {}}], ["add"]])
def test_update_aliases_validates(actions: list[Any]) -> None:
    with pytest.raises(ValueError, match="actions"):
        api.indices_update_aliases(actions=actions)


# -- cluster health and _cat -------------------------------------------------------------------


def test_health_without_waiting_is_a_plain_read() -> None:
    spec = api.cluster_health(level="indices")
    assert (spec.method, spec.path, spec.params) == (
        "GET",
        "/_cluster/health",
        {"level": "indices"},
    )
    assert (spec.long_running, spec.ignore, spec.timeout) == (False, frozenset(), None)


@pytest.mark.parametrize(
    ("timeout", "default", "server_wait", "budget"),
    [(None, 30.0, "29000ms", 30.0), (2.0, 30.0, "1600ms", 2.0), (120.0, 30.0, "119000ms", 120.0)],
)
def test_health_wait_fits_in_the_call_deadline(
    timeout: float | None, default: float, server_wait: str, budget: float
) -> None:
    spec = api.cluster_health(
        index="i", wait_for_status="green", timeout=timeout, default_timeout=default
    )
    assert spec.path == "/_cluster/health/i"
    assert spec.params == {"wait_for_status": "green", "timeout": server_wait}
    assert spec.timeout == budget
    assert spec.long_running is True  # the server is silent while it waits
    assert spec.ignore == frozenset({408})  # the answer is the report, not a reason to retry


def test_health_validates_status() -> None:
    with pytest.raises(ValueError, match="wait_for_status"):
        api.cluster_health(wait_for_status="blue")


@pytest.mark.parametrize(
    ("what", "target", "path", "params"),
    [
        ("indices", "logs-*", "/_cat/indices/logs-*", {"format": "json", "bytes": "b"}),
        ("count", None, "/_cat/count", {"format": "json"}),
        ("health", None, "/_cat/health", {"format": "json"}),
        ("shards", "i", "/_cat/shards/i", {"format": "json", "bytes": "b"}),
    ],
)
def test_cat(what: str, target: str | None, path: str, params: dict[str, str]) -> None:
    spec = api.cat(what, target=target)
    assert (spec.method, spec.path, spec.params, spec.idempotent) == ("GET", path, params, True)


def test_cat_refuses_a_path_as_its_name() -> None:
    with pytest.raises(ValueError, match="not a _cat API"):
        api.cat("indices/../..")


def test_node_info_specs() -> None:
    info = api.nodes_local_info()
    assert (info.method, info.path) == ("GET", "/_nodes/_local")
    stats = api.nodes_search_stats()
    assert (stats.method, stats.path) == ("GET", "/_nodes/stats/indices/search")


@pytest.mark.parametrize(
    "call",
    [
        lambda: api.search(index="i", query='{"match_all": {}}'),  # type: ignore[arg-type]
        lambda: api.count(index="i", query="x"),  # type: ignore[arg-type]
        lambda: api.update(index="i", id="1", doc='{"a": 1}'),  # type: ignore[arg-type]
        lambda: api.update(index="i", id="1", doc={}, upsert=b"{}"),  # type: ignore[arg-type]
        lambda: api.delete_by_query(index="i", query="*:*"),  # type: ignore[arg-type]
        lambda: api.indices_create(index="i", mappings='{"properties": {}}'),  # type: ignore[arg-type]
        lambda: api.indices_put_mapping(index="i", properties="{}"),  # type: ignore[arg-type]
    ],
)
def test_object_fields_refuse_json_strings(call: Any) -> None:
    with pytest.raises(SerializationError, match="must be a mapping"):
        call()
