"""Documents and actions to NDJSON: the fast path must refuse exactly what ``dumps`` refuses."""

from __future__ import annotations

import collections
import dataclasses
import datetime
import math
import types
import uuid
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from sturdysearch._core.bulk.encode import (
    action_line,
    encode_source,
    id_text,
    raw_source,
    source_line,
    split_item,
)
from sturdysearch.errors import SerializationError


def test_plain_document_is_compact_json() -> None:
    doc = {"a": 1, "b": [1, 2.5, "x"], "c": {"d": None}, "e": True}
    assert orjson.loads(encode_source(doc)) == doc
    assert b"\n" not in encode_source({"text": "line\nbreak"})


@pytest.mark.parametrize(
    ("doc", "path"),
    [
        ({"a": math.nan}, "document['a']"),
        ({"a": 1, "b": {"c": [1, math.inf]}}, "document['b']['c'][1]"),
        ({"x": None, "y": -math.inf}, "document['y']"),
        ({"big": 2**70}, "document['big']"),
        ({"s": {1, 2}}, "document['s']"),
        ({"o": object()}, "document['o']"),
    ],
)
@pytest.mark.parametrize("encode", [encode_source, source_line])
def test_bad_values_are_refused_with_their_path(
    doc: dict[str, Any], path: str, encode: Callable[[Any], bytes]
) -> None:
    with pytest.raises(SerializationError) as info:
        encode(doc)
    assert info.value.path == path


class _Flag(str):
    pass


@dataclasses.dataclass
class _Inner:
    n: int
    when: datetime.datetime


@pytest.mark.parametrize(
    "doc",
    [
        {"a": 1, "b": [1, 2.5, "x"], "c": {"d": True}},
        {"a": None, "b": "null", "c": [None]},  # null in the output: the careful path decides
        {1: "int key", "b": {2.5: "float key", None: "none key"}},  # orjson needs an option
        {_Flag("k"): _Flag("v")},  # str subclasses
        {"m": collections.OrderedDict(z=1, a=2), "p": types.MappingProxyType({"x": [1]})},
        {"inner": _Inner(3, datetime.datetime(2024, 5, 1, 12, 30))},
        {"id": uuid.UUID(int=7), "day": datetime.date(2024, 5, 1)},
        {"text": 'line\nbreak \u2028 "quoted" \\'},
        {"big": 2**63 - 1, "small": -(2**63), "tiny": 5e-324},
        collections.OrderedDict(a=1),  # not a dict: the careful path only
        _Inner(1, datetime.datetime(2024, 1, 1)),
        b'{"raw": true}',
    ],
)
def test_the_fast_line_is_the_careful_encoding_plus_a_newline(doc: Any) -> None:
    assert source_line(doc) == encode_source(doc) + b"\n"


def test_cycle_is_refused() -> None:
    doc: dict[str, Any] = {"a": 1}
    doc["self"] = doc
    with pytest.raises(SerializationError, match=r"cycle|too deep"):
        encode_source(doc)


def test_none_values_pass_the_closer_look() -> None:
    assert encode_source({"a": None, "b": "null"}) == b'{"a":null,"b":"null"}'


def test_other_mappings_dataclasses_and_dates() -> None:
    @dataclasses.dataclass
    class Doc:
        n: int
        when: datetime.date

    assert orjson.loads(encode_source(Doc(1, datetime.date(2024, 5, 1)))) == {
        "n": 1,
        "when": "2024-05-01",
    }
    with pytest.raises(SerializationError):
        encode_source(Doc(1, math.nan))  # type: ignore[arg-type]


def test_str_is_refused_but_bytes_are_checked_json() -> None:
    with pytest.raises(SerializationError, match="not str"):
        encode_source('{"a": 1}')
    assert encode_source(b' {"a": 1}\n') == b'{"a": 1}'
    assert encode_source(b'{\n  "a": 1\n}') == b'{"a":1}'  # pretty JSON is compacted
    with pytest.raises(SerializationError, match="not valid JSON"):
        encode_source(b'{"a": NaN}')
    with pytest.raises(SerializationError, match="JSON object"):
        raw_source(b"[1, 2]")


def test_ids() -> None:
    assert id_text("x") == "x"
    assert id_text(42) == "42"
    for bad in (1.5, None, True, object()):
        with pytest.raises(TypeError):
            id_text(bad)


def test_action_line_and_split() -> None:
    action = action_line("index", {"_id": "1", "_index": "logs"})
    assert action == b'{"index":{"_id":"1","_index":"logs"}}\n'
    assert split_item(action + b'{"a":1}\n') == (action[:-1], b'{"a":1}')
    delete = action_line("delete", {"_id": "1"})
    assert split_item(delete) == (delete[:-1], None)
    with pytest.raises(ValueError):
        action_line("upsert", {})
