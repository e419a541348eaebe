"""Safe queries (``sturdysearch.query``): user text stays text."""

from __future__ import annotations

import pytest

from sturdysearch import query

RESERVED = '+ - = && || > < ! ( ) { } [ ] ^ " ~ * ? : \\ /'


def test_every_reserved_character_is_escaped() -> None:
    escaped = query.escape_query_string(RESERVED)
    # Remove each escaped character; nothing reserved may be left bare.
    bare = escaped.replace(" ", "")
    i = 0
    while i < len(bare):
        if bare[i] == "\\":
            assert bare[i + 1] in query.QUERY_STRING_RESERVED
            i += 2
        else:
            raise AssertionError(f"unescaped {bare[i]!r} in {escaped!r}")


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("plain words", "plain words"),
        ("(1+1)=2", "\\(1\\+1\\)\\=2"),
        ("title:secret", "title\\:secret"),
        ("*", "\\*"),
        ("/.*/", "\\/.\\*\\/"),
        ("a && b || !c", "a \\&\\& b \\|\\| \\!c"),
        ("back\\slash", "back\\\\slash"),
        ('say "hi', 'say \\"hi'),
        ("cats AND dogs OR NOT birds", "cats \\AND dogs \\OR \\NOT birds"),
        ("ANDROID and or", "ANDROID and or"),
        ("中文 é", "中文 é"),
        ("", ""),
    ],
)
def test_escape_query_string(text: str, escaped: str) -> None:
    assert query.escape_query_string(text) == escaped


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("a | b", "a \\| b"),
        ("-excluded +required", "\\-excluded \\+required"),
        ('"phrase" prefix*', '\\"phrase\\" prefix\\*'),
        ("(group) fuzzy~2", "\\(group\\) fuzzy\\~2"),
        ("AND", "AND"),  # not an operator in the simple syntax
    ],
)
def test_escape_simple_query_string(text: str, escaped: str) -> None:
    assert query.escape_simple_query_string(text) == escaped


def test_query_string_clause() -> None:
    assert query.query_string("a:b", fields=["title", "body^2"], lenient=True) == {
        "query_string": {
            "query": "a\\:b",
            "default_operator": "and",
            "fields": ["title", "body^2"],
            "lenient": True,
        }
    }


def test_simple_query_string_clause() -> None:
    assert query.simple_query_string("x|y", default_operator="OR") == {
        "simple_query_string": {"query": "x\\|y", "default_operator": "or"}
    }


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"default_operator": "xor"}, "default_operator"),
        ({"fields": "title"}, "list of field names"),
        ({"query": "x"}, "first argument"),
    ],
)
def test_clause_validation(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        query.query_string("x", **kwargs)  # type: ignore[arg-type]


def test_text_must_be_a_string() -> None:
    with pytest.raises(TypeError, match="str"):
        query.escape_query_string(b"bytes")  # type: ignore[arg-type]
