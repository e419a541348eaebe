"""The catalogue of rules: one entry per code, shared by the checkers, the outputs and the docs."""

from __future__ import annotations

from sturdysearch.lint.findings import Rule

_PY = "python"
_GO = "go"

RULES: tuple[Rule, ...] = (
    Rule(
        "SSP101",
        "tls-verification-off",
        _PY,
        3,
        ("B501", "S501", "S323"),
        "TLS certificate verification turned off for a search client",
    ),
    Rule(
        "SSP102",
        "timeout-unbounded",
        _PY,
        1,
        ("B113", "S113"),
        "a search client or call given no time limit (timeout None)",
    ),
    Rule(
        "SSP103",
        "timeout-implicit",
        _PY,
        1,
        ("B113", "S113"),
        "a search client built without an explicit timeout",
    ),
    Rule(
        "SSP104",
        "api-timeout-as-socket-timeout",
        _PY,
        1,
        (),
        "a number passed as timeout= to an API call: it is the server-side timeout, not the socket one",
    ),
    Rule(
        "SSP105",
        "client-per-call",
        _PY,
        5,
        (),
        "a search client built per request or in a loop instead of shared",
    ),
    Rule(
        "SSP106",
        "bulk-generator-unconsumed",
        _PY,
        8,
        (),
        "parallel_bulk/streaming_bulk generator never iterated: nothing is indexed",
    ),
    Rule(
        "SSP107",
        "bulk-result-ignored",
        _PY,
        8,
        (),
        "a bulk answer or helper result dropped, so failed documents go unnoticed",
    ),
    Rule(
        "SSP108",
        "query-from-strings",
        _PY,
        7,
        ("S608",),
        "a query body or q= built by formatting, concatenation or f-strings",
    ),
    Rule(
        "SSP109",
        "auto-id-write-retried",
        _PY,
        9,
        (),
        "a document without id written inside a retry loop: a retry indexes it twice",
    ),
    Rule(
        "SSP110",
        "retries-with-auto-id-bulk",
        _PY,
        9,
        (),
        "client retries enabled while bulk index actions carry no _id",
    ),
    Rule(
        "SSP111",
        "fixed-interval-retry",
        _PY,
        10,
        (),
        "a retry loop around a client call that sleeps a fixed interval (no backoff, no jitter)",
    ),
    Rule(
        "SSP112",
        "client-error-swallowed",
        _PY,
        4,
        ("S110", "S112", "BLE001"),
        "an exception from a client call caught and dropped",
    ),
    Rule(
        "SSP113",
        "credentials-exposed",
        _PY,
        3,
        ("S105", "S106", "B106"),
        "credentials in an http:// URL, sent over plain HTTP, or written as literals",
    ),
    Rule(
        "SSP114",
        "sniff-on-start",
        _PY,
        12,
        (),
        "sniff_on_start=True: the client replaces the given address by the nodes' publish addresses",
    ),
    Rule(
        "SSP115",
        "blocking-client-in-async",
        _PY,
        2,
        ("ASYNC210",),
        "a blocking search client called inside async def",
    ),
    Rule(
        "SSG201",
        "insecure-skip-verify",
        _GO,
        3,
        ("G402",),
        "InsecureSkipVerify: true in a program using a search client",
    ),
    Rule(
        "SSG202",
        "http-client-without-timeout",
        _GO,
        1,
        ("noctx",),
        "a search client on http.DefaultClient/DefaultTransport or a transport without timeouts",
    ),
    Rule(
        "SSG203",
        "client-per-request",
        _GO,
        5,
        (),
        "a search client or transport built inside a request handler or a loop",
    ),
    Rule(
        "SSG204",
        "response-status-unchecked",
        _GO,
        4,
        (),
        "an esapi/opensearchapi response used without IsError() or a status check",
    ),
    Rule(
        "SSG205",
        "response-body-not-closed",
        _GO,
        5,
        ("bodyclose",),
        "an esapi/opensearchapi response whose Body is never closed",
    ),
    Rule(
        "SSG206",
        "bulk-indexer-failures-unhandled",
        _GO,
        8,
        (),
        "a BulkIndexer without OnError, or an item without OnFailure",
    ),
    Rule(
        "SSG207",
        "query-from-strings",
        _GO,
        7,
        ("G201", "G202"),
        "query JSON built by fmt.Sprintf or string concatenation",
    ),
    Rule(
        "SSG208",
        "mapping-type-in-path",
        _GO,
        6,
        (),
        "a mapping type in a request (DocumentType, .Type(), /index/type/id): removed in 8.x",
    ),
)

BY_CODE: dict[str, Rule] = {rule.code: rule for rule in RULES}


def resolve_codes(selectors: list[str]) -> set[str]:
    """Expand codes and prefixes (``SSP``, ``SSG2``, ``SSP101``) to rule codes.

    A selector that matches no rule is a usage error: a typo must not silently select nothing.
    """
    chosen: set[str] = set()
    for raw in selectors:
        for part in raw.split(","):
            sel = part.strip().upper()
            if not sel:
                continue
            if sel == "ALL":
                chosen.update(BY_CODE)
                continue
            matched = {code for code in BY_CODE if code.startswith(sel)}
            if not matched:
                raise ValueError(
                    f"unknown rule code or prefix {part.strip()!r}; "
                    f"`sturdysearch lint --list-rules` lists them"
                )
            chosen.update(matched)
    return chosen
