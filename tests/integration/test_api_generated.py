"""The generated API against real servers: endpoints that had no method before, the flavor
differences spoken for the caller, and refusals before sending. Each test runs with the
blocking and the asyncio client, against every server of the run."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from sturdysearch import Client, PointInTime
from sturdysearch.errors import NotFoundError, UnsupportedApiError
from sturdysearch.testing.proxy import FaultProxy

#: These tests also run against the security-on servers (TLS, passwords), connecting with the
#: ``connection`` fixture.
pytestmark = [pytest.mark.sturdysearch_integration, pytest.mark.sturdysearch_secured]


def load(client: Client, index: str, n: int = 5) -> None:
    client.indices.create(index=index, settings={"number_of_shards": 1, "number_of_replicas": 0})
    client.bulk(
        operations=[
            line
            for i in range(n)
            for line in ({"index": {"_index": index, "_id": str(i)}}, {"n": i, "msg": f"m {i}"})
        ],
        refresh=True,
    )


def test_index_administration(any_client: Any, client: Client, index_name: str) -> None:
    load(client, index_name)
    assert any_client.indices.flush(index=index_name)["_shards"]["failed"] == 0
    merged = any_client.indices.forcemerge(index=index_name, max_num_segments=1)
    assert merged["_shards"]["failed"] == 0
    stats = any_client.indices.stats(index=index_name, metric="docs")
    assert stats["indices"][index_name]["primaries"]["docs"]["count"] == 5
    assert any_client.indices.close(index=index_name)["acknowledged"] is True
    assert any_client.indices.open(index=index_name)["acknowledged"] is True
    any_client.cluster.health(index=index_name, wait_for_status="green")
    assert any_client.indices.clear_cache(index=index_name)["_shards"]["failed"] == 0


def test_cluster_settings_round_trip(any_client: Any) -> None:
    key = "cluster.routing.allocation.node_concurrent_recoveries"
    try:
        answer = any_client.cluster.put_settings(body={"transient": {key: 3}})
        assert answer["acknowledged"] is True
        settings = any_client.cluster.get_settings(flat_settings=True)
        assert settings["transient"][key] == "3"
    finally:
        any_client.cluster.put_settings(body={"transient": {key: None}})
    assert key not in any_client.cluster.get_settings(flat_settings=True)["transient"]


def test_nodes_info_and_stats_take_path_parts(any_client: Any) -> None:
    info = any_client.nodes.info(metric="jvm")
    (node,) = info["nodes"].values()
    assert set(node) >= {"name", "jvm"}
    stats = any_client.nodes.stats(metric="jvm")
    (node_stats,) = stats["nodes"].values()
    assert node_stats["jvm"]["mem"]["heap_used_in_bytes"] > 0


def test_index_templates(any_client: Any) -> None:
    name = f"tpl-{uuid.uuid4().hex[:8]}"
    body = {"index_patterns": [f"{name}-*"], "template": {"settings": {"number_of_shards": 1}}}
    assert any_client.indices.put_index_template(name=name, body=body)["acknowledged"] is True
    try:
        assert any_client.indices.exists_index_template(name=name) is True
        got = any_client.indices.get_index_template(name=name)
        assert got["index_templates"][0]["name"] == name
    finally:
        any_client.indices.delete_index_template(name=name)
    assert any_client.indices.exists_index_template(name=name) is False
    with pytest.raises(NotFoundError):
        any_client.indices.get_index_template(name=name)


def test_ingest_pipelines(any_client: Any) -> None:
    # No processor: the harness's minimal server builds lack the ingest-common module.
    pid = f"p-{uuid.uuid4().hex[:8]}"
    body = {"description": f"made by {pid}", "processors": []}
    assert any_client.ingest.put_pipeline(id=pid, body=body)["acknowledged"] is True
    try:
        assert any_client.ingest.get_pipeline(id=pid)[pid]["description"] == f"made by {pid}"
        simulated = any_client.ingest.simulate(id=pid, body={"docs": [{"_source": {"a": 1}}]})
        assert simulated["docs"][0]["doc"]["_source"] == {"a": 1}
    finally:
        any_client.ingest.delete_pipeline(id=pid)
    with pytest.raises(NotFoundError):
        any_client.ingest.get_pipeline(id=pid)


def test_document_reads(any_client: Any, client: Client, index_name: str) -> None:
    load(client, index_name)
    assert any_client.get_source(index=index_name, id="2") == {"n": 2, "msg": "m 2"}
    explained = any_client.explain(index=index_name, id="2", body={"query": {"term": {"n": 2}}})
    assert explained["matched"] is True
    vectors = any_client.termvectors(index=index_name, id="2", fields="msg")
    assert set(vectors["term_vectors"]["msg"]["terms"]) == {"m", "2"}
    caps = any_client.field_caps(index=index_name, fields="n")
    assert set(caps["fields"]["n"]) == {"long"}
    counted = any_client.indices.validate_query(index=index_name, q="n:2")
    assert counted["valid"] is True


def test_scroll_through_generated_methods(any_client: Any, client: Client, index_name: str) -> None:
    load(client, index_name)
    first = any_client.search(index=index_name, size=2, scroll="1m", sort=["n"])
    seen = [hit["_id"] for hit in first.hits]
    scroll_id = first["_scroll_id"]
    while True:
        page = any_client.scroll(body={"scroll_id": scroll_id, "scroll": "1m"})
        if not page["hits"]["hits"]:
            break
        seen += [hit["_id"] for hit in page["hits"]["hits"]]
        scroll_id = page["_scroll_id"]
    assert seen == ["0", "1", "2", "3", "4"]
    assert any_client.clear_scroll(scroll_id=scroll_id)["succeeded"] is True


def test_point_in_time_speaks_the_servers_dialect(
    any_client: Any, client: Client, index_name: str
) -> None:
    load(client, index_name)
    server = client.info()
    if server.flavor == "opensearch" and server.version_tuple < (2, 4, 0):
        with pytest.raises(UnsupportedApiError, match="no point-in-time API"):
            any_client.open_point_in_time(index=index_name, keep_alive="1m")
        return
    pit = any_client.open_point_in_time(index=index_name, keep_alive="1m")
    assert isinstance(pit, PointInTime) and pit.id
    page = any_client.search(body={"pit": {"id": pit.id, "keep_alive": "1m"}, "size": 10})
    assert page.total == 5
    any_client.close_point_in_time(id=pit.id)
    any_client.close_point_in_time(id=pit.id)  # already gone: not an error
    # The other flavor's name is refused before anything is sent, naming ours.
    other = any_client.create_pit if server.flavor == "elasticsearch" else None
    if other is not None:
        with pytest.raises(UnsupportedApiError, match="open_point_in_time"):
            other(index=index_name, keep_alive="1m")


def test_an_api_the_flavor_lacks_is_refused_before_sending(
    make_client: Any, client: Client, proxy: FaultProxy, connection: dict[str, Any]
) -> None:
    flavor = client.info().flavor
    with make_client([proxy.url], **connection) as c:
        c.info()  # detection happens once; after it, a refusal sends nothing
        seen = proxy.stats.requests_seen
        if flavor == "opensearch":
            with pytest.raises(UnsupportedApiError, match=r"OpenSearch has no esql\.query API"):
                c.esql.query(body={"query": "FROM x"})
        else:
            with pytest.raises(UnsupportedApiError, match=r"Elasticsearch has no ppl\.query API"):
                c.ppl.query(body={"query": "source=x"})
        assert proxy.stats.requests_seen == seen


def test_cat_apis_answer_typed_rows(any_client: Any, client: Client, index_name: str) -> None:
    load(client, index_name)
    rows = any_client.cat.indices(index=index_name)
    assert rows[0]["index"] == index_name
    assert rows[0]["docs.count"] == 5  # typed: a number, not "5"
    plugins = any_client.cat.plugins()
    assert isinstance(plugins, list)
    pools = any_client.cat.thread_pool(thread_pool_patterns="search")
    assert {row["name"] for row in pools} == {"search"}


def test_tasks_list(any_client: Any) -> None:
    listed = any_client.tasks.list(actions="*list*", detailed=True)
    (node,) = listed["nodes"].values()
    assert any(
        t["action"].startswith("cluster:monitor/tasks/lists") for t in node["tasks"].values()
    )


def test_head_endpoints_answer_booleans(any_client: Any, client: Client, index_name: str) -> None:
    load(client, index_name, n=1)
    alias = f"{index_name}-alias"
    assert any_client.indices.exists_alias(name=alias) is False
    client.indices.put_alias(index=index_name, name=alias)
    assert any_client.indices.exists_alias(name=alias) is True
    assert any_client.indices.exists_alias(index=index_name, name=alias) is True
    assert any_client.exists_source(index=index_name, id="0") is True
    assert any_client.exists_source(index=index_name, id="nope") is False
