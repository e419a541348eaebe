"""An answer is trusted only when it parses into one well-formed item per action."""

from __future__ import annotations

from typing import Any

import pytest

from sturdysearch._core.bulk.answer import BadAnswer, answer_items, item_error, item_fields


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
