"""Recognizing the server from ``GET /`` (``sturdysearch._core.dialect``)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from sturdysearch._core.dialect import ServerInfo, parse_server_info
from sturdysearch.errors import MalformedResponseError

NODE = "https://es1:9200"


def opensearch(number: str) -> dict[str, Any]:
    return {
        "name": "os-node-1",
        "cluster_name": "docker-cluster",
        "cluster_uuid": "k3u4Zk7ZQ2mGmG6e4fQXaA",
        "version": {
            "distribution": "opensearch",
            "number": number,
            "build_type": "tar",
            "build_hash": "abc",
            "build_date": "2024-01-01T00:00:00Z",
            "build_snapshot": False,
            "lucene_version": "9.12.1",
            "minimum_wire_compatibility_version": "7.10.0",
            "minimum_index_compatibility_version": "7.0.0",
        },
        "tagline": "The OpenSearch Project: https://opensearch.org/",
    }


def elasticsearch(number: str, build_flavor: str | None) -> dict[str, Any]:
    version: dict[str, Any] = {
        "number": number,
        "build_type": "docker",
        "build_hash": "def",
        "build_date": "2024-01-01T00:00:00Z",
        "build_snapshot": False,
        "lucene_version": "10.1.0",
        "minimum_wire_compatibility_version": "7.17.0",
        "minimum_index_compatibility_version": "7.0.0",
    }
    if build_flavor is not None:
        version["build_flavor"] = build_flavor
    return {
        "name": "es-node-1",
        "cluster_name": "es-cluster",
        "cluster_uuid": "Y1s6sPZ0Q5W6mTn6bA7m2Q",
        "version": version,
        "tagline": "You Know, for Search",
    }


@pytest.mark.parametrize(
    ("number", "triple"),
    [("1.3.20", (1, 3, 20)), ("2.19.6", (2, 19, 6)), ("3.0.0", (3, 0, 0)), ("3.2.0", (3, 2, 0))],
)
def test_opensearch(number: str, triple: tuple[int, int, int]) -> None:
    info = parse_server_info(opensearch(number), NODE)
    assert info.flavor == "opensearch"
    assert info.version == number
    assert info.version_tuple == triple
    assert info.major == triple[0]
    assert info.build_flavor is None
    assert info.cluster_name == "docker-cluster"
    assert info.cluster_uuid == "k3u4Zk7ZQ2mGmG6e4fQXaA"
    assert info.node_name == "os-node-1"
    assert info.lucene_version == "9.12.1"
    assert str(info) == f"opensearch {number}"


@pytest.mark.parametrize(
    ("number", "build_flavor", "major"),
    [
        ("6.8.23", None, 6),
        ("7.10.2", "oss", 7),
        ("7.17.28", "default", 7),
        ("8.18.3", "default", 8),
        ("8.11.0", "serverless", 8),
        ("9.5.4", "default", 9),
        ("9.0.0-SNAPSHOT", "default", 9),
    ],
)
def test_elasticsearch(number: str, build_flavor: str | None, major: int) -> None:
    info = parse_server_info(elasticsearch(number, build_flavor), NODE)
    assert info.flavor == "elasticsearch"
    assert info.version == number
    assert info.major == major
    assert info.build_flavor == build_flavor
    assert info.node_name == "es-node-1"
    assert str(info) == f"elasticsearch {number}"


@pytest.mark.parametrize(
    "body",
    [
        # Amazon OpenSearch Service in compatibility mode: claims 7.10.2, no distribution.
        {
            "version": {"number": "7.10.2"},
            "tagline": "The OpenSearch Project: https://opensearch.org/",
        },
        {"version": {"number": "7.10.2", "distribution": "opendistro"}},
        {"version": {"number": "8.0.0"}},
        {"version": {"number": "8.0.0", "distribution": None}, "tagline": "Something else"},
        # A fork claiming an ES tagline but naming another distribution.
        {"version": {"number": "8.0.0", "distribution": "fork"}, "tagline": "You Know, for Search"},
    ],
)
def test_unknown_but_compatible(body: dict[str, Any]) -> None:
    info = parse_server_info(body, NODE)
    assert info.flavor == "unknown"
    assert info.cluster_name is None
    assert info.node_name is None
    assert info.lucene_version is None


def test_non_string_optional_fields_become_none() -> None:
    body = opensearch("2.19.6")
    body["cluster_name"] = 5
    body["name"] = None
    body["version"]["lucene_version"] = ["9"]
    info = parse_server_info(body, NODE)
    assert (info.cluster_name, info.node_name, info.lucene_version) == (None, None, None)


def test_raw_kept_but_not_compared_or_shown() -> None:
    a = parse_server_info(opensearch("2.19.6"), NODE)
    body = copy.deepcopy(opensearch("2.19.6"))
    body["extra"] = "x"
    b = parse_server_info(body, NODE)
    assert a == b
    assert a.raw == opensearch("2.19.6")
    assert "raw=" not in repr(a)
    assert isinstance(a, ServerInfo)


@pytest.mark.parametrize(
    "body",
    [
        None,
        "You Know, for Search",
        b"{}",
        42,
        [],
        [{"version": {"number": "8.0.0"}}],
        {},
        {"tagline": "You Know, for Search"},
        {"version": "8.0.0"},
        {"version": None},
        {"version": ["8.0.0"]},
        {"version": {}},
        {"version": {"number": None}},
        {"version": {"number": 8}},
        {"version": {"number": 8.0}},
        {"version": {"number": ""}},
        {"version": {"number": "8"}},
        {"version": {"number": "8.0"}},
        {"version": {"number": "v8.0.0"}},
        {"version": {"number": "eight"}},
        {"error": {"type": "security_exception"}, "status": 401},
        "<html><body>Welcome to nginx!</body></html>",
    ],
)
def test_garbage_raises_malformed(body: Any) -> None:
    with pytest.raises(MalformedResponseError) as info:
        parse_server_info(body, NODE)
    assert info.value.node == NODE
    assert str(info.value).endswith(f"(node {NODE})")
