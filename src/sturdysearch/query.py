"""Safe queries: user text in ``query_string`` / ``simple_query_string`` stays text.

Both queries parse their ``query`` with a syntax of their own (field names, boolean operators,
wildcards, ranges, regular expressions, fuzziness). User input passed as is can change the
query's meaning (``*:*``, ``title:secret``, ``/.*/``) or make it fail (an unbalanced quote is
a 400 for ``query_string``). The helpers here escape that syntax so that what the user typed is
searched for, words and all:

* :func:`escape_query_string` backslash-escapes the reserved characters of the Lucene syntax
  (``+ - = && || > < ! ( ) { } [ ] ^ " ~ * ? : \\ /``, Elasticsearch "Query string query",
  "Reserved characters") and the operator words ``AND``, ``OR``, ``NOT``;
* :func:`escape_simple_query_string` escapes the operators of the simple syntax
  (``+ | - " * ( ) ~`` and ``\\``; the others are escaped too, which is harmless);
* :func:`query_string` and :func:`simple_query_string` build the query clause with escaped text.

White space still separates words (that is what a search box means). For an exact value use a
``term`` query, and for full text without any syntax a ``match`` query: they take the text as
a JSON string and need no escaping at all. Search templates (``client.search_template``) are the
other safe route: user input goes in ``params``, which the server JSON-escapes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "QUERY_STRING_RESERVED",
    "SIMPLE_QUERY_STRING_RESERVED",
    "escape_query_string",
    "escape_simple_query_string",
    "query_string",
    "simple_query_string",
]

#: Characters with a meaning in ``query_string`` (``&&`` and ``||`` are escaped one character at
#: a time, which the parser accepts).
QUERY_STRING_RESERVED = frozenset('+-=&|><!(){}[]^"~*?:\\/')
#: Characters escaped for ``simple_query_string``: its operators (``+ | - " * ( ) ~`` and
#: ``\``) are a subset of the ``query_string`` ones; escaping the others is harmless.
SIMPLE_QUERY_STRING_RESERVED = QUERY_STRING_RESERVED

_OPERATOR_WORD = re.compile(r"\b(AND|OR|NOT)\b")


def _escape(text: str, reserved: frozenset[str]) -> str:
    if not isinstance(text, str):
        raise TypeError(f"expected the user's text as str, got {type(text).__name__}")
    return "".join("\\" + c if c in reserved else c for c in text)


def escape_query_string(text: str) -> str:
    """``text`` with every ``query_string`` reserved character backslash-escaped and the
    operator words ``AND``/``OR``/``NOT`` turned into plain words (``\\AND``)."""
    return _OPERATOR_WORD.sub(r"\\\1", _escape(text, QUERY_STRING_RESERVED))


def escape_simple_query_string(text: str) -> str:
    """``text`` with every ``simple_query_string`` operator backslash-escaped."""
    return _escape(text, SIMPLE_QUERY_STRING_RESERVED)


def query_string(
    text: str,
    *,
    fields: Sequence[str] | None = None,
    default_operator: str = "and",
    allow_leading_wildcard: bool | None = None,
    analyze_wildcard: bool | None = None,
    analyzer: str | None = None,
    auto_generate_synonyms_phrase_query: bool | None = None,
    boost: float | None = None,
    default_field: str | None = None,
    enable_position_increments: bool | None = None,
    fuzziness: str | int | None = None,
    fuzzy_max_expansions: int | None = None,
    fuzzy_prefix_length: int | None = None,
    fuzzy_transpositions: bool | None = None,
    lenient: bool | None = None,
    max_determinized_states: int | None = None,
    minimum_should_match: str | int | None = None,
    phrase_slop: int | None = None,
    quote_analyzer: str | None = None,
    quote_field_suffix: str | None = None,
    rewrite: str | None = None,
    time_zone: str | None = None,
    query: None = None,
) -> dict[str, Any]:
    """A ``query_string`` clause searching for ``text`` literally (escaped), every word
    required by default; the other options of the clause by name (``None``: left out).
    ``query=`` exists only to refuse it: the text is the first argument."""
    options = {
        "allow_leading_wildcard": allow_leading_wildcard,
        "analyze_wildcard": analyze_wildcard,
        "analyzer": analyzer,
        "auto_generate_synonyms_phrase_query": auto_generate_synonyms_phrase_query,
        "boost": boost,
        "default_field": default_field,
        "enable_position_increments": enable_position_increments,
        "fuzziness": fuzziness,
        "fuzzy_max_expansions": fuzzy_max_expansions,
        "fuzzy_prefix_length": fuzzy_prefix_length,
        "fuzzy_transpositions": fuzzy_transpositions,
        "lenient": lenient,
        "max_determinized_states": max_determinized_states,
        "minimum_should_match": minimum_should_match,
        "phrase_slop": phrase_slop,
        "quote_analyzer": quote_analyzer,
        "quote_field_suffix": quote_field_suffix,
        "rewrite": rewrite,
        "time_zone": time_zone,
    }
    if query is not None:
        options["query"] = query
    return {"query_string": _clause(escape_query_string(text), fields, default_operator, options)}


def simple_query_string(
    text: str,
    *,
    fields: Sequence[str] | None = None,
    default_operator: str = "and",
    analyzer: str | None = None,
    analyze_wildcard: bool | None = None,
    auto_generate_synonyms_phrase_query: bool | None = None,
    boost: float | None = None,
    flags: str | None = None,
    fuzzy_max_expansions: int | None = None,
    fuzzy_prefix_length: int | None = None,
    fuzzy_transpositions: bool | None = None,
    lenient: bool | None = None,
    minimum_should_match: str | int | None = None,
    quote_field_suffix: str | None = None,
) -> dict[str, Any]:
    """A ``simple_query_string`` clause searching for ``text`` literally (escaped); the other
    options of the clause by name (``None``: left out)."""
    options = {
        "analyzer": analyzer,
        "analyze_wildcard": analyze_wildcard,
        "auto_generate_synonyms_phrase_query": auto_generate_synonyms_phrase_query,
        "boost": boost,
        "flags": flags,
        "fuzzy_max_expansions": fuzzy_max_expansions,
        "fuzzy_prefix_length": fuzzy_prefix_length,
        "fuzzy_transpositions": fuzzy_transpositions,
        "lenient": lenient,
        "minimum_should_match": minimum_should_match,
        "quote_field_suffix": quote_field_suffix,
    }
    return {
        "simple_query_string": _clause(
            escape_simple_query_string(text), fields, default_operator, options
        )
    }


def _clause(
    escaped: str,
    fields: Sequence[str] | None,
    default_operator: str,
    options: Mapping[str, Any],
) -> dict[str, Any]:
    if default_operator.lower() not in ("and", "or"):
        raise ValueError("default_operator must be 'and' or 'or'")
    if "query" in options:
        raise ValueError("the text is the first argument; do not pass query=")
    clause: dict[str, Any] = {"query": escaped, "default_operator": default_operator.lower()}
    if fields is not None:
        if isinstance(fields, str):
            raise ValueError("fields must be a list of field names, not one string")
        clause["fields"] = list(fields)
    clause.update({k: v for k, v in options.items() if v is not None})
    return clause
