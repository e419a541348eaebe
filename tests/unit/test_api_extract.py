"""The facts extractor's pure parts, and invariants of the committed table."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("api_extract", ROOT / "scripts" / "api_extract.py")
assert spec is not None and spec.loader is not None
extract = importlib.util.module_from_spec(spec)
sys.modules["api_extract"] = extract
spec.loader.exec_module(extract)

TABLE = json.loads((ROOT / "scripts" / "api" / "endpoints.json").read_text())
TYPES = {"string", "list", "boolean", "integer", "number", "time", "enum", "object", "array", "any"}

REQUEST_TS = """
/**
 * Some words.
 * @rest_spec_name indices.example
 * @availability stack since=8.12.0 stability=stable
 */
export interface Request extends RequestBase {
  urls: [
    {
      path: '/{index}/_example'
      methods: ['PUT', 'POST']
    },
    {
      path: '/_example'
      methods: ['PUT']
    }
  ]
  path_parts: {
    /** Docs. */
    index?: Indices
  }
  query_parameters: {
    /**
     * @availability stack since=9.5.0 visibility=feature_flag
     */
    timeout?: Duration
    flat?: boolean
    size?: integer
  }
  body: {
    query?: QueryContainer
    fields?: Field[]
    nested?: { inner: string }
  }
}
"""


def test_typescript_request_facts() -> None:
    text = extract._COMMENT.sub("", REQUEST_TS)
    assert extract._fields(extract._block(text, "path_parts")) == {"index": ("Indices", True)}
    query = extract._fields(extract._block(text, "query_parameters"))
    assert {k: extract.ts_type(t) for k, (t, _) in query.items()} == {
        "timeout": "time",
        "flat": "boolean",
        "size": "integer",
    }
    body = extract._fields(extract._block(text, "body"))
    assert {k: extract.ts_type(t) for k, (t, _) in body.items()} == {
        "query": "object",
        "fields": "array",
        "nested": "object",
    }


@pytest.mark.parametrize(
    ("ts", "kind"),
    [
        ("string | string[]", "list"),
        ("Indices", "list"),
        ("Dictionary<string, Foo>", "object"),
        ("long", "integer"),
        ("double", "number"),
        ("Id", "string"),
        ("boolean", "boolean"),
    ],
)
def test_ts_types(ts: str, kind: str) -> None:
    assert extract.ts_type(ts) == kind


def test_versions_are_normalized() -> None:
    assert extract.norm_version("2.4") == "2.4.0"
    assert extract.norm_version("1.0.0") == "1.0.0"
    assert extract.norm_version(None) is None


def entry(paths: list[str], params: dict[str, Any] | None = None) -> dict[str, Any]:
    urls = [
        {"path": p, "methods": ["GET"], "parts": [x.strip("{}") for x in p.split("/") if "{" in x]}
        for p in paths
    ]
    return {
        "urls": urls,
        "parts": {},
        "params": params or {},
        "body": "none",
        "body_format": "json",
        "body_fields": None,
        "added": None,
        "removed": None,
        "doc_url": None,
    }


def test_majors_merge_into_version_ranges() -> None:
    merged = extract.es_merge(
        {
            7: {
                "old": entry(["/_old"]),
                "get": entry(["/{index}/{type}/{id}", "/{index}/_doc/{id}"]),
            },
            8: {"old": entry(["/_old"]), "get": entry(["/{index}/_doc/{id}"])},
            9: {"get": entry(["/{index}/_doc/{id}"]), "new": entry(["/_new"])},
        }
    )
    assert (merged["old"]["added"], merged["old"]["removed"]) == (None, "9.0.0")
    assert (merged["new"]["added"], merged["new"]["removed"]) == ("9.0.0", None)
    typed = next(u for u in merged["get"]["urls"] if "{type}" in u["path"])
    assert (typed["added"], typed["removed"]) == (None, "8.0.0")


def test_table_invariants() -> None:
    assert {s["license"] for f in TABLE["sources"].values() for s in f} == {"Apache-2.0"}
    assert all(len(s["commit"]) == 40 for f in TABLE["sources"].values() for s in f)
    for endpoint_id, flavors in TABLE["endpoints"].items():
        present = [f for f in ("elasticsearch", "opensearch") if flavors.get(f)]
        assert present, endpoint_id
        for flavor in present:
            data = flavors[flavor]
            assert data["urls"], endpoint_id
            for url in data["urls"]:
                assert set(url["parts"]) <= set(data["parts"]), (endpoint_id, url)
                assert all(m in {"GET", "HEAD", "PUT", "POST", "DELETE"} for m in url["methods"])
            for p in data["params"].values():
                assert p["type"] in TYPES, (endpoint_id, p)


@pytest.mark.parametrize(
    ("endpoint_id", "flavor", "method", "path"),
    [
        ("search", "elasticsearch", "POST", "/{index}/_search"),
        ("search", "opensearch", "POST", "/{index}/_search"),
        ("index", "opensearch", "PUT", "/{index}/_doc/{id}"),
        ("indices.create", "elasticsearch", "PUT", "/{index}"),
        ("cluster.put_settings", "opensearch", "PUT", "/_cluster/settings"),
        ("open_point_in_time", "elasticsearch", "POST", "/{index}/_pit"),
        ("create_pit", "opensearch", "POST", "/{index}/_search/point_in_time"),
        ("indices.create_data_stream", "elasticsearch", "PUT", "/_data_stream/{name}"),
        ("indices.create_data_stream", "opensearch", "PUT", "/_data_stream/{name}"),
        ("security.authenticate", "elasticsearch", "GET", "/_security/_authenticate"),
        ("security.authinfo", "opensearch", "GET", "/_plugins/_security/authinfo"),
    ],
)
def test_known_endpoints(endpoint_id: str, flavor: str, method: str, path: str) -> None:
    data = TABLE["endpoints"][endpoint_id][flavor]
    assert any(u["path"] == path and method in u["methods"] for u in data["urls"]), data["urls"]


def test_flavor_specific_names() -> None:
    endpoints = TABLE["endpoints"]
    assert endpoints["open_point_in_time"]["opensearch"] is None
    assert endpoints["create_pit"]["elasticsearch"] is None
    assert endpoints["create_pit"]["opensearch"]["added"] == "2.4.0"
