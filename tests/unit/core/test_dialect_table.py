"""The dialect table (``sturdysearch._core.dialect``): what each flavor and version gets, the
``GET /_nodes/_local`` fallback, the PIT requests, and the missing-module hints."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from sturdysearch._core.dialect import (
    FEATURES,
    Dialect,
    ServerInfo,
    dialect_for,
    missing_module_hint,
    parse_nodes_info,
    parse_server_info,
    with_hint,
)
from sturdysearch.errors import BadRequestError, MalformedResponseError, UnsupportedApiError

NODE = "http://127.0.0.1:9200"


def server(flavor: str, version: str, **version_extra: Any) -> ServerInfo:
    body: dict[str, Any] = {"name": "n0", "version": {"number": version, **version_extra}}
    if flavor == "opensearch":
        body["version"]["distribution"] = "opensearch"
    elif flavor == "elasticsearch":
        body["tagline"] = "You Know, for Search"
    return parse_server_info(body, NODE)


# (flavor, version) -> (pit, tiebreaker, plugins prefix, warned)
TABLE = [
    ("elasticsearch", "6.8.23", None, None, None, True),
    ("elasticsearch", "7.9.3", None, None, None, False),
    ("elasticsearch", "7.10.2", "elasticsearch", None, None, False),
    ("elasticsearch", "7.12.0", "elasticsearch", "_shard_doc", None, False),
    ("elasticsearch", "7.17.29", "elasticsearch", "_shard_doc", None, False),
    ("elasticsearch", "8.19.21", "elasticsearch", "_shard_doc", None, False),
    ("elasticsearch", "9.5.4", "elasticsearch", "_shard_doc", None, False),
    ("elasticsearch", "10.0.0", "elasticsearch", "_shard_doc", None, True),
    ("opensearch", "1.3.20", None, None, "_plugins", False),
    ("opensearch", "2.3.0", None, None, "_plugins", False),
    ("opensearch", "2.4.0", "opensearch", None, "_plugins", False),
    ("opensearch", "2.19.6", "opensearch", None, "_plugins", False),
    ("opensearch", "3.2.0", "opensearch", None, "_plugins", False),
    ("opensearch", "3.3.0", "opensearch", "_shard_doc", "_plugins", False),
    ("opensearch", "3.8.0", "opensearch", "_shard_doc", "_plugins", False),
    ("opensearch", "4.0.0", "opensearch", "_shard_doc", "_plugins", True),
]


@pytest.mark.parametrize(("flavor", "version", "pit", "tiebreaker", "prefix", "warned"), TABLE)
def test_dialect_table(
    flavor: str,
    version: str,
    pit: str | None,
    tiebreaker: str | None,
    prefix: str | None,
    warned: bool,
) -> None:
    dialect = dialect_for(server(flavor, version))
    assert (dialect.pit, dialect.pit_tiebreaker, dialect.plugins_prefix) == (
        pit,
        tiebreaker,
        prefix,
    )
    assert (dialect.warning is not None) is warned
    assert dialect.scan_uses_pit is (pit is not None and tiebreaker is not None)
    assert dict(dialect.headers) == {}  # plain application/json everywhere (see module doc)


def test_feature_rows_are_sorted_by_version_within_a_feature() -> None:
    seen: dict[tuple[str, str], tuple[int, int, int]] = {}
    for flavor, since, name, _ in FEATURES:
        key = (flavor, name)
        assert since > seen.get(key, (0, 0, 0))
        seen[key] = since


def test_unknown_server_is_best_effort_with_a_warning() -> None:
    dialect = dialect_for(server("unknown", "7.10.2"))
    assert (dialect.pit, dialect.scan_uses_pit) == (None, False)
    assert dialect.warning is not None and "neither Elasticsearch nor OpenSearch" in dialect.warning


def test_open_distro_gets_its_plugin_prefix() -> None:
    info = parse_server_info({"version": {"number": "7.10.2", "distribution": "opendistro"}}, NODE)
    assert dialect_for(info).plugins_prefix == "_opendistro"


def test_undetectable_server_is_conservative() -> None:
    dialect = dialect_for(None)
    assert dialect.server is None and dialect.pit is None
    assert dialect.warning is not None and "could not be detected" in dialect.warning
    assert "not detected" in dialect.describe()


# -- PIT requests ------------------------------------------------------------------------------


def test_elasticsearch_pit_requests() -> None:
    dialect = dialect_for(server("elasticsearch", "8.19.21"))
    opened = dialect.open_pit(["a", "b"], "1m", timeout=5.0)
    assert (opened.method, opened.path, opened.params) == (
        "POST",
        "/a,b/_pit",
        {"keep_alive": "1m"},
    )
    assert opened.idempotent is True and opened.timeout == 5.0
    assert dialect.pit_id({"id": "xyz", "_shards": {}}) == "xyz"
    closed = dialect.close_pit("xyz", timeout=None)
    assert (closed.method, closed.path) == ("DELETE", "/_pit")
    assert closed.body is not None and orjson.loads(closed.body) == {"id": "xyz"}
    assert closed.ignore == frozenset({404}) and closed.idempotent


def test_opensearch_pit_requests() -> None:
    dialect = dialect_for(server("opensearch", "2.19.6"))
    opened = dialect.open_pit("logs", "5m", timeout=None)
    assert (opened.path, opened.params) == ("/logs/_search/point_in_time", {"keep_alive": "5m"})
    assert dialect.pit_id({"pit_id": "abc", "creation_time": 1}) == "abc"
    closed = dialect.close_pit("abc", timeout=None)
    assert closed.path == "/_search/point_in_time"
    assert closed.body is not None and orjson.loads(closed.body) == {"pit_id": ["abc"]}


def test_pit_id_missing_is_malformed() -> None:
    with pytest.raises(MalformedResponseError, match="'pit_id'"):
        dialect_for(server("opensearch", "2.19.6")).pit_id({"id": "wrong key"})


def test_no_pit_on_opensearch_1() -> None:
    with pytest.raises(UnsupportedApiError, match="no point-in-time API"):
        dialect_for(server("opensearch", "1.3.20")).open_pit("i", "1m", timeout=None)
    with pytest.raises(UnsupportedApiError, match="no point-in-time API"):
        dialect_for(server("opensearch", "1.3.20")).close_pit("x", timeout=None)


def test_dialect_is_a_frozen_value() -> None:
    dialect = Dialect(None)
    with pytest.raises(AttributeError):
        dialect.pit = "x"  # type: ignore[misc]


# -- GET /_nodes/_local fallback ---------------------------------------------------------------


def test_nodes_info_of_elasticsearch_without_root_endpoint() -> None:
    body = {
        "cluster_name": "c",
        "nodes": {"id1": {"name": "node-0", "version": "8.19.21", "build_flavor": "default"}},
    }
    info = parse_nodes_info(body, {"x-elastic-product": "Elasticsearch"}, NODE)
    assert (info.flavor, info.version, info.version_tuple) == (
        "elasticsearch",
        "8.19.21",
        (8, 19, 21),
    )
    assert (info.build_flavor, info.cluster_name, info.node_name) == ("default", "c", "node-0")
    assert info.raw == body


def test_nodes_info_flavor_from_build_flavor_or_unknown() -> None:
    es = {"nodes": {"a": {"version": "7.10.2", "build_flavor": "oss"}}}
    assert parse_nodes_info(es, {}, NODE).flavor == "elasticsearch"
    other = {"nodes": {"a": {"version": "2.19.6", "build_type": "zip"}}}
    assert parse_nodes_info(other, {}, NODE).flavor == "unknown"


@pytest.mark.parametrize(
    "body",
    [
        None,
        {},
        {"nodes": {}},
        {"nodes": {"a": {}}},
        {"nodes": {"a": {"version": 8}}},
        {"nodes": []},
    ],
)
def test_nodes_info_garbage(body: Any) -> None:
    with pytest.raises(MalformedResponseError):
        parse_nodes_info(body, {}, NODE)


# -- missing modules ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "path", "module"),
    [
        (
            400,
            {"error": "no handler found for uri [/i/_delete_by_query] and method [POST]"},
            "/i/_delete_by_query",
            "reindex",
        ),
        (
            405,
            {"error": "Incorrect HTTP method for uri [/i/_update_by_query]"},
            "/i/_update_by_query",
            "reindex",
        ),
        (
            400,
            {
                "error": {
                    "type": "illegal_argument_exception",
                    "reason": "request [/i/_delete_by_query] contains unrecognized parameters: [wait_for_completion]",
                }
            },
            "/i/_delete_by_query",
            "reindex",
        ),
        (
            400,
            {
                "error": {
                    "type": "illegal_argument_exception",
                    "reason": "Invalid type: expecting [_doc] but got [_search]",
                }
            },
            "/i/_search/template",
            "lang-mustache",
        ),
        (
            400,
            {
                "error": {
                    "type": "invalid_index_name_exception",
                    "reason": "Invalid index name [_render]",
                }
            },
            "/_render/template",
            "lang-mustache",
        ),
        (
            400,
            {
                "error": {
                    "type": "illegal_argument_exception",
                    "reason": "failed to execute script",
                    "caused_by": {"reason": "script_lang not supported [painless]"},
                }
            },
            "/i/_update/1",
            "lang-painless",
        ),
    ],
)
def test_missing_module_hint(status: int, body: Any, path: str, module: str) -> None:
    detail = body["error"]
    error = BadRequestError(
        status,
        body=body,
        error_type=None if isinstance(detail, str) else detail["type"],
        reason=detail if isinstance(detail, str) else detail["reason"],
    )
    hint = missing_module_hint(error, path)
    assert hint is not None and module in hint
    hinted = with_hint(error, path)
    assert type(hinted) is BadRequestError and module in str(hinted)
    assert hinted.__cause__ is error and hinted.body == body


def test_ordinary_errors_get_no_hint() -> None:
    error = BadRequestError(400, error_type="parsing_exception", reason="unknown query [x]")
    assert missing_module_hint(error, "/i/_delete_by_query") is None
    assert with_hint(error, "/i/_search/template") is error
    unrelated = BadRequestError(400, body={"error": "no handler found for uri [/x]"})
    assert missing_module_hint(unrelated, "/i/_search") is None
