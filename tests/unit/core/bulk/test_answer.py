"""An answer is trusted only when it parses into one well-formed item per action."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from sturdysearch._core.bulk.answer import (
    BadAnswer,
    UniformAnswer,
    answer_items,
    decode_answer,
    item_error,
    item_fields,
    uniform_answer,
)


def _ok(n: int) -> dict[str, Any]:
    return {"errors": False, "items": [{"index": {"status": 201, "result": "created"}}] * n}


def test_matching_answer() -> None:
    assert len(answer_items(_ok(3), 3)) == 3


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (None, "NoneType"),
        ("<html>bad gateway</html>", "str"),
        ([], "list"),
        ({"errors": False}, "no items"),
        ({"items": {"a": 1}}, "no items"),
        (_ok(2), "2 items for 3"),
        (_ok(4), "4 items for 3"),
    ],
)
def test_untrustworthy_answers(body: Any, why: str) -> None:
    with pytest.raises(BadAnswer, match=why):
        answer_items(body, 3)


@pytest.mark.parametrize(
    "entry",
    [
        None,
        {},
        {"index": {"status": 201}, "create": {"status": 201}},
        {"index": "created"},
        {"index": {"result": "created"}},
        {"index": {"status": "201"}},
    ],
)
def test_malformed_items(entry: Any) -> None:
    with pytest.raises(BadAnswer):
        item_fields(entry)


def test_item_fields_and_errors() -> None:
    op, status, details = item_fields(
        {
            "create": {
                "status": 400,
                "error": {
                    "type": "document_parsing_exception",
                    "reason": "failed to parse field [n]",
                    "caused_by": {"type": "number_format_exception", "reason": 'For input "x"'},
                },
            }
        }
    )
    assert (op, status) == ("create", 400)
    error_type, reason = item_error(details)
    assert error_type == "document_parsing_exception"
    assert "failed to parse field [n]" in reason and "number_format_exception" in reason
    assert item_error({"error": "plain text"}) == (None, "plain text")
    assert item_error({}) == (None, "")


# -- the byte-level reading of an all-success answer --------------------------------------------

CREATED = b'{"index":{"result":"created","status":201}}'


def _raw(*items: bytes) -> bytes:
    return b'{"errors":false,"items":[' + b",".join(items) + b"]}"


@pytest.mark.parametrize("n", [1, 2, 3, 1000])
def test_a_uniform_answer_is_read_from_its_bytes(n: int) -> None:
    data = _raw(*[CREATED] * n)
    assert uniform_answer(data) == UniformAnswer("index", "created", 201, n)
    assert decode_answer(data) == UniformAnswer("index", "created", 201, n)


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        (b'{"create":{"result":"created","status":201}}', ("create", "created", 201)),
        (b'{"index":{"result":"updated","status":200}}', ("index", "updated", 200)),
        (b'{"update":{"result":"noop","status":200}}', ("update", "noop", 200)),
        (b'{"delete":{"result":"deleted","status":200}}', ("delete", "deleted", 200)),
    ],
)
def test_every_kind_of_uniform_success(item: bytes, expected: tuple[str, str, int]) -> None:
    assert uniform_answer(_raw(item, item, item)) == UniformAnswer(*expected, 3)


@pytest.mark.parametrize(
    "data",
    [
        _raw(CREATED, b'{"index":{"result":"updated","status":200}}'),  # mixed successes
        _raw(CREATED, CREATED, b'{"index":{"result":"created","status":200}}'),  # last differs
        _raw(CREATED, b'{"index":{"status":429,"error":{"type":"x","reason":"y"}}}'),
        _raw(CREATED, CREATED)[:-1],  # truncated
        _raw(CREATED, CREATED) + b" ",  # trailing bytes
        _raw(CREATED, CREATED) + b",",
        _raw(CREATED, CREATED).replace(b"},{", b"}, {"),  # other spacing: parsed instead
        _raw(CREATED, CREATED).replace(b"},{", b"}}{"),  # same length, not JSON
        _raw(CREATED, CREATED).replace(b"},{", b"}]{"),
        _raw(CREATED, CREATED).replace(b"false", b"true "),
        _raw(),  # no items
        _raw(b'{"index":{"result":"not_found","status":404}}'),  # not a success
        _raw(b'{"index":{"result":"created","status":201,"_id":"1"}}'),  # other fields
        _raw(b'{"index":{"status":201,"result":"created"}}'),  # other key order
        b'{"took":3,"errors":false,"items":[' + CREATED + b"]}",  # unfiltered answer
        b'{"errors":false,"items":[' + CREATED,
        b"",
    ],
)
def test_anything_else_is_not_uniform(data: bytes) -> None:
    assert uniform_answer(data) is None


def test_other_answers_are_parsed_and_non_json_raises() -> None:
    mixed = _raw(CREATED, b'{"index":{"status":400,"error":{"type":"x","reason":"y"}}}')
    assert decode_answer(mixed) == orjson.loads(mixed)
    assert decode_answer(_raw()) == {"errors": False, "items": []}
    for bad in (_raw(CREATED)[:-1], b"<html>bad gateway</html>"):
        with pytest.raises(ValueError):
            decode_answer(bad)
