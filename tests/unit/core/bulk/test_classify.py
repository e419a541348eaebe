"""The rule tables: every item status and every request failure has one fate."""

from __future__ import annotations

import pytest

from sturdysearch import errors
from sturdysearch._core.bulk.classify import classify_item, classify_request, unanswered

FLOOD = (
    "index [logs] blocked by: [TOO_MANY_REQUESTS/12/disk usage exceeded flood-stage watermark, "
    "index has read-only-allow-delete block];"
)
NO_MASTER = "blocked by: [SERVICE_UNAVAILABLE/2/no master];"


@pytest.mark.parametrize(
    ("op", "status", "error_type", "verdict"),
    [
        ("index", 201, None, "done"),
        ("index", 200, None, "done"),
        ("update", 200, None, "done"),
        ("delete", 200, None, "done"),
        ("delete", 404, None, "done"),  # not_found: absent, as asked
        # The index, not the document: every document sent there fails the same way.
        ("delete", 404, "index_not_found_exception", "systemic"),
        ("index", 404, "index_not_found_exception", "systemic"),  # auto-create off
        ("index", 400, "invalid_index_name_exception", "systemic"),
        ("index", 400, "index_closed_exception", "systemic"),
        ("index", 403, "security_exception", "systemic"),
        ("index", 403, "cluster_block_exception", "systemic"),
        ("index", 429, "cluster_block_exception", "systemic"),  # flood stage, no reason given
        ("update", 404, "document_missing_exception", "reject"),
        ("index", 400, "mapper_parsing_exception", "reject"),
        ("index", 400, "document_parsing_exception", "reject"),
        ("index", 400, "illegal_argument_exception", "reject"),  # immense term, doc too large
        ("create", 409, "version_conflict_engine_exception", "reject"),
        ("update", 409, "version_conflict_engine_exception", "reject"),
        ("index", 429, "es_rejected_execution_exception", "retry"),
        ("index", 429, "rejected_execution_exception", "retry"),
        ("index", 429, "circuit_breaking_exception", "retry"),
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


@pytest.mark.parametrize(
    ("status", "reason", "verdict"),
    [
        (429, FLOOD, "systemic"),  # stays until the disk has room and an operator lifts it
        (403, "blocked by: [FORBIDDEN/12/index read-only / allow delete (api)];", "systemic"),
        (403, "blocked by: [FORBIDDEN/8/index write (api)];", "systemic"),
        (503, NO_MASTER, "retry"),  # lifts by itself once a master is elected
        (503, "blocked by: [SERVICE_UNAVAILABLE/1/state not recovered / initialized];", "retry"),
    ],
)
def test_blocks_by_their_reason(status: int, reason: str, verdict: str) -> None:
    assert classify_item("index", status, "cluster_block_exception", reason) == verdict


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
        # The request itself is wrong: every later request would be too.
        (_api(400), "fatal"),
        (_api(404), "fatal"),
        (_api(401), "fatal"),
        (_api(403), "fatal"),
        (errors.TLSError("untrusted"), "fatal"),
        (errors.ProxyAuthenticationError("407"), "fatal"),
        (errors.ProxyError("tunnel refused", status=503), "resend"),
    ],
)
def test_request_table(exc: errors.SturdySearchError, verdict: str) -> None:
    assert classify_request(exc) == verdict


@pytest.mark.parametrize(
    ("exc", "silent"),
    [
        (errors.ConnectionError("refused"), True),
        (errors.ConnectionError("reset", request_sent=True), True),
        (errors.ReadTimeout("quiet"), True),
        (errors.DeadlineExceeded("no answer", request_sent=True), True),
        (errors.NoLiveNodesError("none"), True),
        (errors.MalformedResponseError("truncated"), True),
        (None, True),  # an answer that could not be trusted
        (_api(502), True),  # a gateway without a backend
        (_api(503), True),
        (_api(504), True),
        (_api(500), False),  # a node answered
        (_api(429), False),
        (_api(401), False),
    ],
)
def test_what_counts_as_no_answer(exc: errors.SturdySearchError | None, silent: bool) -> None:
    assert unanswered(exc) is silent
