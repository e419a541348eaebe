"""Body serialization (``sturdysearch._core.serialize``): never silently corrupt, always say where."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import types
import uuid
from typing import Any

import orjson
import pytest

from sturdysearch._core.serialize import dumps, dumps_ndjson, loads
from sturdysearch.errors import SerializationError

NAN = float("nan")
INF = float("inf")


@dataclasses.dataclass
class Point:
    x: float
    y: float


@dataclasses.dataclass
class Doc:
    title: str
    tags: list[str]
    where: Point
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Node:
    child: Any = None


class Color(enum.Enum):
    RED = "red"


# -- non-finite floats -------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [NAN, INF, -INF])
@pytest.mark.parametrize(
    ("build", "path"),
    [
        (lambda v: {"price": v}, "body['price']"),
        (lambda v: {"a": {"b": {"c": v}}}, "body['a']['b']['c']"),
        (lambda v: {"a": [1, 2, v]}, "body['a'][2]"),
        (lambda v: [v], "body[0]"),
        (lambda v: {"a": (0.5, v)}, "body['a'][1]"),
        (lambda v: {"q": [{"range": {"n": {"gte": v}}}]}, "body['q'][0]['range']['n']['gte']"),
        (lambda v: Point(1.0, v), "body.y"),
        (lambda v: {"p": Point(v, 1.0)}, "body['p'].x"),
        (lambda v: Doc("t", [], Point(0, 0), {"k": [v]}), "body.extra['k'][0]"),
        (lambda v: {1: v}, "body[1]"),
    ],
)
def test_non_finite_floats_refused_with_path(bad: float, build: Any, path: str) -> None:
    with pytest.raises(SerializationError) as info:
        dumps(build(bad))
    err = info.value
    assert err.path == path
    assert err.type_name == "float"
    assert path in str(err)
    assert repr(bad) in str(err)
    assert "null" in str(err)  # says what orjson would have done
    assert isinstance(err, TypeError)


def test_root_name_is_configurable() -> None:
    with pytest.raises(SerializationError) as info:
        dumps({"n": NAN}, what="document")
    assert info.value.path == "document['n']"
    assert str(info.value).startswith("cannot serialize document['n']")


def test_finite_floats_and_extremes_pass() -> None:
    data = {"a": 1.5, "b": -0.0, "c": 1e308, "d": 5e-324, "e": 0.1}
    assert orjson.loads(dumps(data)) == data


# -- unsupported types -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "path", "type_name"),
    [
        (lambda: {"tags": {"a", "b"}}, "body['tags']", "set"),
        (lambda: {"tags": frozenset({1})}, "body['tags']", "frozenset"),
        (lambda: {"o": object()}, "body['o']", "object"),
        (lambda: {"a": [b"raw bytes"]}, "body['a'][0]", "bytes"),
        (lambda: {"a": [1, {"b": bytearray(b"x")}]}, "body['a'][1]['b']", "bytearray"),
        (lambda: {"d": decimal.Decimal("1.5")}, "body['d']", "Decimal"),
        (lambda: {"c": 1 + 2j}, "body['c']", "complex"),
        (lambda: [{"ok": 1}, {"f": lambda: None}], "body[1]['f']", "function"),
        (lambda: {"q": {"terms": {"tags": {1, 2}}}}, "body['q']['terms']['tags']", "set"),
        (lambda: {(1, 2): "tuple key"}, "body key (1, 2)", "tuple"),
        (lambda: {"a": {frozenset(): 1}}, "body['a'] key frozenset()", "frozenset"),
    ],
)
def test_unsupported_types_named_with_path_and_type(build: Any, path: str, type_name: str) -> None:
    with pytest.raises(SerializationError) as info:
        dumps(build())
    err = info.value
    assert err.path == path
    assert err.type_name == type_name
    assert path in str(err)
    assert f"type {type_name} is not JSON serializable" in str(err)
    assert isinstance(err.__cause__, TypeError)


def test_first_problem_reported() -> None:
    with pytest.raises(SerializationError) as info:
        dumps({"a": 1, "b": [2, {3}], "c": {4}})
    assert info.value.path == "body['b'][1]"


def test_unsupported_value_inside_dataclass_names_the_field() -> None:
    @dataclasses.dataclass
    class D:
        tags: Any

    with pytest.raises(SerializationError) as info:
        dumps({"a": D(tags={1})})
    assert (info.value.path, info.value.type_name) == ("body['a'].tags", "set")


def test_non_dict_mapping_serialized() -> None:
    proxy = types.MappingProxyType({"x": 1})
    assert orjson.loads(dumps({"a": proxy})) == {"a": {"x": 1}}


def test_int_out_of_range_message() -> None:
    with pytest.raises(SerializationError) as info:
        dumps({"n": 2**64})
    assert info.value.path == "body['n']"
    assert "type int is not JSON serializable" not in str(info.value)


# -- reference cycles --------------------------------------------------------------------------


def _dict_cycle() -> Any:
    d: dict[str, Any] = {"a": 1}
    d["self"] = d
    return d


def _list_cycle() -> Any:
    lst: list[Any] = [1]
    lst.append(lst)
    return lst


def _mixed_cycle() -> Any:
    d: dict[str, Any] = {"items": []}
    d["items"].append({"parent": d})
    return d


def _tuple_cycle() -> Any:
    lst: list[Any] = []
    t = (lst,)
    lst.append(t)
    return {"t": t}


@pytest.mark.parametrize(
    ("build", "path"),
    [
        (_dict_cycle, "body['self']"),
        (_list_cycle, "body[1]"),
        (_mixed_cycle, "body['items'][0]['parent']"),
        (_tuple_cycle, "body['t'][0][0]"),
    ],
)
def test_reference_cycles_refused_without_recursion_error(build: Any, path: str) -> None:
    with pytest.raises(SerializationError) as info:
        dumps(build())
    assert info.value.path == path
    assert "reference cycle" in str(info.value)


def test_dataclass_cycle_refused_without_recursion_error() -> None:
    node = Node()
    node.child = node
    with pytest.raises(SerializationError, match="reference cycle") as info:
        dumps(node)
    assert info.value.path == "body.child"


def test_reference_cycle_type_name() -> None:
    with pytest.raises(SerializationError) as info:
        dumps(_dict_cycle())
    assert info.value.type_name == "dict"


def test_shared_references_are_not_cycles() -> None:
    shared = [1, 2]
    inner = {"x": shared}
    assert orjson.loads(dumps({"a": shared, "b": shared, "c": [inner, inner]})) == {
        "a": [1, 2],
        "b": [1, 2],
        "c": [{"x": [1, 2]}, {"x": [1, 2]}],
    }


def test_deep_nesting_refused_not_recursion_error() -> None:
    root: list[Any] = []
    cur = root
    for _ in range(400):
        nxt: list[Any] = []
        cur.append(nxt)
        cur = nxt
    with pytest.raises(SerializationError, match="nesting too deep"):
        dumps(root)


def test_moderate_nesting_passes() -> None:
    root: dict[str, Any] = {}
    cur = root
    for _ in range(100):
        cur["n"] = {}
        cur = cur["n"]
    assert dumps(root).count(b"{") == 101


# -- strings and bytes as bodies ---------------------------------------------------------------


@pytest.mark.parametrize(
    "body", ['{"query": {"match_all": {}}}', b"{}", bytearray(b"{}"), memoryview(b"{}"), ""]
)
def test_str_and_bytes_bodies_refused(body: Any) -> None:
    with pytest.raises(SerializationError) as info:
        dumps(body)
    assert "raw_body" in str(info.value)
    assert info.value.path == "body"
    assert info.value.type_name == type(body).__name__


@pytest.mark.parametrize("lines", ['{"index": {}}\n', b'{"index": {}}\n'])
def test_ndjson_refuses_str_and_bytes(lines: Any) -> None:
    with pytest.raises(SerializationError, match="list of mappings"):
        dumps_ndjson(lines)


# -- what does serialize -----------------------------------------------------------------------


def test_dataclasses_serialized() -> None:
    doc = Doc("hello", ["a", "b"], Point(1.5, -2.0), {"nested": [Point(0, 0)]})
    assert orjson.loads(dumps(doc)) == {
        "title": "hello",
        "tags": ["a", "b"],
        "where": {"x": 1.5, "y": -2.0},
        "extra": {"nested": [{"x": 0, "y": 0}]},
    }


def test_nested_lists_and_tuples_serialized() -> None:
    data = {"a": [[1, [2, [3, (4, 5)]]], []], "b": ()}
    assert orjson.loads(dumps(data)) == {"a": [[1, [2, [3, [4, 5]]]], []], "b": []}


def test_scalars_and_unicode() -> None:
    data = {"s": '中文 ü \u2028 "q"', "t": True, "f": False, "n": None, "i": -(2**63)}
    assert orjson.loads(dumps(data)) == data


def test_non_str_keys() -> None:
    assert dumps({1: "a", None: "b", 2.5: "c", False: "d"}) == (
        b'{"1":"a","null":"b","2.5":"c","false":"d"}'
    )


def test_orjson_native_types() -> None:
    when = datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    out = orjson.loads(dumps({"t": when, "u": uuid.UUID(int=1), "c": Color.RED}))
    assert out == {
        "t": "2024-01-02T03:04:05+00:00",
        "u": "00000000-0000-0000-0000-000000000001",
        "c": "red",
    }


def test_loads_round_trip_and_error() -> None:
    assert loads(b'{"a": [1, 2.5, null]}') == {"a": [1, 2.5, None]}
    with pytest.raises(ValueError):
        loads(b"<html>")


# -- NDJSON ------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 5])
def test_ndjson_one_line_per_item_ending_with_newline(n: int) -> None:
    items = [{"index": {"_id": str(i), "t": "a\nb"}} for i in range(n)]
    out = dumps_ndjson(items)
    assert out.endswith(b"\n")
    lines = out.split(b"\n")
    assert lines[-1] == b""
    assert len(lines) == n + 1
    assert [orjson.loads(line) for line in lines[:-1]] == items


def test_ndjson_empty() -> None:
    assert dumps_ndjson([]) == b""


def test_ndjson_accepts_tuples_and_dataclasses() -> None:
    assert dumps_ndjson(({"a": 1}, Point(1, 2))) == b'{"a":1}\n{"x":1,"y":2}\n'


def test_ndjson_error_names_line() -> None:
    with pytest.raises(SerializationError) as info:
        dumps_ndjson([{"index": {}}, {"v": NAN}], what="operations")
    assert info.value.path == "operations[1]['v']"
    with pytest.raises(SerializationError) as info:
        dumps_ndjson([{"index": {}}, {"v": {1}}])
    assert info.value.path == "body[1]['v']"
    assert info.value.type_name == "set"


def test_ndjson_refuses_string_lines() -> None:
    with pytest.raises(SerializationError) as info:
        dumps_ndjson([{"index": {}}, '{"a": 1}'])
    assert info.value.path == "body[1]"
    assert "raw_body" in str(info.value)
