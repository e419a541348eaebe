"""Request model and encoding (``sturdysearch._core.request``)."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import pytest

from sturdysearch._core.request import (
    RequestSpec,
    default_idempotent,
    encode_params,
    id_segment,
    index_segment,
    param_value,
)


@pytest.mark.parametrize(
    ("doc_id", "segment"),
    [
        ("1", "1"),
        (1, "1"),
        (0, "0"),
        ("a/b", "a%2Fb"),
        ("a?b=c", "a%3Fb%3Dc"),
        ("a#frag", "a%23frag"),
        ("with space", "with%20space"),
        ("中文", "%E4%B8%AD%E6%96%87"),
        ("ü", "%C3%BC"),
        ("a+b", "a%2Bb"),
        ("a%2Fb", "a%252Fb"),
        ("a&b", "a%26b"),
        ("..", ".."),
        ("a\r\nb", "a%0D%0Ab"),
        ("_-.~", "_-.~"),
    ],
)
def test_id_segment(doc_id: Any, segment: str) -> None:
    assert id_segment(doc_id) == segment
    assert "/" not in segment and "?" not in segment and "#" not in segment
    assert unquote(segment) == str(doc_id)


def test_empty_id_refused() -> None:
    with pytest.raises(ValueError, match="cannot be empty"):
        id_segment("")


def test_none_id_refused() -> None:
    with pytest.raises(ValueError):
        id_segment(None)


@pytest.mark.parametrize(
    ("index", "segment"),
    [
        ("books", "books"),
        (["a", "b"], "a,b"),
        (("a", "b", "c"), "a,b,c"),
        ("logs-*", "logs-*"),
        (["logs-*", "-logs-old"], "logs-*,-logs-old"),
        ("a/b", "a%2Fb"),
        ("my index", "my%20index"),
        ("中文", "%E4%B8%AD%E6%96%87"),
        ("a?b", "a%3Fb"),
        ("a#b", "a%23b"),
        (".kibana", ".kibana"),
        ("<logs-{now/d}>", "%3Clogs-%7Bnow%2Fd%7D%3E"),
    ],
)
def test_index_segment(index: Any, segment: str) -> None:
    assert index_segment(index) == segment


def test_index_segment_from_generator() -> None:
    assert index_segment(n for n in ["a", "b"]) == "a,b"


@pytest.mark.parametrize("index", ["", [], [""], ["a", ""], ["a", None], [1]])
def test_bad_index_refused(index: Any) -> None:
    with pytest.raises(ValueError, match="index must be"):
        index_segment(index)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (True, "true"),
        (False, "false"),
        (1, "1"),
        (0, "0"),
        (1.5, "1.5"),
        ("wait_for", "wait_for"),
        (["a", "b"], "a,b"),
        (("a", True, 3), "a,true,3"),
        ([], ""),
        (frozenset({"x"}), "x"),
    ],
)
def test_param_value(value: Any, text: str) -> None:
    assert param_value(value) == text


@pytest.mark.parametrize(
    ("params", "query"),
    [
        ({"refresh": True}, "refresh=true"),
        ({"refresh": False, "routing": None}, "refresh=false"),
        ({"a": None, "b": None}, ""),
        ({"_source": ["title", "author.*"]}, "_source=title,author.*"),
        ({"q": "title:a b&c=d"}, "q=title%3Aa%20b%26c%3Dd"),
        ({"q": "a+b/c?d#e"}, "q=a%2Bb%2Fc%3Fd%23e"),
        ({"k y": "v"}, "k%20y=v"),
        ({"q": "中"}, "q=%E4%B8%AD"),
        ({"size": 0, "from": 10}, "size=0&from=10"),
        ({"x": ""}, "x="),
    ],
)
def test_encode_params(params: dict[str, Any], query: str) -> None:
    assert encode_params(params) == query


@pytest.mark.parametrize(
    ("params", "target"),
    [
        (None, "/i/_search"),
        ({}, "/i/_search"),
        ({"a": None}, "/i/_search"),
        ({"size": 10, "pretty": True}, "/i/_search?size=10&pretty=true"),
    ],
)
def test_target(params: dict[str, Any] | None, target: str) -> None:
    assert RequestSpec("POST", "/i/_search", params=params).target == target


@pytest.mark.parametrize(
    ("method", "idempotent"),
    [
        ("GET", True),
        ("get", True),
        ("HEAD", True),
        ("OPTIONS", True),
        ("PUT", True),
        ("DELETE", True),
        ("POST", False),
        ("post", False),
        ("PATCH", False),
    ],
)
def test_default_idempotent(method: str, idempotent: bool) -> None:
    assert default_idempotent(method) is idempotent


def test_request_spec_defaults() -> None:
    spec = RequestSpec("GET", "/")
    assert spec.idempotent is False
    assert spec.ignore == frozenset()
    assert spec.content_type == "application/json"
    assert spec.long_running is False
    assert spec.body is None and spec.timeout is None
