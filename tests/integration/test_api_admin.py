"""Server detection, index administration, aliases, cluster health, ``_cat`` and tasks, the same
test against every server of the run."""

from __future__ import annotations

import time
from typing import Any

import pytest

from sturdysearch import Client, ClusterHealth, ServerInfo
from sturdysearch.errors import ApiError, BadRequestError, NotFoundError

#: These tests also run against the security-on servers (TLS, passwords), connecting with the
#: ``connection`` fixture.
pytestmark = pytest.mark.sturdysearch_secured


def test_detection_matches_the_server(client: Client, search_cluster: Any) -> None:
    info = client.info()
    assert isinstance(info, ServerInfo)
    assert (info.flavor, info.version) == (str(search_cluster.flavor), search_cluster.version)
    assert info.cluster_name
    dialect = client.dialect()
    assert dialect.server == info
    assert dialect.warning is None  # every harness version is a tested one
    assert dict(dialect.headers) == {}
    has_pit = info.flavor == "elasticsearch" or info.version_tuple >= (2, 4, 0)
    assert (dialect.pit is not None) is has_pit


def test_index_lifecycle_mapping_and_settings(client: Client, index_name: str) -> None:
    created = client.indices.create(
        index=index_name,
        settings={"number_of_shards": 2, "number_of_replicas": 0},
        mappings={"properties": {"title": {"type": "text"}}},
    )
    assert created["acknowledged"] is True
    assert client.indices.exists(index=index_name) is True
    with pytest.raises(BadRequestError) as caught:
        client.indices.create(index=index_name)
    assert caught.value.error_type == "resource_already_exists_exception"
    client.indices.put_mapping(index=index_name, properties={"tag": {"type": "keyword"}})
    mapping = client.indices.get_mapping(index=index_name)
    assert mapping[index_name]["mappings"]["properties"] == {
        "title": {"type": "text"},
        "tag": {"type": "keyword"},
    }
    client.indices.put_settings(index=index_name, settings={"index": {"refresh_interval": "5s"}})
    settings = client.indices.get_settings(index=index_name)[index_name]["settings"]["index"]
    assert (settings["refresh_interval"], settings["number_of_shards"]) == ("5s", "2")
    flat = client.indices.get_settings(
        index=index_name, name="index.number_of_shards", flat_settings=True
    )
    assert flat[index_name]["settings"] == {"index.number_of_shards": "2"}
    assert client.indices.delete(index=index_name)["acknowledged"] is True
    assert client.indices.exists(index=index_name) is False
    with pytest.raises(NotFoundError):
        client.indices.get_mapping(index=index_name)


def test_aliases(client: Client, index_name: str) -> None:
    client.indices.create(index=index_name)
    alias = f"{index_name}-alias"
    other = f"{index_name}-other"
    client.indices.put_alias(index=index_name, name=alias, filter={"term": {"kind": "a"}})
    assert set(client.indices.get_alias(name=alias)) == {index_name}
    assert alias in client.indices.get_alias(index=index_name)[index_name]["aliases"]
    client.index(index=alias, id="1", document={"kind": "a"}, refresh=True)
    assert client.count(index=alias)["count"] == 1
    client.indices.update_aliases(
        actions=[
            {"remove": {"index": index_name, "alias": alias}},
            {"add": {"index": index_name, "alias": other}},
        ]
    )
    assert client.indices.get_alias(name=alias, ignore=404).meta.status == 404
    with pytest.raises(NotFoundError):
        client.indices.get_alias(name=alias)
    client.indices.delete_alias(index=index_name, name=other)
    with pytest.raises(NotFoundError):
        client.indices.delete_alias(index=index_name, name=other)
    client.indices.delete(index=other, ignore=404)


def test_cluster_health(client: Client, index_name: str) -> None:
    health = client.cluster.health()
    assert isinstance(health, ClusterHealth)
    assert health.status in ("green", "yellow") and health.number_of_nodes == 1
    client.indices.create(index=index_name, settings={"number_of_replicas": 0})
    ready = client.cluster.health(index=index_name, wait_for_status="green", timeout=20)
    assert (ready.status, ready.timed_out) == ("green", False)


def test_cluster_health_wait_that_cannot_succeed(client: Client, index_name: str) -> None:
    """A replica can never be assigned on one node: the server-side wait ends in 408, within
    the call's deadline, reported once (not retried as a 408 normally would be)."""
    client.indices.create(index=index_name, settings={"number_of_replicas": 1})
    started = time.monotonic()
    with pytest.raises(ApiError) as caught:
        client.cluster.health(index=index_name, wait_for_status="green", timeout=2)
    elapsed = time.monotonic() - started
    assert caught.value.status == 408
    assert "status yellow" in str(caught.value)
    assert 1.0 < elapsed < 4.0
    report = client.cluster.health(
        index=index_name, wait_for_status="green", timeout=2, raise_on_timeout=False
    )
    assert (report.timed_out, report.status, report.unassigned_shards) == (True, "yellow", 1)


def test_cat_answers_are_typed_rows(client: Client, index_name: str) -> None:
    client.indices.create(index=index_name, settings={"number_of_replicas": 0})
    client.index(index=index_name, id="1", document={"a": 1}, refresh=True)
    (row,) = client.cat.indices(index=index_name)
    assert row["index"] == index_name
    assert (row["docs.count"], row["pri"], row["rep"]) == (1, 1, 0)
    assert isinstance(row["store.size"], int)  # bytes, not "4kb"
    (count,) = client.cat.count(index=index_name)
    assert count["count"] == 1
    (health,) = client.cat.health()
    assert health["status"] in ("green", "yellow") and health["node.total"] == 1
    shards = client.cat.shards(index=index_name)
    assert [(s["index"], s["prirep"], s["docs"]) for s in shards] == [(index_name, "p", 1)]
    assert isinstance(client.cat.nodes()[0]["heap.percent"], int)
    assert client.cat.aliases(name=f"{index_name}-none") == []
    assert isinstance(client.cat.allocation()[0]["shards"], int)


def test_tasks_api(client: Client) -> None:
    with pytest.raises(NotFoundError):
        client.tasks.get(task_id="nonode:1")
