"""The rule tables: every item status and every request failure has one fate."""

from __future__ import annotations

import pytest

from sturdysearch import errors
from sturdysearch._core.bulk.classify import classify_item, classify_request


@pytest.mark.parametrize(
    ("op", "status", "error_type", "verdict"),
    [
        ("index", 201, None, "done"),
        ("index", 200, None, "done"),
        ("update", 200, None, "done"),
        ("delete", 200, None, "done"),
        ("delete", 404, None, "done"),  # not_found: absent, as asked
        ("delete", 404, "index_not_found_exception", "reject"),
        ("index", 404, "index_not_found_exception", "reject"),  # auto-create off
        ("update", 404, "document_missing_exception", "reject"),
        ("index", 400, "mapper_parsing_exception", "reject"),
        ("index", 400, "document_parsing_exception", "reject"),
        ("index", 400, "illegal_argument_exception", "reject"),  # immense term, doc too large
        ("create", 409, "version_conflict_engine_exception", "reject"),
        ("update", 409, "version_conflict_engine_exception", "reject"),
        ("index", 403, "cluster_block_exception", "reject"),
        ("index", 429, "es_rejected_execution_exception", "retry"),
        ("index", 429, "rejected_execution_exception", "retry"),
        ("index", 429, "circuit_breaking_exception", "retry"),
        ("index", 429, "cluster_block_exception", "retry"),  # flood-stage watermark, 8.x
        ("index", 503, "unavailable_shards_exception", "retry"),
        ("index", 500, "node_closed_exception", "retry"),
        ("index", 500, None, "retry"),
        ("index", 502, None, "retry"),
        ("index", 504, None, "retry"),
        ("index", 400, "unavailable_shards_exception", "retry"),  # type wins over status
    ],
)
def test_item_table(op: str, status: int, error_type: str | None, verdict: str) -> None:
    assert classify_item(op, status, error_type) == verdict


def _api(status: int) -> errors.ApiError:
    from sturdysearch._core.responses import error_class

    return error_class(status)(status)


@pytest.mark.parametrize(
    ("exc", "verdict"),
    [
        (errors.ConnectionError("refused", request_sent=False), "resend"),
        (errors.ConnectTimeout("slow", request_sent=False), "resend"),
        (errors.NoLiveNodesError("none"), "resend"),
        (errors.DeadlineExceeded("pool wait", request_sent=False), "resend"),
        (_api(429), "resend"),
        (_api(503), "resend"),
        (errors.ConnectionError("reset", request_sent=True), "lost"),
        (errors.DeadlineExceeded("no answer", request_sent=True), "lost"),
        (errors.ReadTimeout("quiet"), "lost"),
        (errors.MalformedResponseError("truncated"), "lost"),
        (errors.TransportError("anything else"), "lost"),
        (_api(500), "lost"),
        (_api(502), "lost"),
        (_api(504), "lost"),
        (_api(408), "lost"),
        (_api(413), "split"),
        (_api(400), "reject"),
        (_api(404), "reject"),
        (_api(401), "fatal"),
        (_api(403), "fatal"),
        (errors.TLSError("untrusted"), "fatal"),
    ],
)
def test_request_table(exc: errors.SturdySearchError, verdict: str) -> None:
    assert classify_request(exc) == verdict
