"""Node discovery (``sturdysearch._core.sniff``): publish addresses, roles, and what to adopt."""

from __future__ import annotations

from typing import Any

import pytest

from sturdysearch._core.nodes import NodeConfig
from sturdysearch._core.sniff import (
    SniffError,
    adopt,
    is_dedicated_master,
    parse_nodes_http,
    parse_publish_address,
)

# -- publish_address -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "host", "port"),
    [
        ("1.2.3.4:9200", "1.2.3.4", 9200),
        ("10.0.0.5:9201", "10.0.0.5", 9201),
        ("host/1.2.3.4:9200", "host", 9200),
        ("es-data-1.internal/10.1.2.3:9200", "es-data-1.internal", 9200),
        ("[::1]:9200", "::1", 9200),
        ("[fe80::1:2]:9300", "fe80::1:2", 9300),
        ("host/[::1]:9200", "host", 9200),
        ("/1.2.3.4:9200", "1.2.3.4", 9200),  # empty name: the address
        ("localhost:9200", "localhost", 9200),
        ("  1.2.3.4:9200\n", "1.2.3.4", 9200),
        ("1.2.3.4:1", "1.2.3.4", 1),
        ("1.2.3.4:65535", "1.2.3.4", 65535),
    ],
)
def test_publish_address_forms(address: str, host: str, port: int) -> None:
    """The name before the slash, when present, is what the client connects to (TLS
    certificates name hosts); otherwise the address."""
    node = parse_publish_address(address, scheme="https")
    assert node == NodeConfig("https", host, port, "")


def test_publish_address_keeps_scheme_and_prefix() -> None:
    node = parse_publish_address("[::1]:9200", scheme="http", path_prefix="/es")
    assert node == NodeConfig("http", "::1", 9200, "/es")
    assert node.url == "http://[::1]:9200/es"


@pytest.mark.parametrize(
    "address",
    [
        "",
        "   ",
        "garbage",
        "1.2.3.4",
        "1.2.3.4:",
        ":9200",
        "1.2.3.4:abc",
        "1.2.3.4:0",
        "1.2.3.4:-1",
        "1.2.3.4:65536",
        "1.2.3.4:99999",
        "[::1]",
        "[::1]9200",
        "[::1]:",
        "[::1:9200",
        "[]:9200",
        "host/",
        "host/garbage",
        "host/[::1]",
        "host/:9200",
    ],
)
def test_publish_address_garbage(address: str) -> None:
    with pytest.raises(SniffError):
        parse_publish_address(address, scheme="http")


def test_sniff_error_is_a_value_error_naming_the_address() -> None:
    with pytest.raises(ValueError, match="'nope'"):
        parse_publish_address("nope", scheme="http")


# -- roles -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("info", "dedicated"),
    [
        # Elasticsearch 7 / 8 / 9: `roles` lists
        ({"roles": ["master"]}, True),
        ({"roles": ["master", "voting_only"]}, True),
        ({"roles": ["master", "remote_cluster_client"]}, True),
        ({"roles": ["master", "ml", "transform", "remote_cluster_client"]}, True),
        ({"roles": ["data", "ingest", "master"]}, False),
        ({"roles": ["master", "data_hot", "data_content"]}, False),
        ({"roles": ["master", "ingest"]}, False),
        ({"roles": ["data"]}, False),
        ({"roles": ["data_hot", "data_content", "ingest", "remote_cluster_client"]}, False),
        ({"roles": ["voting_only"]}, False),
        ({"roles": []}, False),  # coordinating-only: exactly where traffic should go
        ({"roles": ["ingest", "ml", "transform"]}, False),
        # OpenSearch 2+: cluster_manager
        ({"roles": ["cluster_manager"]}, True),
        ({"roles": ["cluster_manager", "master"]}, True),
        ({"roles": ["cluster_manager", "remote_cluster_client"]}, True),
        ({"roles": ["cluster_manager", "data", "ingest", "remote_cluster_client"]}, False),
        ({"roles": ["cluster_manager", "search"]}, False),
        # Pre-7: attributes.master / attributes.data
        ({"attributes": {"master": "true", "data": "false"}}, True),
        ({"attributes": {"master": "true", "data": "true"}}, False),
        ({"attributes": {"master": "true"}}, False),
        ({"attributes": {"master": "false", "data": "false"}}, False),
        ({"attributes": {"data": "false"}}, False),
        # Neither
        ({}, False),
        ({"roles": "master"}, False),  # not a list: ignored
        ({"attributes": "master"}, False),
        ({"roles": ["master", 7, None]}, True),  # non-strings ignored
    ],
)
def test_is_dedicated_master(info: dict[str, Any], dedicated: bool) -> None:
    assert is_dedicated_master(info) is dedicated


def test_roles_list_wins_over_attributes() -> None:
    info = {"roles": ["data"], "attributes": {"master": "true", "data": "false"}}
    assert is_dedicated_master(info) is False


# -- _nodes/http -----------------------------------------------------------------------------


def es_node(name: str, address: str | None, roles: list[str] | None = None) -> dict[str, Any]:
    info: dict[str, Any] = {
        "name": name,
        "roles": ["data", "ingest", "master"] if roles is None else roles,
    }
    if address is not None:
        info["http"] = {"bound_address": ["0.0.0.0:9200"], "publish_address": address}
    return info


def test_elasticsearch_cluster_with_dedicated_masters() -> None:
    body = {
        "_nodes": {"total": 5, "successful": 5, "failed": 0},
        "cluster_name": "prod",
        "nodes": {
            "m1": es_node("master-1", "10.0.0.1:9200", ["master"]),
            "m2": es_node("master-2", "10.0.0.2:9200", ["master", "voting_only"]),
            "d1": es_node("data-1", "data-1/10.0.0.3:9200", ["data_hot", "data_content"]),
            "d2": es_node("data-2", "10.0.0.4:9200", ["master", "data"]),
            "c1": es_node("coord-1", "[fd00::5]:9200", []),
        },
    }
    nodes, skipped = parse_nodes_http(body, scheme="https", path_prefix="/p")
    assert nodes == [
        NodeConfig("https", "data-1", 9200, "/p"),
        NodeConfig("https", "10.0.0.4", 9200, "/p"),
        NodeConfig("https", "fd00::5", 9200, "/p"),
    ]
    assert skipped == ["master-1: dedicated master", "master-2: dedicated master"]


def test_opensearch_cluster_manager_layout() -> None:
    body = {
        "nodes": {
            "a": es_node("os-cm", "10.0.0.1:9200", ["cluster_manager"]),
            "b": es_node("os-data", "10.0.0.2:9200", ["cluster_manager", "data", "ingest"]),
            "c": es_node("os-data-2", "10.0.0.3:9200", ["data", "ingest"]),
        }
    }
    nodes, skipped = parse_nodes_http(body, scheme="http")
    assert [n.host for n in nodes] == ["10.0.0.2", "10.0.0.3"]
    assert skipped == ["os-cm: dedicated master"]


def test_old_attributes_layout() -> None:
    body = {
        "nodes": {
            "a": {
                "name": "old-master",
                "attributes": {"master": "true", "data": "false"},
                "http": {"publish_address": "inet[/10.0.0.1:9200]"},
            },
            "b": {
                "name": "old-data",
                "attributes": {"master": "false"},
                "http": {"publish_address": "10.0.0.2:9200"},
            },
        }
    }
    nodes, skipped = parse_nodes_http(body, scheme="http")
    assert nodes == [NodeConfig("http", "10.0.0.2", 9200)]
    assert skipped == ["old-master: dedicated master"]


def test_nodes_without_http_are_skipped_with_a_note() -> None:
    body = {
        "nodes": {
            "a": es_node("no-http", None),
            "b": {**es_node("http-null", None), "http": None},
            "c": {**es_node("http-empty", None), "http": {}},
            "d": {**es_node("addr-not-str", None), "http": {"publish_address": 9200}},
            "e": es_node("ok", "10.0.0.9:9200"),
        }
    }
    nodes, skipped = parse_nodes_http(body, scheme="http")
    assert nodes == [NodeConfig("http", "10.0.0.9", 9200)]
    assert skipped == [
        f"{name}: no HTTP publish address (http disabled?)"
        for name in ("no-http", "http-null", "http-empty", "addr-not-str")
    ]


def test_bad_address_and_non_object_entries_are_skipped_with_a_note() -> None:
    body = {
        "nodes": {
            "x": "not a node",
            "y": es_node("bad-port", "10.0.0.1:http"),
            "z": es_node("ok", "10.0.0.2:9200"),
        }
    }
    nodes, skipped = parse_nodes_http(body, scheme="http")
    assert nodes == [NodeConfig("http", "10.0.0.2", 9200)]
    assert skipped[0] == "x: not an object"
    assert skipped[1].startswith("bad-port: bad port in publish_address")
    assert len(skipped) == 2


def test_node_without_name_is_named_by_id() -> None:
    body = {"nodes": {"abc123": {"roles": ["master"], "http": {"publish_address": "h:1"}}}}
    assert parse_nodes_http(body, scheme="http") == ([], ["abc123: dedicated master"])


def test_duplicates_are_merged_in_first_seen_order() -> None:
    body = {
        "nodes": {
            "a": es_node("a", "10.0.0.2:9200"),
            "b": es_node("b", "10.0.0.1:9200"),
            "c": es_node("c", " 10.0.0.2:9200 "),
            "d": es_node("d", "/10.0.0.1:9200"),
        }
    }
    nodes, skipped = parse_nodes_http(body, scheme="http")
    assert nodes == [NodeConfig("http", "10.0.0.2", 9200), NodeConfig("http", "10.0.0.1", 9200)]
    assert skipped == []


def test_same_ip_different_ports_are_different_nodes() -> None:
    body = {"nodes": {"a": es_node("a", "10.0.0.1:9200"), "b": es_node("b", "10.0.0.1:9201")}}
    nodes, _ = parse_nodes_http(body, scheme="http")
    assert [n.port for n in nodes] == [9200, 9201]


def test_empty_cluster() -> None:
    assert parse_nodes_http({"nodes": {}}, scheme="http") == ([], [])


@pytest.mark.parametrize(
    "body",
    [None, [], "nodes", {}, {"nodes": None}, {"nodes": []}, {"nodes": "x"}, {"_nodes": {}}],
)
def test_not_a_nodes_document(body: Any) -> None:
    with pytest.raises(SniffError, match="no 'nodes' object"):
        parse_nodes_http(body, scheme="http")


# -- adopt -----------------------------------------------------------------------------------

N1, N2, N3 = (NodeConfig("http", f"10.0.0.{i}", 9200) for i in range(1, 4))
SEED = NodeConfig("http", "localhost", 9200)


def test_adopt_nothing_found_keeps_current() -> None:
    nodes, warning = adopt([], [], (SEED,))
    assert nodes is None
    assert warning == "sniffing found no HTTP node; keeping the current nodes"


def test_adopt_nothing_reachable_keeps_current_and_explains_the_nat_trap() -> None:
    nodes, warning = adopt([N1, N2], [], (SEED,))
    assert nodes is None
    assert warning is not None
    assert "http://10.0.0.1:9200, http://10.0.0.2:9200" in warning
    assert "none answers from here" in warning
    assert "Docker or Kubernetes" in warning
    assert "keeping http://localhost:9200" in warning
    assert "Turn sniffing off" in warning


def test_adopt_partial_warns_listing_the_unreachable() -> None:
    nodes, warning = adopt([N1, N2, N3], [N1, N3], (SEED,))
    assert nodes == [N1, N3]
    assert warning == "sniffing: http://10.0.0.2:9200 do not answer from here and are left out"


def test_adopt_partial_lists_all_unreachable_in_found_order() -> None:
    nodes, warning = adopt([N3, N1, N2], [N1], (SEED,))
    assert nodes == [N1]
    assert warning is not None
    assert "http://10.0.0.3:9200, http://10.0.0.2:9200 do not answer" in warning


def test_adopt_all_reachable_no_warning() -> None:
    nodes, warning = adopt([N1, N2], [N1, N2], (SEED,))
    assert nodes == [N1, N2]
    assert warning is None


def test_adopt_result_can_replace_a_health_node_set() -> None:
    """What ``adopt`` returns is fed to ``NodeHealth.replace_nodes``, which refuses an empty
    set: a non-None answer is never empty."""
    for found, reachable in (([N1], [N1]), ([N1, N2], [N2]), ([N1], []), ([], [])):
        nodes, _ = adopt(found, reachable, (SEED,))
        assert nodes is None or len(nodes) > 0
